"""Bulk outreach: filter customers, select many, preview a template, send it to all at once."""

import streamlit as st

from analytics.access.roles import PermissionDenied
from analytics.collections.bulk_selection import select_customers
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.delivery import send_now
from analytics.collections.outreach.outbox import outbox
from analytics.collections.outreach.queue import preview
from analytics.collections.outreach.templates import list_templates
from analytics.collections.worklist import default_as_of
from analytics.ledger.filters import filter_choices
from analytics.settings import load_settings
from analytics.store.schema import CUSTOMER_STATUSES
from pages.action_keys import action_done, action_key
from pages.cached import cached
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.uncertain_messages import decide_uncertain

actor = require_page("bulk")
store = get_store()
currency = load_settings().reporting_currency
as_of = default_as_of(store)

st.title("Bulk outreach")
if flash := st.session_state.pop("bulk_flash", None):
    st.success(flash)  # our words and counts only
if sent_links := st.session_state.get("bulk_sent_links"):
    for cid, name in sent_links[:10]:
        st.page_link("pages/customer.py", label=f"Open {escape_markdown(name)} ({escape_markdown(cid)})",
                     icon=":material/person:",
                     query_params={"customer": cid})

undecided = outbox(store, statuses=["uncertain"])
if len(undecided):
    st.subheader("Messages waiting for a decision")
    decide_uncertain(store, actor, undecided, OutreachConfig.from_settings(), key="bulk", flash="bulk_flash")

# -- filters ------------------------------------------------------------------------------------------
st.caption(f"Customers with open invoices as of {as_of}.")
c = st.columns(4)
dpd_lo = c[0].number_input("Days past due from", min_value=-365, max_value=3650, value=1, key="bulk_dpd_lo")
dpd_hi = c[1].number_input("to (same number: exactly)", min_value=-365, max_value=3650, value=3650, key="bulk_dpd_hi")
min_overdue = c[2].number_input(f"Overdue at least ({currency})", min_value=0.0, value=0.0, step=500.0,
                                key="bulk_min_overdue")
quiet_days = c[3].number_input("Not contacted for days (0: any)", min_value=0, value=0, key="bulk_quiet")
c = st.columns(3)
# the segments the customers have (a team's own words, not the demo's four)
segments = c[0].multiselect("Segment", cached(filter_choices, store)["segment"], key="bulk_segments")
statuses = c[1].multiselect("Status", CUSTOMER_STATUSES, default=["active"], key="bulk_statuses")
mine = c[2].checkbox("Only my customers", value=actor.role == "collector", key="bulk_mine")

found = select_customers(
    store, as_of, days_past_due=(int(dpd_lo), int(dpd_hi)), min_overdue=min_overdue, segments=segments,
    statuses=statuses, not_contacted_days=int(quiet_days) or None, collector=actor.username if mine else None)

# -- selection ----------------------------------------------------------------------------------------
st.markdown(f"**{len(found)} customers match.**")
if found.empty:
    st.stop()
select_all = st.checkbox("Select all", value=False, key="bulk_select_all")
edited = st.data_editor(
    found.assign(select=select_all)[["select", "customer_id", "name", "segment", "status", "collector", "overdue_ar",
                                     "max_days_past_due", "last_contact"]],
    hide_index=True, width="stretch", disabled=[c for c in found.columns], key=f"bulk_editor_{select_all}",
    column_config={"select": st.column_config.CheckboxColumn("Select"),
                   "overdue_ar": st.column_config.NumberColumn(f"Overdue ({currency})", format="%.2f")},
)
chosen = edited.loc[edited["select"], "customer_id"].tolist()
st.markdown(f"**{len(chosen)} selected.**")

# -- template, preview, send ----------------------------------------------------------------------
names = list_templates()
template = st.selectbox("Template", names, key="bulk_template",
                        index=names.index("reminder_friendly") if "reminder_friendly" in names else 0)
note = st.text_area("Personal note (optional, in every message)", key="bulk_note")
attach = st.radio("Attach a statement of open items", ["none", "pdf", "xlsx"], horizontal=True, key="bulk_attach",
                  format_func={"none": "No", "pdf": "PDF", "xlsx": "Excel"}.get)
if chosen:
    drafts = preview(store, chosen, template, as_of, note, sender_name=actor.name or actor.username)
    problems = [d for d in drafts if d.problem]
    with st.expander(f"Preview ({len(drafts) - len(problems)} sendable, {len(problems)} not)", expanded=True):
        by_id = {d.customer_id: d for d in drafts}
        shown = st.selectbox("Preview the message for", list(by_id), key="bulk_preview_for",
                             format_func=lambda c: f"{c} · {by_id[c].customer_name}")
        d = by_id[shown]
        st.markdown(f"**To:** {escape_markdown(d.to_address or '—')} ({escape_markdown(d.customer_name)})  \n"
                    f"**Subject:** {escape_markdown(d.subject)}")
        st.code(d.body, language=None)
        for d in problems:
            st.warning(escape_markdown(f"{d.customer_id} {d.customer_name}: {d.problem}"))
    if st.button(f"Send to {len(chosen)} customers", type="primary", key="bulk_send"):
        key = action_key("bulk", template, note, attach)  # the engine keys each customer's message under it
        try:
            result = send_now(store, actor, chosen, template, action_key=key, as_of=as_of, note=note,
                              attach=None if attach == "none" else attach, config=OutreachConfig.from_settings())
        except (OutreachError, PermissionDenied) as exc:
            st.error(escape_markdown(exc))
        else:
            if not result["status"].isin(["queued", "failed"]).any():
                action_done("bulk", key)  # else a second click retries the queued ones, never duplicates
            counts = result["status"].value_counts().to_dict()
            names = dict(zip(found["customer_id"], found["name"], strict=True))
            st.session_state["bulk_sent_links"] = [(c, names.get(c, c)) for c in
                                                   result.loc[result["status"] == "sent", "customer_id"]]
            st.session_state["bulk_flash"] = ("Bulk send finished: " +
                                              ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ".")
            st.session_state["bulk_result"] = result
            st.rerun()
if (last := st.session_state.get("bulk_result")) is not None and len(last[last["status"] != "sent"]):
    st.markdown("**Not sent in the last bulk send**")
    st.dataframe(last[last["status"] != "sent"], hide_index=True, width="stretch")
