"""Audit log: who changed what, when, with the values before and after. Read only."""

from datetime import date, timedelta

import streamlit as st

from analytics.access.audit import audit_choices, readable_audit, search_audit
from analytics.kpis.columns import with_headers
from pages.session import get_store, require_page
from pages.tables import csv_bytes, data_table

require_page("audit")
store = get_store()
LIMIT = 5_000

st.title("Audit log")
st.caption("Every change made in AR Desk or through `ardesk`, newest first. The log cannot be edited.")

# -- filters ------------------------------------------------------------------------------------
choices = audit_choices(store)
a, b, c = st.columns(3)
actors = a.multiselect("Who", choices["actor"], key="audit_actors")
actions = b.multiselect("Action", choices["action"], key="audit_actions")
entities = c.multiselect("Entity", choices["entity"], key="audit_entities")
d, e = st.columns([1, 2])
today = date.today()
period = d.date_input("Between", value=(today - timedelta(days=30), today), key="audit_period")
text = e.text_input("Containing", key="audit_text", placeholder="a customer id, a username, a value ...")
start, end = (period[0], period[-1]) if isinstance(period, tuple) and period else (None, None)

# -- the lines ----------------------------------------------------------------------------------
lines = search_audit(store, actors, actions, entities, start, end, text, limit=LIMIT + 1)
shown = lines.head(LIMIT)
st.caption(f"{len(shown):,} line(s)" + (f"; only the newest {LIMIT:,} are shown, narrow the filters"
                                       if len(lines) > LIMIT else ""))
data_table(
    readable_audit(store, shown), hide_index=True, width="stretch", row_height=60,
    column_config={
        "audit_id": st.column_config.NumberColumn("#", format="%d", width="small"),
        "logged_at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
        "changes": st.column_config.TextColumn("Changes (before → after)", width="large"),
    },
)
st.caption("Changes: one field per line; a field given or removed shows its one value.")

# -- export -------------------------------------------------------------------------------------
def _csv() -> bytes:
    # Every matching line, not only the shown ones; built when the button is clicked.
    every = search_audit(store, actors, actions, entities, start, end, text, limit=None)
    return csv_bytes(with_headers(readable_audit(store, every)))


st.download_button("Download the audit log (CSV)", _csv, file_name=f"ardesk-audit-{today:%Y%m%d}.csv",
                   mime="text/csv", icon=":material/download:", on_click="ignore", disabled=lines.empty)
