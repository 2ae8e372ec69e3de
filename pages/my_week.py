"""My week: every task, request and promise due this week, grouped by day (later days included), and
completing my own. Managers also see the team's week."""

from datetime import timedelta

import streamlit as st

from analytics.access.roles import PermissionDenied
from analytics.collections.followups import FollowUpError, complete_task
from analytics.collections.my_week import TEAM_ROLES, week_items, week_of
from analytics.collections.requests import RequestError, set_request_status
from analytics.collections.worklist import default_as_of
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import data_table

actor = require_page("my_week")
store = get_store()

st.title("My week")
as_of = default_as_of(store)
monday, sunday = week_of(as_of)
if flash := st.session_state.pop("my_week_flash", None):
    st.success(flash)

team = False
if actor.role in TEAM_ROLES:  # managers
    team = st.radio("Whose", ["mine", "team"], horizontal=True, key="week_whose",
                    format_func={"mine": "Mine", "team": "The team"}.get) == "team"
earlier = st.checkbox("Also what is still open from before this week", key="week_earlier")
items = week_items(store, as_of, None if team else actor.username, earlier=earlier)
st.caption(f"Week of {monday:%a %d %b} to {sunday:%a %d %b %Y} (as of {as_of}) · {len(items)} open items · "
           "tasks assigned, requests owned or waiting in the department's queue, promises on the customers "
           "collected")

COLUMNS = ["kind", "item_id", "customer_id", "customer_name", "subject", "person", "status", "amount"]
if items.empty:
    st.success("Nothing due this week.")
before = items[items["overdue"]]
if len(before):
    with st.expander(f"Still open from before this week: {len(before)}", expanded=True):
        data_table(before[["due_date", *COLUMNS]], hide_index=True, width="stretch")

# -- day by day ------------------------------------------------------------------------------------------
due = items[~items["overdue"]]
for offset in range(7):
    day = monday + timedelta(days=offset)
    of_day = due[due["due_date"] == day]
    st.subheader(f"{day:%A %d %B}" + (" · as-of date" if day == as_of else ""))
    if of_day.empty:
        st.caption("Nothing due.")
    else:
        data_table(of_day[COLUMNS], hide_index=True, width="stretch")

# -- complete my own --------------------------------------------------------------------------------------
own = items[items["kind"] != "promise"]  # promises follow payments, not a click
if team:
    own = own[own["person"] == actor.username]
if len(own):
    labels = {(str(r.kind), int(r.item_id)): f"{r.kind} #{int(r.item_id)} · due {r.due_date:%a %d %b} · {r.subject}"
              for r in own.itertuples(index=False)}
    with st.form("week_done_form"):
        st.markdown("**Mark one of mine done**")
        pick = st.selectbox("Item", list(labels), format_func=labels.get, key="week_done_pick")
        if st.form_submit_button("Done", type="primary"):
            kind, item_id = pick
            try:
                changed = (complete_task(store, actor, item_id) if kind == "task"
                           else set_request_status(store, actor, item_id, "done"))
            except (FollowUpError, RequestError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
            else:
                st.session_state["my_week_flash"] = (f"{kind.title()} #{item_id} done." if changed
                                                     else f"{kind.title()} #{item_id} was done already.")
                st.rerun()
