"""Bulk outreach: filter customers (by an invoice's days past due, and separately by the oldest
invoice), select many, preview each one's message (its dunning stage's template, or one chosen),
send it to all at once. The preview's "sendable" count is what the send does (one re-check)."""

import streamlit as st

from analytics.access.roles import PermissionDenied
from analytics.collections.bulk_selection import (
    STAGE_TEMPLATE,
    bulk_preview,
    bulk_send,
    select_customers,
    sendable,
)
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.message_templates import template_names
from analytics.collections.outreach.outbox import outbox
from analytics.collections.worklist import default_as_of
from analytics.ledger.filters import filter_choices
from analytics.settings import load_settings
from analytics.store.schema import CUSTOMER_STATUSES
from pages.action_keys import action_done, action_key
from pages.cached import cached
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import data_table
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
# by an invoice's days past due (its matching invoices are what the send lists), and separately by the oldest
MODES = {"between": "an invoice between", "exactly": "an invoice exactly", "at least": "an invoice at least",
         "any": "no invoice filter"}
mode = st.radio("Customers with", list(MODES), horizontal=True, key="bulk_dpd_mode", format_func=MODES.get)
c = st.columns(4)
dpd_lo = c[0].number_input("Days past due from", min_value=-365, max_value=3650, value=1, key="bulk_dpd_lo",
                           disabled=mode == "any")
dpd_hi = c[1].number_input("to (same number: exactly)", min_value=-365, max_value=3650, value=3650, key="bulk_dpd_hi",
                           disabled=mode != "between")
min_overdue = c[2].number_input(f"Overdue at least ({currency})", min_value=0.0, value=0.0, step=500.0,
                                key="bulk_min_overdue")
quiet_days = c[3].number_input("Not contacted for days (0: any)", min_value=0, value=0, key="bulk_quiet")
c = st.columns(3)
by_oldest = c[0].checkbox("Also filter by the oldest invoice", value=False, key="bulk_oldest_on")
oldest_lo = c[1].number_input("Oldest open invoice, days late: from", min_value=-365, max_value=3650, value=1,
                              key="bulk_oldest_lo", disabled=not by_oldest)
oldest_hi = c[2].number_input("Oldest open invoice, days late: to", min_value=-365, max_value=3650, value=3650, key="bulk_oldest_hi",
                              disabled=not by_oldest)
c = st.columns(3)
# the segments the customers have (a team's own words, not the demo's four)
segments = c[0].multiselect("Segment", cached(filter_choices, store)["segment"], key="bulk_segments")
statuses = c[1].multiselect("Status", CUSTOMER_STATUSES, default=["active"], key="bulk_statuses")
mine = c[2].checkbox("Only my customers", value=actor.role == "collector", key="bulk_mine")

invoice_days = {"between": (int(dpd_lo), int(dpd_hi)), "exactly": (int(dpd_lo), int(dpd_lo)),
                "at least": (int(dpd_lo), None), "any": None}[mode]
try:
    found = select_customers(
        store, as_of, invoice_days=invoice_days, oldest_days=(int(oldest_lo), int(oldest_hi)) if by_oldest else None,
        min_overdue=min_overdue, segments=segments, statuses=statuses, not_contacted_days=int(quiet_days) or None,
        collector=actor.username if mine else None)
except ValueError as exc:
    st.error(escape_markdown(exc))
    st.stop()

# -- selection ----------------------------------------------------------------------------------------
st.markdown(f"**{len(found)} customers match.**")
if found.empty:
    st.stop()
select_all = st.checkbox("Select all", value=False, key="bulk_select_all")
# the columns follow the filter: the matching invoices for an invoice filter, the oldest invoice otherwise
shown = (["matching_invoices", "matching_amount", "matching_days_from", "matching_days_to"]
         if invoice_days is not None else ["overdue_ar"])
shown += ["max_days_past_due"] if invoice_days is None or by_oldest else []
edited = st.data_editor(
    found.assign(select=select_all)[["select", "customer_id", "name", "segment", "status", "collector", *shown,
                                     "stage_template", "last_contact"]],
    hide_index=True, width="stretch", disabled=[c for c in found.columns], key=f"bulk_editor_{select_all}",
    column_config={"select": st.column_config.CheckboxColumn("Select"),
                   "overdue_ar": st.column_config.NumberColumn(f"Overdue ({currency})", format="%.2f"),
                   "matching_invoices": st.column_config.NumberColumn("Matching invoices"),
                   "matching_amount": st.column_config.NumberColumn(f"Matching open ({currency})", format="%.2f"),
                   "matching_days_from": st.column_config.NumberColumn("Their days past due: from"),
                   "matching_days_to": st.column_config.NumberColumn("to"),
                   "max_days_past_due": st.column_config.NumberColumn("Oldest invoice, days past due"),
                   "stage_template": st.column_config.TextColumn("Dunning stage template")},
)
chosen = edited.loc[edited["select"], "customer_id"].tolist()
st.markdown(f"**{len(chosen)} selected.**")

# -- template, preview, send ----------------------------------------------------------------------
names = [STAGE_TEMPLATE, *template_names(store)]  # files and templates made in the app, not retired
template = st.selectbox("Template", names, key="bulk_template", index=0,
                        help="Each customer's dunning stage: the template of the highest email stage its matching "
                             "invoices reached. A message lists only the matching invoices that are past due and "
                             "not disputed or paused by a promise.")
note = st.text_area("Personal note (optional, in every message)", key="bulk_note")
attach = st.radio("Attach a statement of every open item", ["none", "pdf", "xlsx"], horizontal=True,
                  key="bulk_attach", format_func={"none": "No", "pdf": "PDF", "xlsx": "Excel"}.get)
if chosen:
    config = OutreachConfig.from_settings()
    selection = found[found["customer_id"].isin(chosen)]
    drafts = bulk_preview(store, selection, template, as_of, by_invoice=invoice_days is not None, note=note,
                          sender_name=actor.name or actor.username, config=config)
    problems = [d for d in drafts if d.problem]
    with st.expander(f"Preview ({sendable(drafts)} sendable, {len(problems)} not)", expanded=True):
        by_id = {d.customer_id: d for d in drafts}
        pick = st.selectbox("Preview the message for", list(by_id), key="bulk_preview_for",
                            format_func=lambda c: f"{c} · {by_id[c].customer_name}")
        d = by_id[pick]
        st.markdown(f"**To:** {escape_markdown(d.to_address or '—')} ({escape_markdown(d.customer_name)})  \n"
                    f"**Subject:** {escape_markdown(d.subject)}")
        st.code(d.body, language=None)
        for d in problems:
            st.warning(escape_markdown(f"{d.customer_id} {d.customer_name}: {d.problem}"))
    if st.button(f"Send to {len(chosen)} customers", type="primary", key="bulk_send"):
        key = action_key("bulk", template, note, attach)  # the engine keys each customer's message under it
        try:
            result = bulk_send(store, actor, selection, template, as_of, by_invoice=invoice_days is not None,
                               action_key=key, note=note, attach=None if attach == "none" else attach, config=config)
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
    data_table(last[last["status"] != "sent"], hide_index=True, width="stretch")
