"""Team: each collector's portfolio, activity, promises and cash collected, as a table and charts."""

import streamlit as st

from analytics.kpis.collector_kpis import collector_kpis
from pages.cached import cached
from pages.charts import bar_chart, show
from pages.filters import dashboard, footer, stop_when_nothing_matches
from pages.session import get_store, require_page
from pages.tables import money_columns, show_table

require_page("team")
store = get_store()
view = dashboard(store, "Team")
currency = view.reporting_currency
team = cached(collector_kpis, store, view.start, view.end, view.filters)
if team.empty:
    stop_when_nothing_matches(store, view, "collectors")
team = team.assign(collector=team["collector"].fillna("(unassigned)"))

# -- headline ---------------------------------------------------------------------------------------
cols = st.columns(4)
cols[0].metric("Collectors", f"{(team['collector'] != '(unassigned)').sum():,}", border=True)
cols[1].metric(f"Overdue AR owned ({currency})", f"{team['overdue_ar'].sum():,.0f}", border=True,
               help=f"As of {view.end:%d %b %Y}, the period end.")
due, kept = team["promises_due"].sum(), team["promises_kept"].sum()
cols[2].metric("Promises kept (%)", f"{kept / due * 100:.1f}" if due else "n/a", border=True,
               help="Paid in full on or before the promised date, of the promises due in the period.")
cols[3].metric(f"Collected within 14 days of an action ({currency})", f"{team['collected_14d'].sum():,.0f}",
               border=True)

# -- charts -----------------------------------------------------------------------------------------
left, right = st.columns(2)
with left:
    show(bar_chart(team, "collector", {"open_ar": "Open AR", "overdue_ar": "Overdue AR"},
                   title="Portfolio per collector", x_title="Collector", y_title=f"Amount ({currency})",
                   unit=currency), key="team_portfolio")
    show(bar_chart(team, "collector", {"kept_pct": "Promises kept"}, title="Promises kept per collector",
                   x_title="Collector", y_title="Kept (% of promises due)", unit="%"), key="team_kept")
with right:
    show(bar_chart(team, "collector", {"calls": "Calls", "emails": "Emails", "notes": "Notes"}, stacked=True,
                   title="Actions per collector in the period", x_title="Collector", y_title="Actions",
                   unit="count"), key="team_actions")
    show(bar_chart(team, "collector", {"collected_14d": "Collected"},
                   title="Cash collected within 14 days of an action", x_title="Collector",
                   y_title=f"Collected ({currency})", unit=currency), key="team_collected")

# -- the table --------------------------------------------------------------------------------------
st.subheader("Collector KPIs")
show_table(team, f"collector_kpis_{view.start:%Y-%m}_{view.end:%Y-%m}", "team_table",
           column_config=money_columns(["open_ar", "overdue_ar", "collected_14d"], currency) | {
               "actions_per_day": st.column_config.NumberColumn("Actions per working day", format="%.1f"),
               "kept_pct": st.column_config.NumberColumn("Kept (%)", format="%.1f")})

footer(store)
