"""Headline KPIs for the Overview tiles: as of a date and as of the previous month end.

Row "current": the month of `as_of` up to `as_of` (the whole month when `as_of` is a month end);
row "previous": the month ending at the previous month end. Each row comes from
`analytics.dso.dso_monthly` (same definitions):
open_ar = open debits (invoices and debit adjustments) at the row's date; overdue_ar = the part past due;
overdue_pct = overdue_ar / open_ar x 100; dso = dso_standard; bpdso; add = dso - bpdso; cei;
share_90_plus = AR more than 90 days past due / open_ar x 100;
bad_debt_pct = write-offs / credit sales over the 12 months ending at the row's date x 100.
Credit sales (DSO's and bad debt's denominator) are invoices only, never debit adjustments.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics.kpis.dso import dso_from_figures, period_figures
from analytics.ledger.filters import ALL, Filters
from analytics.ledger.fx import reporting_params
from analytics.ledger.months import previous_month_end
from analytics.ledger.open_items import open_items_sql
from analytics.store.connection import Store

SUMMARY_COLUMNS = ["period", "as_of", "period_start", "open_ar", "overdue_ar", "overdue_pct", "dso", "bpdso",
                   "add", "cei", "bad_debt_pct", "share_90_plus", "credit_sales", "collections"]


def rolling_bad_debt_pct(figures: pd.DataFrame, months: int = 12) -> pd.Series:
    """write-offs / credit sales over the `months` periods ending at each row x 100 (NaN without sales)."""
    write_offs = figures["write_offs"].rolling(months, min_periods=1).sum()
    sales = figures["credit_sales"].rolling(months, min_periods=1).sum()
    return write_offs / sales.where(sales != 0, np.nan) * 100


def kpi_summary(store: Store, as_of: date, filters: Filters = ALL) -> pd.DataFrame:
    """Two rows (period "current", then "previous") with `SUMMARY_COLUMNS`."""
    previous = previous_month_end(as_of)
    figures = period_figures(store, [previous, as_of], filters).reset_index(drop=True)
    bad_debt = rolling_bad_debt_pct(figures)
    dso = dso_from_figures(figures)
    rows = []
    for label, position in (("current", -1), ("previous", -2)):
        d, f = dso.iloc[position], figures.iloc[position]
        open_ar = float(d["ar_end"])
        share = (lambda x, ar=open_ar: round(x / ar * 100, 2) if ar else np.nan)  # noqa: E731
        rows.append({
            "period": label, "as_of": d["month_end"], "period_start": d["period_start"], "open_ar": open_ar,
            "overdue_ar": float(d["overdue_ar_end"]), "overdue_pct": share(float(f["overdue_ar"])),
            "dso": d["dso_standard"], "bpdso": d["bpdso"], "add": d["add"], "cei": d["cei"],
            "bad_debt_pct": round(float(bad_debt.iloc[position]), 2), "share_90_plus": d["pct_over_90"],
            "credit_sales": d["credit_sales"], "collections": d["collections"],
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def top_overdue_customers(store: Store, as_of: date, filters: Filters = ALL, n: int = 10) -> pd.DataFrame:
    """The n customers with the most overdue AR as of D (reporting currency), largest first.

    Columns: customer_id, customer_name, segment, collector, open_ar, overdue_ar, over_90_ar,
    oldest_days_past_due, unapplied (open credits, <= 0). Customers with nothing overdue are left out.
    """
    items, params = open_items_sql(filters)
    frame = store.read(f"""
        WITH items AS ({items}), per_customer AS (
            SELECT i.customer_id,
                   SUM(CASE WHEN i.open_amount > 0 THEN i.open_amount * i.fx_rate ELSE 0 END) AS open_ar,
                   SUM(CASE WHEN i.open_amount > 0 AND i.days_past_due > 0 THEN i.open_amount * i.fx_rate ELSE 0 END)
                       AS overdue_ar,
                   SUM(CASE WHEN i.open_amount > 0 AND i.days_past_due > 90 THEN i.open_amount * i.fx_rate ELSE 0 END)
                       AS over_90_ar,
                   MAX(CASE WHEN i.open_amount > 0 THEN i.days_past_due END) AS oldest_days_past_due,
                   SUM(CASE WHEN i.open_amount < 0 THEN i.open_amount * i.fx_rate ELSE 0 END) AS unapplied
            FROM items i GROUP BY i.customer_id
        )
        SELECT p.customer_id, c.name AS customer_name, c.segment, c.collector, p.open_ar, p.overdue_ar,
               p.over_90_ar, p.oldest_days_past_due, p.unapplied
        FROM per_customer p JOIN customers c ON c.customer_id = p.customer_id
        WHERE p.overdue_ar > 0
        ORDER BY p.overdue_ar DESC, p.customer_id
        LIMIT :n
    """, {**reporting_params(as_of), **params, "n": int(n)})  # noqa: S608 - constants and bind names only
    money = ["open_ar", "overdue_ar", "over_90_ar", "unapplied"]
    frame[money] = frame[money].astype(float).round(2)
    return frame
