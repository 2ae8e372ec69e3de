"""Team: each collector's portfolio, activity, promises and cash collected, as a table and charts."""

import streamlit as st

from analytics.access.roles import PermissionDenied, may
from analytics.collections.assignments import collectors
from analytics.collections.targets import METRICS, PERIODS, TargetError, set_target, target_progress
from analytics.kpis.collector_kpis import collector_kpis
from pages.cached import cached
from pages.charts import bar_chart, show
from pages.filters import dashboard, footer, stop_when_nothing_matches
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import money_columns, show_table
from pages.tiles import money_tile

actor = require_page("team")
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
money_tile(cols[1], "Overdue AR owned", team["overdue_ar"].sum(), currency,
           f"As of {view.end:%d %b %Y}, the period end.")
due, kept = team["promises_due"].sum(), team["promises_kept"].sum()
cols[2].metric("Promises kept (%)", f"{kept / due * 100:.1f}" if due else "n/a", border=True,
               help="Paid in full on or before the promised date, of the promises due in the period.")
money_tile(cols[3], "Collected in 14 days", team["collected_14d"].sum(), currency,
           "Collected within 14 days of an action, in the period.")

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

# -- targets ----------------------------------------------------------------------------------------
st.subheader("Targets")
if flash := st.session_state.pop("team_flash", None):
    st.success(flash)
progress = cached(target_progress, store, view.end, None)
if progress.empty:
    st.caption("No targets set yet." + (" Set one below." if may(actor, "set_targets") else ""))
else:
    st.caption(f"Each target against its period holding {view.end:%d %b %Y} (day: that day; week: Monday to it; "
               f"month: the 1st to it). Amounts in {currency}; shares in %.")
    show_table(progress.drop(columns=["metric", "unit", "set_at"]), f"collector_targets_{view.end:%Y-%m-%d}",
               "team_targets", column_config={
                   "label": "Metric", "target": st.column_config.NumberColumn("Target", format="%,.2f"),
                   "actual": st.column_config.NumberColumn("Actual", format="%,.2f"),
                   "progress_pct": st.column_config.ProgressColumn("Progress (%)", format="%.0f", min_value=0.0,
                                                                   max_value=100.0),
                   "met": st.column_config.CheckboxColumn("Met")})
if may(actor, "set_targets"):
    with st.form("target_form"):
        st.markdown("**Set a target** (replaces the collector's target for that metric and period)")
        c1, c2, c3, c4 = st.columns(4)
        who = c1.selectbox("Collector", collectors(store)["username"].tolist(), key="target_collector")
        metric = c2.selectbox("Metric", list(METRICS), key="target_metric",
                              format_func=lambda m: f"{METRICS[m][0]} ({METRICS[m][1]})")
        period = c3.selectbox("Period", PERIODS, key="target_period")
        value = c4.number_input("Target", min_value=0.0, step=1.0, key="target_value",
                                help=f"A count, an amount ({currency}) or a percent")
        if st.form_submit_button("Set target"):
            try:
                changed = set_target(store, actor, who, metric, period, value)
            except (TargetError, PermissionDenied) as exc:
                st.error(escape_markdown(exc))
            else:
                st.session_state["team_flash"] = (f"Target {'set' if changed else 'unchanged'}: "
                                                  f"{escape_markdown(who)} {METRICS[metric][0].lower()} per "
                                                  f"{period} {METRICS[metric][1]} {value:,.2f}.")
                st.rerun()

footer(store)
