"""Worklist: every actionable item for the signed-in collector (or a chosen one), highest priority first."""

import uuid
from datetime import date, timedelta

import streamlit as st

from analytics.access.roles import PermissionDenied
from analytics.collections.assignments import collectors
from analytics.collections.followups import FollowUpError, snooze
from analytics.collections.worklist import REASON_LABELS, default_as_of, worklist
from analytics.settings import load_settings
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page

actor = require_page("worklist")
store = get_store()
currency = load_settings().reporting_currency

st.title("Worklist")

# -- whose list, as of when ---------------------------------------------------------------------
cols = st.columns([1, 2])
as_of = cols[0].date_input("As of", value=default_as_of(store), key="worklist_as_of")
collector = actor.username
if actor.role == "admin":
    team = collectors(store)
    options = ["(whole team)", *team["username"].tolist()]
    choice = cols[1].selectbox("Collector", options, key="worklist_collector",
                               format_func=lambda u: u if u == "(whole team)" else
                               f"{u} ({int(team.set_index('username').loc[u, 'customers'])} customers)")
    collector = None if choice == "(whole team)" else choice
else:
    cols[1].markdown(f"**{escape_markdown(actor.name or actor.username)}**'s customers and tasks")

items = worklist(store, as_of, collector)

# -- the list -----------------------------------------------------------------------------------
if items.empty:
    st.success("The list is blank: you have done everything. Nothing needs you today.")
    st.stop()

counts = items["reason"].value_counts()
st.caption(" · ".join(f"{REASON_LABELS[r]}: {n}" for r, n in counts.items()))
st.caption("Priority = amount at risk × days factor (oldest days past due, at least 1) × history factor "
           "(1 + average days late over the last year, 0 to 90, ÷ 30).")
shown = items.assign(rank=range(1, len(items) + 1), open=[f"/customer?customer={c}" for c in items["customer_id"]])
st.dataframe(
    shown[["rank", "priority", "customer_id", "customer_name", "reason_label", "detail", "amount_at_risk", "days_factor",
           "history_factor", "since", "collector", "open"]],
    hide_index=True, width="stretch", height=min(38 + 35 * len(shown), 560),
    column_config={
        "rank": st.column_config.NumberColumn("#", format="%d", help="Work the list from the top"),
        "priority": st.column_config.ProgressColumn("Priority", format="%.0f", min_value=0.0,
                                                    max_value=max(float(items["priority"].max()), 1.0)),
        "customer_id": "Customer", "customer_name": "Name", "reason_label": "Reason", "detail": "Why",
        "amount_at_risk": st.column_config.NumberColumn(f"Amount at risk ({currency})", format="%.2f"),
        "days_factor": "Days factor", "history_factor": st.column_config.NumberColumn("History factor", format="%.2f"),
        "since": st.column_config.DatetimeColumn("Since", format="YYYY-MM-DD"),
        "open": st.column_config.LinkColumn("Open", display_text="Customer 360"),
    },
)

# -- open a customer ------------------------------------------------------------------------------
st.subheader("Work an item")
labels = {i: f"{r.customer_id} · {r.customer_name} · {r.reason_label}" for i, r in items.head(200).iterrows()}
picked = st.selectbox("Item", list(labels), format_func=labels.get, key="worklist_item")
row = items.loc[picked]
st.page_link("pages/customer.py", label=f"Open {escape_markdown(row.customer_name)} (customer 360)",
             icon=":material/person:",
             query_params={"customer": row.customer_id})

# -- snooze ---------------------------------------------------------------------------------------
with st.form("snooze_form"):
    st.markdown("**Snooze** this item until a date, with a reason")
    c1, c2 = st.columns([1, 2])
    until = c1.date_input("Until", value=date.today() + timedelta(days=7), key="snooze_until")
    reason = c2.text_input("Reason", key="snooze_reason")
    key = st.session_state.setdefault("snooze_key", f"snooze-{uuid.uuid4().hex[:16]}")
    if st.form_submit_button("Snooze"):
        try:
            snooze(store, actor, row.customer_id, until, reason, item=row.reason,
                   idempotency_key=f"{key}-{row.customer_id}-{row.reason}"[:64])
        except (FollowUpError, PermissionDenied) as exc:
            st.error(escape_markdown(exc))
        else:
            st.session_state.pop("snooze_key", None)
            st.success(f"Snoozed {escape_markdown(row.customer_name)} ({row.reason_label}) until {until}.")
            st.rerun()
