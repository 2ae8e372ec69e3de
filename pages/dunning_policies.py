"""Dunning policies: who dunning reaches, the list, one policy's versions and editor (stages, channels, fees, end action),
what it would have done last month, and the customers whose policy is exhausted. Analysts and
admins edit (`edit_dunning`); the CFO reads. A version that sent anything is never changed: saving
an edit of it makes a new version."""

from datetime import timedelta
from decimal import Decimal

import streamlit as st

from analytics.access.roles import may
from analytics.collections.dunning_exhausted import exhausted_customers, run_end_actions
from analytics.collections.dunning_policies import (
    BASES,
    END_ACTION_KINDS,
    END_STATUSES,
    MODES,
    DunningPolicyError,
    Policy,
    clone_policy,
    list_policies,
    load_policy,
    policy_versions,
    retire_policy,
    save_policy,
    stage_rows,
    stages_from_rows,
)
from analytics.collections.dunning_schedule import dunning_reach, unreached_note
from analytics.collections.dunning_simulation import simulate_policy, simulation_totals
from analytics.collections.worklist import default_as_of
from analytics.settings import load_settings
from pages.cached import cached
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import data_table

actor = require_page("dunning_policies")
store = get_store()
can_edit = may(actor, "edit_dunning")
as_of = default_as_of(store)

st.title("Dunning policies")
st.caption(f"As of {as_of} · " + ("you may create, edit, clone and retire policies" if can_edit
                                   else "read only: analysts and admins edit policies"))
if flash := st.session_state.pop("policies_flash", None):
    st.success(flash)

# -- who dunning reaches: customers with invoices past due, by policy and contact ------------------------
reach = cached(dunning_reach, store, as_of)
if note := unreached_note(reach, load_settings().reporting_currency):
    st.warning(note)
with st.expander(f"Customers with invoices past due: {int(reach['customers'].sum()):,}", expanded=note is not None):
    data_table(reach.drop(columns="reach"), hide_index=True, width="stretch",
               column_config={"label": "Reach"})

# -- every policy ----------------------------------------------------------------------------------------
policies = list_policies(store)
data_table(policies[["name", "version", "versions", "state", "segment", "grace_days", "min_days_between",
                       "stages", "customers", "runs"]], hide_index=True, width="stretch",
             column_config={"min_days_between": "Min days between", "runs": "Runs of this version"})

NEW = "— New policy —"
names = policies.loc[policies["state"] != "retired", "name"].tolist()
choice = st.selectbox("Policy", ([NEW] if can_edit else []) + names, key="policy_choice",
                      index=1 if can_edit and names else 0) if (names or can_edit) else None
if choice is None:
    st.info("No dunning policies yet.")
    st.stop()
current: Policy | None = None if choice == NEW else load_policy(store, choice)

if current is not None:
    st.subheader(f"{escape_markdown(current.name)}: versions")
    data_table(policy_versions(store, int(current.config_id)), hide_index=True, width="stretch")

# -- the editor ------------------------------------------------------------------------------------------
tag = f"{current.config_id}_v{current.version}" if current else "new"  # each policy version starts from its values
st.subheader("Edit" if can_edit else "Settings")
left, right = st.columns(2)
name = left.text_input("Name", value=current.name if current else "", key=f"pol_name_{tag}", disabled=not can_edit)
segment = right.text_input("Default for segment (empty: none)", value=(current.segment or "") if current else "",
                           key=f"pol_segment_{tag}", disabled=not can_edit)
a, b, c, d = st.columns(4)
grace = a.number_input("Grace days", min_value=0, step=1, value=current.grace_days if current else 0,
                       key=f"pol_grace_{tag}", disabled=not can_edit)
spacing = b.number_input("Min days between messages", min_value=0, step=1,
                         value=current.min_days_between if current else 0, key=f"pol_spacing_{tag}", disabled=not can_edit)
rate = c.number_input("Interest (annual %)", min_value=0.0, max_value=100.0, step=0.5,
                      value=float(current.interest_rate or 0) * 100 if current else 0.0, key=f"pol_rate_{tag}",
                      disabled=not can_edit, help="Shown on reminders and statements; booked only with the box ticked.")
book = d.checkbox("Book fees and interest", value=current.book_fees if current else False, key=f"pol_book_{tag}",
                  disabled=not can_edit, help="Off: shown, not booked (they do not inflate open AR).")
st.caption("Stages in order. Basis: due (the due date), previous_sent (the previous stage's date), end_of_month "
           "(the due date's month end). Channels: e.g. `email:reminder_friendly; letter:reminder_letter; call`.")
rows = st.data_editor(stage_rows(current), num_rows="dynamic" if can_edit else "fixed", disabled=not can_edit,
                      hide_index=True, width="stretch", key=f"pol_stages_{tag}", column_config={
                          "name": "Stage", "day_offset": st.column_config.NumberColumn("Day offset", step=1),
                          "basis": st.column_config.SelectboxColumn("Basis", options=list(BASES)),
                          "mode": st.column_config.SelectboxColumn("Mode", options=list(MODES)),
                          "channels": "Channels", "fee": st.column_config.NumberColumn("Fee", min_value=0.0)})
action = (current.end_action or {}) if current else {}
kinds = ["none", *END_ACTION_KINDS]
kind = st.selectbox("End action when every stage was sent", kinds, key=f"pol_end_kind_{tag}", disabled=not can_edit,
                    index=kinds.index(action.get("kind", "none")))
end_action: dict | None = None if kind == "none" else {"kind": kind}
if kind in ("task", "write_off_proposal"):
    e1, e2 = st.columns(2)
    end_action["assignee"] = e1.text_input("Assignee (person or queue)", value=action.get("assignee", ""),
                                           key=f"pol_end_assignee_{tag}", disabled=not can_edit)
    end_action["note"] = e2.text_input("Note", value=action.get("note", ""), key=f"pol_end_note_{tag}", disabled=not can_edit)
elif kind == "status":
    end_action["status"] = st.selectbox("Status", list(END_STATUSES), key=f"pol_end_status_{tag}", disabled=not can_edit,
                                        index=list(END_STATUSES).index(action.get("status", "escalated")))
elif kind == "agency":
    e1, e2, e3 = st.columns(3)
    end_action["agency"] = e1.text_input("Agency", value=action.get("agency", ""), key=f"pol_end_agency_{tag}",
                                         disabled=not can_edit)
    end_action["min_amount"] = e2.number_input("Above amount", min_value=0.0, key=f"pol_end_amount_{tag}",
                                               value=float(action.get("min_amount", 0)), disabled=not can_edit)
    end_action["min_days"] = int(e3.number_input("Above days past due", min_value=0, step=1, key=f"pol_end_days_{tag}",
                                                 value=int(action.get("min_days", 0)), disabled=not can_edit))


def edited_policy() -> Policy:
    """The policy as the form shows it (raises DunningPolicyError for a bad stage row)."""
    return Policy(name=name, stages=stages_from_rows(rows), grace_days=int(grace), min_days_between=int(spacing),
                  segment=segment.strip() or None, description=current.description if current else None,
                  interest_rate=Decimal(str(round(rate / 100, 6))) if rate else None,
                  book_fees=bool(book), end_action=end_action,
                  config_id=current.config_id if current else None)


# -- what it would have done -----------------------------------------------------------------------------
st.subheader("Simulate before saving")
s1, s2 = st.columns(2)
sim_start = s1.date_input("From", value=as_of - timedelta(days=30), key="pol_sim_from")
sim_end = s2.date_input("To", value=as_of, key="pol_sim_to")
if st.button("Simulate", key="pol_simulate"):
    try:
        result = simulate_policy(store, edited_policy(), sim_start, sim_end)
    except (DunningPolicyError, ValueError) as exc:
        st.error(str(exc))
    else:
        st.caption(f"{int(result['messages'].sum()) if len(result) else 0} message(s) from {sim_start} to {sim_end} "
                   "with this policy over the ledger as it was each day (nothing sent, nothing saved).")
        data_table(simulation_totals(result), hide_index=True, width="stretch", key="pol_sim_totals")
        data_table(result, hide_index=True, width="stretch", key="pol_sim_days")

# -- save, clone, retire ---------------------------------------------------------------------------------
if can_edit:
    reason = st.text_input("Why (kept with the version)", key="pol_reason")
    b1, b2, b3 = st.columns(3)
    if b1.button("Save", type="primary", key="pol_save"):
        try:
            done = save_policy(store, actor, edited_policy(), reason=reason)
        except DunningPolicyError as exc:
            st.error(str(exc))
        else:
            st.session_state["policies_flash"] = f"{name}: {done['action']} (version {done['version']})."
            st.session_state.pop(f"pol_stages_{tag}", None)
            st.rerun()
    if current is not None:
        clone_name = b2.text_input("Clone as", key="pol_clone_name", label_visibility="collapsed",
                                   placeholder="Clone as (new name)")
        if b2.button("Clone", key="pol_clone"):
            try:
                done = clone_policy(store, actor, current.name, clone_name)
            except DunningPolicyError as exc:
                st.error(str(exc))
            else:
                st.session_state["policies_flash"] = f"Cloned {current.name} as {clone_name}."
                st.rerun()
        if b3.button("Retire", key="pol_retire"):
            done = retire_policy(store, actor, current.name)
            st.session_state["policies_flash"] = (f"{current.name} is retired; its {done['customers']} customer(s) "
                                                  "now follow their segment's policy.")
            st.session_state.pop("policy_choice", None)
            st.rerun()

# -- exhausted -------------------------------------------------------------------------------------------
st.subheader("Exhausted")
st.caption(f"Customers with an open invoice that got every stage of their policy (as of {as_of}).")
queue = exhausted_customers(store, as_of)
if queue.empty:
    st.info("No customer has exhausted their dunning policy.")
else:
    data_table(queue, hide_index=True, width="stretch", key="pol_exhausted")
    if may(actor, "act_on_customers") and st.button("Take the end actions due", key="pol_end_run"):
        taken = run_end_actions(store, actor, as_of)
        st.session_state["policies_flash"] = f"{len(taken)} end action(s) taken."
        st.rerun()
