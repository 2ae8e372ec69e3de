"""Requests between departments: the counts per department and type, my department's queue, my own
requests, and the form to take, hand over and decide one. Requests are raised from a customer's 360
page (Timeline tab)."""

import streamlit as st

from analytics.access.roles import PermissionDenied, may
from analytics.collections.requests import (
    DEFAULT_DEPARTMENT,
    FINAL_STATUSES,
    REQUEST_DEPARTMENTS,
    REQUEST_TYPES,
    RequestError,
    assign_request,
    claim_request,
    list_requests,
    request_counts,
    request_workers,
    set_request_status,
    user_department,
)
from analytics.collections.worklist import default_as_of
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import data_table

actor = require_page("requests")
store = get_store()

st.title("Requests")
as_of = default_as_of(store)
department = user_department(store, actor.username)
is_admin = actor.role == "admin"
st.caption(f"As of {as_of} · your queue: {'every department' if is_admin else department or 'none'} · "
           "raise a request from a customer's 360 page (Timeline tab) · by type: "
           + ", ".join(f"{REQUEST_TYPES[t]} → {d}" for t, d in DEFAULT_DEPARTMENT.items()))
if flash := st.session_state.pop("requests_flash", None):
    st.success(flash)

# -- the counts ----------------------------------------------------------------------------------------
counts = request_counts(store, as_of)
total = counts[(counts["department"] == "all") & (counts["request_type"] == "all")]
m = st.columns(4)
m[0].metric("Open", int(total["open"].sum()), help="Open or in progress.")
m[1].metric("Overdue", int(total["overdue"].sum()), help=f"Open with a due date before {as_of}.")
m[2].metric("Closed", int(total["closed"].sum()), help="Approved, rejected or done.")
median = total["median_days_to_close"].iloc[0] if len(total) else None
m[3].metric("Median days to close", "—" if median is None or median != median else f"{median:.1f}",
            help="Calendar days from the day raised to the day closed, over the closed requests.")
if counts.empty:
    st.info("No requests yet.")
else:
    shown = counts.assign(request_type=counts["request_type"].map(lambda t: REQUEST_TYPES.get(t, t)))
    data_table(shown, hide_index=True, width="stretch", column_config={
        "department": "Department", "request_type": "Type", "open": "Open", "overdue": "Overdue",
        "closed": "Closed", "median_days_to_close": st.column_config.NumberColumn("Median days to close",
                                                                                 format="%.1f")})

# -- my department's queue and my own ------------------------------------------------------------------
COLUMNS = ["request_id", "customer_id", "customer_name", "request_type", "subject", "owner", "raised_by",
           "due_date", "status"]
if is_admin:
    queue_of = st.selectbox("Queue", [None, *REQUEST_DEPARTMENTS], key="requests_queue",
                            format_func=lambda d: d or "every department")
else:
    queue_of = department
queue = list_requests(store, department=queue_of) if queue_of or is_admin else None
if queue is None:
    st.info("You work no department's queue; the requests you raised are below.")
else:
    st.subheader(f"Queue: {escape_markdown(queue_of or 'every department')} ({len(queue)} open)")
    if queue.empty:
        st.success("Nothing open in this queue.")
    else:
        data_table(queue[COLUMNS], hide_index=True, width="stretch")

mine = list_requests(store, person=actor.username)
st.subheader(f"Mine: raised by me or mine to do ({len(mine)} open)")
if mine.empty:
    st.caption("Nothing open.")
else:
    data_table(mine[COLUMNS], hide_index=True, width="stretch")

# -- work a request --------------------------------------------------------------------------------------
workable = queue if queue is not None and may(actor, "work_requests") else None
if workable is not None and len(workable):
    by_id = workable.set_index("request_id")
    with st.form("request_work_form"):
        st.markdown("**Work a request**")
        which = st.selectbox("Request", by_id.index.astype(int).tolist(), key="request_pick",
                             format_func=lambda r: f"#{r} · {by_id.loc[r, 'customer_name']} · {by_id.loc[r, 'subject']}")
        c1, c2 = st.columns(2)
        status = c1.radio("Set it", ["in_progress", *FINAL_STATUSES], horizontal=True, key="request_status",
                          format_func={"in_progress": "in progress (take it)", "approved": "approved",
                                       "rejected": "rejected", "done": "done"}.get)
        note = c2.text_input("Note (required to reject)", key="request_note")
        if st.form_submit_button("Save", type="primary"):
            try:
                if status == "in_progress":
                    changed = claim_request(store, actor, which)
                else:
                    changed = set_request_status(store, actor, which, status, note)
            except (RequestError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
            else:
                st.session_state["requests_flash"] = (f"Request #{which}: {status.replace('_', ' ')}." if changed
                                                      else f"Request #{which} was so already; nothing changed.")
                st.rerun()
    with st.form("request_assign_form"):
        st.markdown("**Hand a request to a colleague**")
        c1, c2 = st.columns(2)
        handed = c1.selectbox("Request", by_id.index.astype(int).tolist(), key="request_assign_pick",
                              format_func=lambda r: f"#{r} · {by_id.loc[r, 'subject']}")
        colleagues = request_workers(store, queue_of)
        to = c2.selectbox("To", colleagues, key="request_assign_to")
        if st.form_submit_button("Hand over"):
            try:
                changed = assign_request(store, actor, handed, to or "")
            except (RequestError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
            else:
                st.session_state["requests_flash"] = (f"Request #{handed} is now {escape_markdown(to)}'s." if changed
                                                      else "Nothing to change.")
                st.rerun()
elif not may(actor, "work_requests"):
    st.caption("Your role may read requests but not work them.")
