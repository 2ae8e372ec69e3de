"""The KPI tables' columns in the users' words: one header and one number kind per column name.

The headers are the ones the dashboards show (pages/*.py, `dunning_effectiveness.EFFECTIVENESS_LABELS`);
the monthly pack's PDF and workbook print them. A money header names the reporting currency
(`header_for`); the aging bucket columns are already labels ("Current", "1-30", "Total").
"""

from __future__ import annotations

import pandas as pd

from analytics.kpis.dunning_effectiveness import EFFECTIVENESS_LABELS, MONEY_COLUMNS

# kind: "text", "date", "money" (reporting currency, whole units), "pct" (one decimal), "days" (one
# decimal), "count" (whole number), "ratio" (one decimal, no unit)
COLUMN_LABELS: dict[str, tuple[str, str]] = {
    # DSO and companions (kpis.dso.DSO_COLUMNS)
    "month_end": ("Month end", "date"),
    "period_start": ("Period start", "date"),
    "days": ("Days in period", "count"),
    "ar_start": ("Open AR at start", "money"),
    "ar_end": ("Open AR", "money"),
    "current_ar_end": ("Not yet due", "money"),
    "overdue_ar_end": ("Overdue AR", "money"),
    "over_90_ar_end": ("90+ days past due", "money"),
    "credit_sales": ("Credit sales", "money"),
    "collections": ("Collections", "money"),
    "write_offs": ("Write-offs", "money"),
    "dso_standard": ("DSO, standard (days)", "days"),
    "dso_countback": ("DSO, countback (days)", "days"),
    "bpdso": ("Best Possible DSO (days)", "days"),
    "add": ("Average days delinquent", "days"),
    "cei": ("CEI (%)", "pct"),
    "pct_over_90": ("90+ share (%)", "pct"),
    # bad debt and roll rates (kpis.bad_debt)
    "bad_debt_pct": ("Bad debt (%)", "pct"),
    "write_offs_12m": ("Write-offs, 12 months", "money"),
    "credit_sales_12m": ("Credit sales, 12 months", "money"),
    "bad_debt_pct_12m": ("Bad debt, 12 months (%)", "pct"),
    "ar_90_plus": ("More than 90 days past due", "money"),
    "from_bucket": ("From bucket", "text"),
    "to_bucket": ("To bucket", "text"),
    "from_balance": ("In the bucket at the previous month end", "money"),
    "rolled_balance": ("Rolled one bucket older", "money"),
    "roll_rate": ("Roll rate (%)", "pct"),
    # aging trend (kpis.aging.aging_trend)
    "bucket": ("Bucket", "text"),
    "missing_fx": ("Items without an FX rate", "count"),
    # top overdue customers (kpis.summary.top_overdue_customers)
    "customer_id": ("Customer", "text"),
    "customer_name": ("Name", "text"),
    "segment": ("Segment", "text"),
    "collector": ("Collector", "text"),
    "open_ar": ("Open AR", "money"),
    "overdue_ar": ("Overdue AR", "money"),
    "over_90_ar": ("90+ days past due", "money"),
    "oldest_days_past_due": ("Oldest (days past due)", "count"),
    "unapplied": ("Unapplied", "money"),
    # collector KPIs (kpis.collector_kpis.COLLECTOR_COLUMNS)
    "customers": ("Customers", "count"),
    "calls": ("Calls", "count"),
    "emails": ("Emails", "count"),
    "notes": ("Notes", "count"),
    "actions_per_day": ("Actions per working day", "ratio"),
    "promises": ("Promises", "count"),
    "promises_due": ("Promises due", "count"),
    "promises_kept": ("Promises kept", "count"),
    "kept_pct": ("Kept (%)", "pct"),
    "collected_14d": ("Collected within 14 days of an action", "money"),
}
# dunning effectiveness: its own dictionary, the one the Dunning page and `ardesk report dunning` use
_EFFECTIVENESS_KINDS = {"config_id": "count", "config_version": "count", "stage_no": "count", "invoices": "count",
                        "median_days_to_pay": "days"}
for _column, (_header, _) in EFFECTIVENESS_LABELS.items():
    _kind = ("money" if _column in MONEY_COLUMNS else _EFFECTIVENESS_KINDS.get(_column)
             or ("pct" if _column.endswith("_pct") else "text"))
    COLUMN_LABELS.setdefault(_column, (_header, _kind))


def column_kind(column: str) -> str:
    """The number kind of a column ("text" for one not in `COLUMN_LABELS`, e.g. an aging bucket)."""
    return COLUMN_LABELS.get(column, (column, "text"))[1]


def header_for(column: str, currency: str) -> str:
    """The column's header; a money column names `currency`, e.g. "Open AR (USD)"."""
    header, kind = COLUMN_LABELS.get(column, (column, "text"))
    return f"{header} ({currency})" if kind == "money" else header


def with_headers(frame: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The frame with every column renamed to its header (`header_for`)."""
    return frame.rename(columns={c: header_for(str(c), currency) for c in frame.columns})
