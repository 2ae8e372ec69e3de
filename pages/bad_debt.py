"""Bad debt: write-offs and bad debt % of sales over time, roll rates between buckets, the 90+ balance."""

import pandas as pd
import streamlit as st

from analytics.kpis.aging import bucket_labels
from analytics.kpis.bad_debt import bad_debt_monthly, roll_rates
from analytics.kpis.provision import DEFAULT_WINDOW_MONTHS, provision_at, provision_history
from analytics.kpis.summary import kpi_comparison
from pages.cached import cached
from pages.charts import bar_chart, heatmap, line_chart, show
from pages.filters import dashboard, footer, nothing_matches, stop_when_nothing_matches
from pages.session import get_store, require_page
from pages.tables import money_columns, show_table
from pages.tiles import compared_tile, money_tile

require_page("bad_debt")
store = get_store()
view = dashboard(store, "Bad debt")
currency = view.reporting_currency
monthly = cached(bad_debt_monthly, store, view.start, view.end, view.filters)
if monthly.empty or monthly[["credit_sales", "ar_end", "write_offs"]].fillna(0).abs().to_numpy().sum() == 0:
    stop_when_nothing_matches(store, view, "sales, write-offs or open invoices")

# -- headline ---------------------------------------------------------------------------------------
last = monthly.iloc[-1]
cols = st.columns(4)
money_tile(cols[0], "Write-offs, period", monthly["write_offs"].sum(), currency,
           f"Write-offs from {view.start:%b %Y} to {view.end:%b %Y}.")
# the headline month's bad debt and 90+ share against last month and the same month last year (the
# Overview's comparison at that month end: the same figures as bad_debt_monthly's last row)
compared = cached(kpi_comparison, store, pd.Timestamp(last["month_end"]).date(), view.filters)
compared_tile(cols[1], compared, "bad_debt_pct", "Bad debt, 12 m", currency,
              f"Write-offs / credit sales over the 12 months ending {last['month_end']:%d %b %Y}.",
              "n/a" if pd.isna(last["bad_debt_pct_12m"]) else f"{last['bad_debt_pct_12m']:.2f}")
money_tile(cols[2], "90+ balance", last["ar_90_plus"], currency,
           f"Open invoices more than 90 days past due on {last['month_end']:%d %b %Y}.")
compared_tile(cols[3], compared, "share_90_plus", "90+ share", currency,
              f"AR more than 90 days past due / open AR × 100, on {last['month_end']:%d %b %Y}.",
              f"{last['ar_90_plus'] / last['ar_end'] * 100:.1f}" if last["ar_end"] else "n/a")

# -- write-offs and bad debt % ----------------------------------------------------------------------
left, right = st.columns(2)
with left:
    show(bar_chart(monthly, "month_end", {"write_offs": "Write-offs"}, title="Write-offs per month",
                   x_title="Month", y_title=f"Write-offs ({currency})", unit=currency,
                   colours=["#c44e52"]), key="bad_debt_write_offs")
with right:
    show(line_chart(monthly, "month_end", {"bad_debt_pct": "Monthly", "bad_debt_pct_12m": "Rolling 12 months"},
                    title="Bad debt as % of credit sales", x_title="Month", y_title="Bad debt (% of sales)",
                    unit="%", dashed=["bad_debt_pct"]), key="bad_debt_pct")

# -- 90+ balance ------------------------------------------------------------------------------------
show(line_chart(monthly, "month_end", {"ar_90_plus": "More than 90 days past due", "ar_end": "All open AR"},
                title="Balance more than 90 days past due, at each month end", x_title="Month end",
                y_title=f"Amount ({currency})", unit=currency, dashed=["ar_end"]), key="bad_debt_90")

# -- roll rates -------------------------------------------------------------------------------------
st.subheader("Roll rates")
rolls = cached(roll_rates, store, view.start, view.end, view.filters)
if rolls.empty:
    nothing_matches(view, "aged balances to roll")
else:
    order = [b for b in bucket_labels("due") if b in set(rolls["from_bucket"])]
    rolls = rolls.assign(move=rolls["from_bucket"] + " → " + rolls["to_bucket"])
    moves = rolls.drop_duplicates("from_bucket").set_index("from_bucket").loc[order, "move"].tolist()
    matrix = rolls.pivot_table(index="move", columns="month_end", values="roll_rate", aggfunc="sum").reindex(moves)
    matrix.columns = [pd.Timestamp(c).strftime("%b %Y") for c in matrix.columns]
    show(heatmap(matrix, title="Share of each bucket's balance that rolled one bucket older by the next month end",
                 x_title="Month end", y_title="Bucket move", unit="%"), key="bad_debt_rolls")
    show_table(rolls.drop(columns="move"), f"roll_rates_{view.start:%Y-%m}_{view.end:%Y-%m}", "bad_debt_roll_table",
               column_config=money_columns(["from_balance", "rolled_balance"], currency) | {
                   "roll_rate": st.column_config.NumberColumn("Roll rate (%)", format="%.1f")})

# -- provision (expected credit loss) ---------------------------------------------------------------
st.subheader("Provision for expected credit losses")
st.caption("IFRS 9 simplified approach / CECL provision matrix: loss rate per bucket = the product of the average "
           "roll rates down to write-off over the window (what reaches the oldest bucket is lost), × the bucket's "
           "forward-looking factor, × the bucket's balance.")
labels = bucket_labels("due")
window = int(st.number_input("Roll-rate window (months)", min_value=1, max_value=36, value=DEFAULT_WINDOW_MONTHS,
                             step=1, key="provision_window"))
factor_cols = st.columns(len(labels))
factors = {label: float(col.number_input(f"Factor {label}", min_value=0.0, max_value=10.0, value=1.0, step=0.05,
                                         key=f"provision_factor_{label}", format="%.2f"))
           for label, col in zip(labels, factor_cols, strict=True)}
matrix = cached(provision_at, store, view.as_of, window, factors, view.filters)
provision_total = float(matrix["provision"].iloc[-1])
history = cached(provision_history, store, view.start, view.as_of, window, factors, view.filters)
moved = history["movement"].iloc[-1] if len(history) > 1 else float("nan")
cols = st.columns(2)
cols[0].metric(f"Provision on {view.as_of:%d %b %Y} ({currency})", f"{provision_total:,.2f}", border=True)
cols[1].metric(f"Movement over the last month ({currency})", "n/a" if pd.isna(moved) else f"{moved:+,.2f}",
               border=True)
show_table(matrix, f"provision_matrix_{view.as_of}", "provision_matrix", what="provision matrix",
           column_config=money_columns(["balance", "provision"], currency) | {
               "bucket": "Bucket",
               "roll_rate": st.column_config.NumberColumn("Roll rate to the next bucket", format="%.4f"),
               "loss_rate": st.column_config.NumberColumn("Historical loss rate", format="%.4f"),
               "factor": st.column_config.NumberColumn("Forward-looking factor", format="%.2f"),
               "adjusted_loss_rate": st.column_config.NumberColumn("Loss rate used", format="%.4f")})
if not history.empty:
    show(line_chart(history, "month_end", {"provision": "Provision"}, title="Provision at each month end",
                    x_title="Month end", y_title=f"Provision ({currency})", unit=currency), key="provision_history")
    show_table(history, f"provision_{view.start:%Y-%m}_{view.as_of:%Y-%m}", "provision_history_table",
               what="provision by month", column_config=money_columns(["balance", "provision", "movement"], currency))

# -- the monthly table ------------------------------------------------------------------------------
st.subheader("Month by month")
show_table(monthly, f"bad_debt_{view.start:%Y-%m}_{view.end:%Y-%m}", "bad_debt_table",
           column_config=money_columns(["write_offs", "credit_sales", "write_offs_12m", "credit_sales_12m",
                                        "ar_end", "ar_90_plus"], currency))

footer(store)
