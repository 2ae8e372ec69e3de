"""Bad debt: write-offs per month, bad debt % of credit sales (monthly and rolling 12 months),
the 90+ balance over time, and roll rates between aging buckets.

Reporting currency, flows at each period's closing FX rate, balances at the month-end rate.
- write_offs = write-off entries posted in the month (positive), of invoices and debit adjustments alike;
- credit_sales = invoices posted in the month (`analytics.kpis.dso`): never adjustments, so a
  penalty raises what is owed (and the 90+ balance and roll rates, which follow every open debit)
  but not the denominator;
- bad_debt_pct = write_offs / credit_sales x 100; bad_debt_pct_12m = the same over the 12 months
  ending at the month end;
- ar_90_plus = open debits (invoices, debit adjustments) more than 90 days past due at the month end;
- roll rate from bucket b at month end M to the next bucket at the next month end M' = balance at
  M' of the invoices that were in b at M and are in the next bucket at M' / balance in b at M x 100.
  Exact per due date (all invoices due on one day age together), so no invoice x month join.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics.kpis.dso import period_figures
from analytics.kpis.summary import rolling_bad_debt_pct
from analytics.ledger.buckets import bucket_index_case, bucket_labels
from analytics.ledger.filters import ALL, Filters
from analytics.ledger.fx import reporting_params
from analytics.ledger.months import month_ends, previous_month_end
from analytics.ledger.open_items import open_debits_by_due_sql
from analytics.store.connection import Store

BAD_DEBT_COLUMNS = ["month_end", "write_offs", "credit_sales", "bad_debt_pct", "write_offs_12m", "credit_sales_12m",
                    "bad_debt_pct_12m", "ar_end", "ar_90_plus"]


def bad_debt_monthly(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Columns: month_end, write_offs, credit_sales, bad_debt_pct, write_offs_12m, credit_sales_12m,
    bad_debt_pct_12m, ar_end, ar_90_plus."""
    points = month_ends(start, end)
    if not points:
        return pd.DataFrame(columns=BAD_DEBT_COLUMNS)
    f = period_figures(store, points, filters).reset_index(drop=True)
    sales = f["credit_sales"]
    out = pd.DataFrame({
        "month_end": f["point"], "write_offs": f["write_offs"], "credit_sales": sales,
        "bad_debt_pct": f["write_offs"] / sales.where(sales != 0, np.nan) * 100,
        "write_offs_12m": f["write_offs"].rolling(12, min_periods=1).sum(),
        "credit_sales_12m": sales.rolling(12, min_periods=1).sum(),
        "bad_debt_pct_12m": rolling_bad_debt_pct(f),
        "ar_end": f["ar"], "ar_90_plus": f["over_90_ar"],
    })
    out = out[~f["history"]].reset_index(drop=True)
    out[BAD_DEBT_COLUMNS[1:]] = out[BAD_DEBT_COLUMNS[1:]].astype(float).round(2)
    return out


def roll_rates(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Long format, one row per (month_end, from_bucket): month_end (M'), from_bucket, to_bucket,
    from_balance (in from_bucket at the previous month end), rolled_balance, roll_rate (%)."""
    columns = ["month_end", "from_bucket", "to_bucket", "from_balance", "rolled_balance", "roll_rate"]
    points = month_ends(start, end)
    if not points:
        return pd.DataFrame(columns=columns)
    points = [previous_month_end(points[0])] + points
    labels = bucket_labels("due")
    balances, params = open_debits_by_due_sql(points, filters)
    index = bucket_index_case("b.days_past_due", "due")
    frame = store.read(f"""
        WITH b AS ({balances}), placed AS (
            SELECT b.k, b.due_date, b.currency, b.open_amount * b.fx_rate AS amount, {index} AS bucket
            FROM b
        )
        SELECT p.k + 1 AS k, p.bucket AS from_bucket, SUM(p.amount) AS from_balance,
               SUM(CASE WHEN n.bucket = p.bucket + 1 THEN n.amount ELSE 0 END) AS rolled_balance
        FROM placed p
        LEFT JOIN placed n ON n.k = p.k + 1 AND n.due_date = p.due_date AND n.currency = p.currency
        WHERE p.k < :last_k AND p.bucket < :last_bucket
        GROUP BY p.k + 1, p.bucket
    """, {**reporting_params(), **params, "last_k": len(points) - 1, "last_bucket": len(labels) - 1})  # noqa: S608
    grid = pd.MultiIndex.from_product([range(1, len(points)), range(len(labels) - 1)], names=["k", "from_bucket"])
    frame = frame.set_index(["k", "from_bucket"]).reindex(grid).reset_index()
    frame[["from_balance", "rolled_balance"]] = frame[["from_balance", "rolled_balance"]].astype(float).fillna(0.0)
    frame["month_end"] = [points[k] for k in frame["k"]]
    frame["to_bucket"] = [labels[b + 1] for b in frame["from_bucket"]]
    frame["from_bucket"] = [labels[b] for b in frame["from_bucket"]]
    frame["roll_rate"] = frame["rolled_balance"] / frame["from_balance"].where(frame["from_balance"] != 0, np.nan) * 100
    frame[["from_balance", "rolled_balance", "roll_rate"]] = frame[["from_balance", "rolled_balance", "roll_rate"]].round(2)
    return frame[columns]
