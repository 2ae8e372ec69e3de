"""The one column-label dictionary: every report column in the users' words, with its kind.

Every table of every page (pages/tables.py show_table) and every export that wants human headers
reads its headers from here, so `open_ar` is "Open AR" everywhere. A kind says how to show the
numbers: money (0 decimals, header suffixed with the reporting currency), pct (1 decimal, header
ends in "(%)"), days (1 decimal), count (integer), date, text. A column not in the dictionary is
shown with its words capitalised ("promise_person" -> "Promise person"), never as the raw name; a
header that is already human ("Open AR (USD)") stays as it is, so applying the dictionary twice is harmless.
"""

from __future__ import annotations

import pandas as pd

from analytics.kpis.dunning_effectiveness import EFFECTIVENESS_LABELS, MONEY_COLUMNS

MONEY, PCT, DAYS, COUNT, DATE, TEXT = "money", "pct", "days", "count", "date", "text"

_OWN: dict[str, tuple[str, str]] = {
    # who
    "customer_id": ("Customer id", TEXT), "customer_name": ("Customer", TEXT), "name": ("Name", TEXT),
    "segment": ("Segment", TEXT), "collector": ("Collector", TEXT), "sales_rep": ("Sales rep", TEXT),
    "country": ("Country", TEXT), "currency": ("Currency", TEXT), "status": ("Status", TEXT),
    "risk_class": ("Risk class", TEXT), "customers": ("Customers", COUNT),
    # when
    "month_end": ("Month end", DATE), "period_start": ("Period start", DATE), "as_of": ("As of", DATE),
    "posting_date": ("Posted", DATE), "due_date": ("Due", DATE), "period": ("Period", TEXT),
    "period_end": ("Period end", DATE), "days": ("Days in period", COUNT),
    # documents
    "document_number": ("Document", TEXT), "entry_type": ("Type", TEXT), "bucket": ("Bucket", TEXT),
    "days_past_due": ("Days past due", COUNT), "oldest_days_past_due": ("Oldest (days past due)", COUNT),
    "open_amount": ("Open (document currency)", MONEY), "open_amount_reporting": ("Open", MONEY),
    # balances and flows
    "open_ar": ("Open AR", MONEY), "overdue_ar": ("Overdue AR", MONEY), "over_90_ar": ("90+ days past due", MONEY),
    "unapplied": ("Unapplied cash and credits", MONEY), "ar_start": ("AR at start", MONEY),
    "ar_end": ("AR at end", MONEY), "current_ar_end": ("Current AR at end", MONEY),
    "overdue_ar_end": ("Overdue AR at end", MONEY), "over_90_ar_end": ("90+ AR at end", MONEY),
    "ar_90_plus": ("90+ balance", MONEY), "credit_sales": ("Credit sales", MONEY),
    "collections": ("Collections", MONEY), "write_offs": ("Write-offs", MONEY),
    "write_offs_12m": ("Write-offs, 12 months", MONEY), "credit_sales_12m": ("Credit sales, 12 months", MONEY),
    "amount_paid": ("Amount paid", MONEY), "from_balance": ("Balance in bucket", MONEY),
    "rolled_balance": ("Rolled one bucket older", MONEY), "collected_14d": ("Collected in 14 days", MONEY),
    "balance": ("Balance", MONEY), "overdue": ("Overdue", MONEY), "credit_limit": ("Credit limit", MONEY),
    # KPIs
    "overdue_pct": ("Overdue share (%)", PCT), "share_90_plus": ("90+ share (%)", PCT),
    "pct_over_90": ("90+ share (%)", PCT), "bad_debt_pct": ("Bad debt, month (%)", PCT),
    "bad_debt_pct_12m": ("Bad debt, 12 months (%)", PCT), "roll_rate": ("Roll rate (%)", PCT),
    "dso": ("DSO (days)", DAYS), "dso_standard": ("DSO, standard (days)", DAYS),
    "dso_countback": ("DSO, countback (days)", DAYS), "bpdso": ("Best Possible DSO (days)", DAYS),
    "add": ("Average days delinquent", DAYS), "cei": ("CEI (%)", PCT),
    "invoices_paid": ("Invoices paid", COUNT), "avg_days_to_pay": ("Days to pay", DAYS),
    "avg_days_late": ("Days late", DAYS), "paid_late_pct": ("Paid late (%)", PCT),
    "from_bucket": ("From bucket", TEXT), "to_bucket": ("To bucket", TEXT),
    # collectors and targets
    "calls": ("Calls", COUNT), "emails": ("Emails", COUNT), "notes": ("Notes", COUNT),
    "actions_per_day": ("Actions per day", DAYS), "promises": ("Promises", COUNT),
    "promises_due": ("Promises due", COUNT), "promises_kept": ("Promises kept", COUNT),
    "kept_pct": ("Kept (%)", PCT), "metric": ("Metric", TEXT), "label": ("What", TEXT),
    "direction": ("Better when", TEXT), "unit": ("Unit", TEXT), "target": ("Target", TEXT),
    "actual": ("Actual", TEXT), "progress_pct": ("Progress (%)", PCT), "met": ("Met", TEXT),
    "set_by": ("Set by", TEXT), "set_at": ("Set at", DATE),
    # the audit log (analytics.access.audit.readable_audit)
    "audit_id": ("#", COUNT), "logged_at": ("When", TEXT), "who": ("Who", TEXT), "action": ("Action", TEXT),
    "entity": ("Entity", TEXT), "entity_id": ("Id", TEXT), "changes": ("Changes (before → after)", TEXT),
    "detail": ("Detail", TEXT),
    # KPI comparisons (analytics.kpis.summary.kpi_comparison)
    "kpi": ("KPI", TEXT), "value": ("Value", TEXT), "last_month": ("Last month", TEXT),
    "last_year": ("Same month last year", TEXT), "change_month": ("Change on last month", TEXT),
    "change_year": ("Change on last year", TEXT),
    "missing_fx": ("Items without an FX rate", COUNT),
    # the cash forecast's weeks (forecasts.cash_forecast)
    "week_start": ("Week from", DATE), "week_end": ("Week to", DATE), "promised": ("Promised", MONEY),
    "predicted": ("Predicted", MONEY), "expected": ("Expected", MONEY), "low": ("Low", MONEY),
    "high": ("High", MONEY),
}

# column -> (header, kind); the dunning effectiveness headers are defined with their help text
COLUMN_LABELS: dict[str, tuple[str, str]] = {
    **{c: (h, MONEY if c in MONEY_COLUMNS else PCT if c.endswith("_pct") else TEXT)
       for c, (h, _) in EFFECTIVENESS_LABELS.items()},
    **_OWN,
}
FORMATS = {MONEY: "%,.0f", PCT: "%.1f", DAYS: "%.1f", COUNT: "%,d"}


def column_header(column: str, currency: str | None = None) -> str:
    """The column's header: its label, money labels suffixed "(currency)"; unknown: words, first one
    capitalised (the rest kept, so a header already in words comes back unchanged)."""
    header, kind = COLUMN_LABELS.get(column, (None, TEXT))
    if header is None:
        words = str(column).replace("_", " ").strip()
        header = words[:1].upper() + words[1:] if words else str(column)
    return f"{header} ({currency})" if kind == MONEY and currency else header


def column_kind(column: str) -> str:
    """The column's kind (money, pct, days, count, date, text); unknown columns are text."""
    return COLUMN_LABELS.get(column, ("", TEXT))[1]


def with_headers(frame: pd.DataFrame, currency: str | None = None) -> pd.DataFrame:
    """The frame with human headers (every table download, exports and the CLI's --headers);
    idempotent: headers already in words are kept."""
    return frame.rename(columns={c: column_header(c, currency) for c in frame.columns})
