"""Headline KPIs for the Overview tiles: as of a date, the previous month end and a year before
(`kpi_comparison`, which the Overview and the monthly pack show).

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
from analytics.ledger.open_items import ledger_bounds, open_items_sql, reads_open_now
from analytics.store.connection import Store, read_df

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


# The headline tiles, in order: column -> (label, unit, which way is good, how it is computed).
# unit: "money" (reporting currency), "%", "days"; good: "up", "down" or "" (neither: open AR).
KPI_TILES: dict[str, tuple[str, str, str, str]] = {
    "open_ar": ("Open AR", "money", "", "Open invoices and debit adjustments on the date."),
    "overdue_ar": ("Overdue AR", "money", "down", "Open invoices past their due date."),
    "overdue_pct": ("Overdue share", "%", "down", "Overdue AR / open AR × 100."),
    "share_90_plus": ("90+ share", "%", "down", "AR more than 90 days past due / open AR × 100."),
    "bad_debt_pct": ("Bad debt, 12 m", "%", "down",
                     "Write-offs / credit sales over the 12 months ending on the date × 100."),
    "dso": ("DSO", "days", "down", "Standard DSO: AR at period end / credit sales of the period × days."),
    "bpdso": ("BPDSO", "days", "down", "Best Possible DSO: current (not yet due) AR / credit sales × days."),
    "add": ("ADD", "days", "down", "Average days delinquent: DSO − Best Possible DSO."),
    "cei": ("CEI", "%", "up",
            "Collection effectiveness: (AR start + sales − AR end) / (AR start + sales − current AR end) × 100."),
}
COMPARISON_COLUMNS = ["kpi", "label", "unit", "value", "last_month", "last_year", "change_month", "change_year",
                      "as_of", "last_month_as_of", "last_year_as_of"]


def same_day_last_year(d: date) -> date:
    """D one year earlier (29 February -> 28 February)."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


def kpi_comparison(store: Store, as_of: date, filters: Filters = ALL) -> pd.DataFrame:
    """Each headline KPI (KPI_TILES order) now, last month and in the same month last year.

    value: `kpi_summary`'s "current" row (the month of D up to D); last_month: its "previous" row
    (the month ending at the previous month end); last_year: the "current" row of D one year
    earlier (NaN when that is before the first posting, so no comparison against an empty ledger);
    change_month = value − last_month; change_year = value − last_year (money in the reporting
    currency, shares in percentage points, days in days). Exact values: a page rounds for display.
    """
    summary = kpi_summary(store, as_of, filters)
    year_ago = same_day_last_year(as_of)
    first, _ = ledger_bounds(store)
    if first is not None and year_ago >= first:
        last_year = kpi_summary(store, year_ago, filters).iloc[0]
    else:
        last_year = pd.Series(np.nan, index=SUMMARY_COLUMNS)
    now, before = summary.iloc[0], summary.iloc[1]
    rows = []
    for key, (label, unit, _, _) in KPI_TILES.items():
        value, month, year = (float(x) if not pd.isna(x) else np.nan for x in (now[key], before[key], last_year[key]))
        rows.append({"kpi": key, "label": label, "unit": unit, "value": value, "last_month": month, "last_year": year,
                     "change_month": value - month, "change_year": value - year, "as_of": now["as_of"],
                     "last_month_as_of": before["as_of"], "last_year_as_of": year_ago})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def top_overdue_customers(store: Store, as_of: date, filters: Filters = ALL, n: int = 10) -> pd.DataFrame:
    """The n customers with the most overdue AR as of D (reporting currency), largest first.

    Columns: customer_id, customer_name, segment, collector, open_ar, overdue_ar, over_90_ar,
    oldest_days_past_due, unapplied (open credits, <= 0). Customers with nothing overdue are left out.
    """
    with store.engine.connect() as conn, conn.begin():  # the horizon check and the report on one snapshot
        items, params = open_items_sql(filters, path=reads_open_now(conn, as_of))
        frame = read_df(conn, f"""
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
