"""Worklist: every actionable item for the signed-in collector (or a chosen one), highest priority first."""

import uuid
from datetime import timedelta

import pandas as pd
import streamlit as st

from analytics.access.roles import PermissionDenied
from analytics.collections.assignments import collectors
from analytics.collections.dunning_approval import stages_waiting
from analytics.collections.followups import FollowUpError, complete_task, snooze
from analytics.collections.targets import target_progress
from analytics.collections.worklist import (
    HIGH_SHARE,
    MEDIUM_SHARE,
    REASON_LABELS,
    STALE_DAYS,
    UPCOMING_TASK_DAYS,
    default_as_of,
    unassigned_note,
    unassigned_past_due,
    worklist,
)
from analytics.settings import load_settings
from pages.cached import cached
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.stage_approval import approve_or_skip
from pages.tables import data_table, downloads

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
if flash := st.session_state.pop("worklist_flash", None):
    st.success(flash)

SHORT_LABELS = {"calls": "Calls", "emails": "Emails", "overdue_balance": "Overdue", "share_90_plus": "90+ share",
                "promises_kept_pct": "Kept"}  # the full label (and the currency) in each tile's help

# -- targets: the period's progress of the collector shown ---------------------------------------
progress = cached(target_progress, store, as_of, collector) if collector else None
if progress is not None and len(progress):
    st.caption(f"Targets for {escape_markdown(collector)} (the period holding {as_of})")
    for start in range(0, len(progress), 5):
        cells = st.columns(5)
        for cell, t in zip(cells, progress.iloc[start:start + 5].itertuples(index=False), strict=False):
            pct = "%" if t.unit == "%" else ""
            actual = "n/a" if pd.isna(t.actual) else f"{t.actual:,.{1 if pct else 0}f}{pct}"
            sign = "≥" if t.direction == "at least" else "≤"
            cell.metric(f"{SHORT_LABELS.get(t.metric, t.label)} · {t.period}", actual, border=True,
                        delta=f"{'met' if t.met else 'not yet'} {sign} {t.target:,.0f}{pct}",
                        delta_color="normal" if t.met else "inverse",
                        help=f"{t.label} per {t.period}, {t.direction} {t.target:,.2f}{pct}"
                             + (f" {currency}" if t.unit == "amount" else "")
                             + f"; {t.period_start} to {t.period_end}; progress "
                             + ("n/a" if pd.isna(t.progress_pct) else f"{t.progress_pct:.0f} %"))


def open_customer(customer_id: str) -> None:
    """Open the Customer 360 on `customer_id`, remembering this list so "Next item" can walk it."""
    st.session_state["worklist_walk"] = {"as_of": as_of, "collector": collector, "seen": [customer_id]}
    st.session_state["worklist_table_gen"] = st.session_state.get("worklist_table_gen", 0) + 1
    st.switch_page("pages/customer.py", query_params={"customer": customer_id})


def shown_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The items as shown: reason and amount first, then the customer, the why and the parts."""
    why = (frame["amount_at_risk"].map("{:,.0f}".format) + " × " + frame["days_factor"].astype(str) + " d × "
           + frame["history_factor"].map("{:.2f}".format) + " × risk " + frame["risk_factor"].map("{:.2f}".format))
    return frame.assign(why=why)[["rank", "band", "reason_label", "amount_at_risk", "customer_name", "detail", "why",
                                  "customer_id", "priority", "days_factor", "history_factor", "risk_factor", "since",
                                  "collector"]]


COLUMNS = {
    "rank": st.column_config.NumberColumn("#", format="%d", help="Work the list from the top", pinned=True),
    "band": st.column_config.TextColumn(
        "Band", pinned=True, help=f"High: the top items holding {HIGH_SHARE:.0%} of the list's priority; Medium: "
                                  f"up to {MEDIUM_SHARE:.0%}; Low: the rest"),
    "reason_label": st.column_config.TextColumn("Reason", pinned=True, width="medium"),
    "amount_at_risk": st.column_config.NumberColumn(f"Amount at risk ({currency})", format="%,.2f", pinned=True),
    "customer_name": st.column_config.TextColumn("Name", width="medium"),
    "detail": st.column_config.TextColumn("Details", width="large"),
    "why": st.column_config.TextColumn(
        "Priority parts", help="Amount at risk × days factor (oldest days past due, at least 1) × history factor "
                               "(1 + average days late over the last year, 0 to 90, ÷ 30)"),
    "customer_id": "Customer",
    "priority": st.column_config.NumberColumn("Priority", format="%,.0f",
                                              help="Amount at risk × days factor × history factor × risk factor"),
    "days_factor": st.column_config.NumberColumn("Days factor", help="Oldest days past due, at least 1"),
    "history_factor": st.column_config.NumberColumn(
        "History factor", format="%.2f", help="1 + average days late over the last year (0 to 90) ÷ 30"),
    "risk_factor": st.column_config.NumberColumn(
        "Risk factor", format="%.2f", help="1 + 0.25 × (100 − the latest risk score) ÷ 100; 1 when not scored"),
    "since": st.column_config.DatetimeColumn("Since", format="YYYY-MM-DD"),
    "collector": "Collector",
}

# -- the list -----------------------------------------------------------------------------------
now = items[items["group"] == "now"]
if unassigned := unassigned_note(cached(unassigned_past_due, store, as_of), currency):
    st.info(unassigned)  # work nobody's list holds: say so, so a blank list is not taken for done
if now.empty:
    st.success("The list is blank: you have done everything. Nothing needs you today.")
else:
    counts = now["reason"].value_counts()
    customers = now["customer_id"].nunique()
    st.caption(f"**{len(now)} item{'s' * (len(now) != 1)} · {customers} customer{'s' * (customers != 1)}** · "
               + " · ".join(f"{REASON_LABELS[r]}: {n}" for r, n in counts.items())
               + " · click a row to open the customer")
    st.caption("Priority = amount at risk × days factor (oldest days past due, at least 1) × history factor "
               "(1 + average days late over the last year, 0 to 90, ÷ 30); hover the headers for more.")
    gen = st.session_state.get("worklist_table_gen", 0)
    picked_rows = data_table(shown_columns(now), hide_index=True, width="stretch", column_config=COLUMNS,
                               height=min(38 + 35 * len(now), 560), on_select="rerun", selection_mode="single-row",
                               key=f"worklist_table_{gen}")
    if picked_rows.selection.rows:
        open_customer(str(now["customer_id"].iloc[picked_rows.selection.rows[0]]))
    downloads(shown_columns(items).assign(group=items["group"]), f"worklist_{collector or 'team'}_{as_of}",
              "worklist_export")

# -- tasks: done from the list ------------------------------------------------------------------
tasks = items[items["reason"] == "task_due"]
if len(tasks):
    st.subheader("Tasks")
    for task in tasks.head(30).itertuples(index=False):
        line, button = st.columns([6, 1])
        state = {"now": "due", "upcoming": "not yet due", "stale": "stale"}[task.group]
        line.markdown(f"**{escape_markdown(task.customer_name)}** ({escape_markdown(task.customer_id)}) · {state} · "
                      f"{escape_markdown(task.detail)}")
        if button.button("Done", key=f"worklist_task_done_{int(task.activity_id)}"):
            try:
                complete_task(store, actor, int(task.activity_id))
            except (FollowUpError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
            else:
                st.session_state["worklist_flash"] = "Task done."
                st.rerun()

# -- manual dunning stages: approve and send, or skip ---------------------------------------------
waiting = stages_waiting(store, as_of, collector)
if len(waiting):
    st.subheader(f"Stages waiting for approval: {len(waiting)}")
    st.caption("Manual dunning stages due: approve to let each of the stage's channels act (emails go out, "
               "letter, call and SMS tasks are made), or skip to send nothing and move the invoices on.")
    approve_or_skip(store, actor, waiting.head(30), as_of, currency, key="worklist", flash="worklist_flash")

# -- apart: upcoming and stale ------------------------------------------------------------------
for group, title, note in (
        ("upcoming", "Upcoming tasks (not yet due)", f"Tasks due in the next {UPCOMING_TASK_DAYS} days."),
        ("stale", "Stale items", f"Items that arose more than {STALE_DAYS} days before {as_of}: not ranked with "
                                 "the list; work them or close them.")):
    part = items[items["group"] == group]
    if len(part):
        st.subheader(f"{title}: {len(part)}")
        st.caption(note)
        data_table(shown_columns(part).drop(columns=["rank", "band"]), hide_index=True, width="stretch",
                     column_config=COLUMNS, key=f"worklist_{group}_table")

if items.empty:
    st.stop()

# -- open a customer ------------------------------------------------------------------------------
st.subheader("Work an item")
labels = {i: f"{r.customer_id} · {r.customer_name} · {r.reason_label}" for i, r in items.head(200).iterrows()}
picked = st.selectbox("Item", list(labels), format_func=labels.get, key="worklist_item")
row = items.loc[picked]
if st.button(f"Open {escape_markdown(row.customer_name)} (customer 360)", icon=":material/person:",
             key="worklist_open"):
    open_customer(str(row.customer_id))

# -- snooze ---------------------------------------------------------------------------------------
with st.form("snooze_form"):
    st.markdown("**Snooze** this item until a date, with a reason")
    c1, c2 = st.columns([1, 2])
    until = c1.date_input("Until", value=as_of + timedelta(days=7), key="snooze_until")
    reason = c2.text_input("Reason", key="snooze_reason")
    key = st.session_state.setdefault("snooze_key", f"snooze-{uuid.uuid4().hex[:16]}")
    if st.form_submit_button("Snooze"):
        try:
            snooze(store, actor, row.customer_id, until, reason, item=row.reason, today=as_of,
                   idempotency_key=f"{key}-{row.customer_id}-{row.reason}"[:64])
        except (FollowUpError, PermissionDenied) as exc:
            st.error(escape_markdown(exc))
        else:
            st.session_state.pop("snooze_key", None)
            st.success(f"Snoozed {escape_markdown(row.customer_name)} ({row.reason_label}) until {until}.")
            st.rerun()
