"""DSO & cash: DSO by both methods against Best Possible DSO, CEI, collections against sales."""

import pandas as pd
import streamlit as st

from analytics.kpis.dso import days_to_pay, dso_monthly
from analytics.kpis.summary import kpi_comparison
from pages.cached import cached
from pages.charts import bar_chart, line_chart, show
from pages.filters import dashboard, footer, nothing_matches, stop_when_nothing_matches
from pages.session import get_store, require_page
from pages.tables import money_columns, show_table
from pages.tiles import compared_tile, money_tile

require_page("dso")
store = get_store()
view = dashboard(store, "DSO & cash")
currency = view.reporting_currency
monthly = cached(dso_monthly, store, view.start, view.end, view.filters)
if monthly.empty or monthly[["credit_sales", "ar_end", "collections"]].fillna(0).abs().to_numpy().sum() == 0:
    stop_when_nothing_matches(store, view, "sales, payments or open invoices")

# -- headline: the last month of the period ---------------------------------------------------------
last = monthly.iloc[-1]


def _days(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1f}"


cols = st.columns(5)
# the headline month's DSO, BPDSO and CEI against last month and the same month last year (the
# Overview's comparison at that month end: the same figures as dso_monthly's last row)
compared = cached(kpi_comparison, store, pd.Timestamp(last["month_end"]).date(), view.filters)
compared_tile(cols[0], compared, "dso", "DSO, standard", currency,
              "AR at period end / credit sales of the period × days in the period.", _days(last["dso_standard"]))
cols[1].metric("Countback (days)", _days(last["dso_countback"]), border=True,
               help="DSO by the countback method: AR at period end exhausted against sales month by month backwards.")
compared_tile(cols[2], compared, "bpdso", "BPDSO", currency,
              "Best Possible DSO: current (not yet due) AR / credit sales × days.", _days(last["bpdso"]))
compared_tile(cols[3], compared, "cei", "CEI", currency,
              "(AR start + sales − AR end) / (AR start + sales − current AR end) × 100.", _days(last["cei"]))
money_tile(cols[4], "Collections", last["collections"], currency, "Payments posted in the month.")
st.caption(f"Headline figures: the month ending {last['month_end']:%d %b %Y}.")

# -- DSO against BPDSO, and CEI ---------------------------------------------------------------------
left, right = st.columns(2)
with left:
    show(line_chart(monthly, "month_end", {"dso_standard": "DSO (standard)", "dso_countback": "DSO (countback)",
                                           "bpdso": "Best Possible DSO"},
                    title="DSO by both methods against Best Possible DSO", x_title="Month end",
                    y_title="Days", unit="days", dashed=["bpdso"]), key="dso_lines")
with right:
    show(line_chart(monthly, "month_end", {"cei": "CEI"}, title="Collection effectiveness index (CEI)",
                    x_title="Month end", y_title="CEI (%)", unit="%"), key="dso_cei")

# -- collections against sales ----------------------------------------------------------------------
show(bar_chart(monthly, "month_end", {"credit_sales": "Credit sales", "collections": "Collections"},
               title="Collections against credit sales per month", x_title="Month",
               y_title=f"Amount ({currency})", unit=currency), key="dso_cash")

# -- days to pay ------------------------------------------------------------------------------------
st.subheader("Days to pay")
paid = cached(days_to_pay, store, view.start, view.end, view.filters)
if paid.empty or paid["invoices_paid"].fillna(0).sum() == 0:
    nothing_matches(view, "invoices paid in the period")
else:
    show(line_chart(paid, "month_end", {"avg_days_to_pay": "Days to pay", "avg_days_late": "Days late"},
                    title="Amount-weighted days to pay and days late of invoices paid each month",
                    x_title="Month", y_title="Days", unit="days"), key="dso_days_to_pay")
    show_table(paid, f"days_to_pay_{view.start:%Y-%m}_{view.end:%Y-%m}", "dso_paid_table",
               column_config=money_columns(["amount_paid"], currency))

# -- the monthly table ------------------------------------------------------------------------------
st.subheader("Month by month")
amounts = ["ar_start", "ar_end", "current_ar_end", "overdue_ar_end", "over_90_ar_end", "credit_sales",
           "collections", "write_offs"]
show_table(monthly, f"dso_{view.start:%Y-%m}_{view.end:%Y-%m}", "dso_table",
           column_config=money_columns(amounts, currency) | {
               c: st.column_config.NumberColumn(c, format="%.1f")
               for c in ("dso_standard", "dso_countback", "bpdso", "add", "cei", "pct_over_90")})

footer(store)
