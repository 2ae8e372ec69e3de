"""Cash forecast: expected collections per week for 13 weeks, with the interval and the backtested
accuracy beside the chart; a breakdown by segment, collector or currency; the invoices behind a week.
The backtest is never run on page load: the latest stored one is read (its date shown); who may run
backtests has a button to run and store a new one (minutes on a large ledger)."""

import pandas as pd
import streamlit as st

from analytics.access.roles import may
from analytics.forecasts.backtest import ForecastError
from analytics.forecasts.cash_forecast import WEEKS, cash_forecast
from analytics.forecasts.stored_backtests import run_and_store
from pages.cached import cached
from pages.charts import bar_chart, show
from pages.filters import dashboard, footer, stop_when_nothing_matches
from pages.session import get_store, require_page
from pages.tables import money_columns, show_table

actor = require_page("cash_forecast")
store = get_store()
view = dashboard(store, "Cash forecast")
currency = view.reporting_currency
forecast = cached(cash_forecast, store, actor, view.as_of, WEEKS, view.filters)
weekly: pd.DataFrame = forecast["weekly"]
items: pd.DataFrame = forecast["items"]
backtest = forecast["backtest"]
summary = backtest.summary

# -- which backtest the forecast uses, and running a new one -----------------------------------------
if backtest.backtest_id is None:
    st.info(summary["reason"])
else:
    st.caption(f"Backtest {backtest.backtest_id} of {backtest.run_at:%Y-%m-%d %H:%M} (ledger to "
               f"{backtest.ledger_last}): it picks the method and the interval below.")
if may(actor, "run_backtests") and st.button("Run the backtest now", key="cash_forecast_run_backtest",
                                             help="Walk-forward over the last 12 months, stored for this page."):
    try:
        with st.spinner("Backtesting the last 12 months…"):
            run_and_store(store, actor)
        st.rerun()
    except ForecastError as exc:
        st.error(str(exc))
if items.empty:
    stop_when_nothing_matches(store, view, "open invoices")

# -- headline ---------------------------------------------------------------------------------------
cols = st.columns(4)
cols[0].metric(f"Expected in {WEEKS} weeks ({currency})", f"{weekly['expected'].sum():,.0f}", border=True,
               help="Promises to pay × their kept rate, then every open invoice on its predicted payment date.")
cols[1].metric(f"Of which promised ({currency})", f"{weekly['promised'].sum():,.0f}", border=True,
               help="Pending promises with a date in the horizon × the kept rate of past promises.")
cols[2].metric(f"Not expected within {WEEKS} weeks ({currency})", f"{forecast['beyond_horizon']:,.0f}",
               border=True, help="Open amounts predicted to be paid after the last week.")
cols[3].metric("Promises kept rate (%)", f"{forecast['kept_rate'] * 100:.0f}", border=True,
               help="Kept / (kept + broken) of the promises whose date has passed.")

# -- the weekly chart, with the backtested accuracy beside it ----------------------------------------
chart, accuracy = st.columns([3, 1])
with chart:
    show(bar_chart(weekly, "week_end", {"promised": "Promised (× kept rate)", "predicted": "Predicted payment dates"},
                   title="Expected collections per week", x_title="Week ending", y_title=f"Amount ({currency})",
                   unit=currency, stacked=True), key="cash_forecast_weeks")


def _figure(key: str, scale: float = 1.0, unit: str = "") -> str:
    value = summary.get(key)
    return "n/a" if value is None else f"{value * scale:.1f}{unit}"


with accuracy:
    st.markdown("**Backtested accuracy**")
    st.caption(f"Walk-forward over {summary.get('periods', 0)} months, "
               f"{summary.get('paid_targets', 0):,} paid invoices (seed {summary.get('seed')}).")
    st.dataframe(pd.DataFrame({
        "figure": ["MAE (days)", "Late / on time right (%)", "WAPE 14 days (%)", "WAPE 30 days (%)"],
        "baseline": [_figure("baseline_mae_days"), _figure("baseline_late_accuracy", 100),
                     _figure("baseline_wape_14d", 100), _figure("baseline_wape_30d", 100)],
        "model": [_figure("model_mae_days"), _figure("model_late_accuracy", 100),
                  _figure("model_wape_14d", 100), _figure("model_wape_30d", 100)],
    }), hide_index=True, key="cash_forecast_accuracy")
    st.text(summary.get("reason", ""))

st.subheader("Week by week")
st.caption("Low and high: the expected amount × the 2.5% and 97.5% quantiles of actual / forecast "
           "collections per week in the backtest.")
show_table(weekly, f"cash_forecast_{view.as_of:%Y-%m-%d}", "cash_forecast_table",
           column_config=money_columns(["promised", "predicted", "expected", "low", "high"], currency))

# -- by segment, collector or currency ---------------------------------------------------------------
st.subheader("By segment, collector or currency")
by = st.selectbox("Break down by", ["segment", "collector", "currency"], key="cash_forecast_by")
within = items[items["week"] > 0].assign(**{by: items[by].fillna("(none)")})
breakdown = within.pivot_table(index=by, columns="week", values="amount", aggfunc="sum", fill_value=0.0)
breakdown.columns = [f"week {w}" for w in breakdown.columns]
breakdown.insert(0, "total", breakdown.sum(axis=1))
show_table(breakdown.reset_index().sort_values("total", ascending=False), f"cash_forecast_by_{by}",
           "cash_forecast_breakdown", column_config=money_columns(list(breakdown.columns), currency))

# -- the invoices behind a week ---------------------------------------------------------------------
st.subheader("Invoices behind a week")
labels = {int(r.week): f"Week {r.week}: {r.week_start:%d %b} – {r.week_end:%d %b %Y}" for r in weekly.itertuples()}
week = st.selectbox("Week", list(labels), format_func=labels.get, key="cash_forecast_week")
chosen = items[items["week"] == week][["document_number", "customer_id", "segment", "collector", "currency",
                                       "due_date", "expected_date", "source", "amount"]]
show_table(chosen, f"cash_forecast_week_{week}", "cash_forecast_invoices",
           column_config=money_columns(["amount"], currency))

footer(store)
