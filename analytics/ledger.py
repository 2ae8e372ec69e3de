"""Open items and balances as of a date: the definitions every KPI builds on.

Open as of D:
- only entries posted on or before D count, and only allocations dated on or before D;
- a debit entry (invoice, debit adjustment: amount > 0) is open for
  amount - allocations to it dated <= D;
- a credit entry (payment, credit note, write-off, credit adjustment: amount < 0) is unapplied for
  amount + allocations from it dated <= D (a negative number: cash or credit on account);
- days past due = D - due date (due today is 0, "current").
A report for a past D therefore reproduces what was open then, whatever was paid later.

Amounts are in each entry's own currency; `in_reporting` converts at the latest FX rate on or
before D (the reporting currency itself converts at 1).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics.settings import load_settings
from analytics.store import Store

OPEN_ITEMS_SQL = """
WITH applied_to AS (
    SELECT to_entry_id AS entry_id, SUM(amount) AS applied
    FROM allocations WHERE allocation_date <= :as_of GROUP BY to_entry_id
), applied_from AS (
    SELECT from_entry_id AS entry_id, SUM(amount) AS applied
    FROM allocations WHERE allocation_date <= :as_of GROUP BY from_entry_id
), fx AS (
    SELECT currency, rate FROM (
        SELECT currency, rate, ROW_NUMBER() OVER (PARTITION BY currency ORDER BY rate_date DESC) AS rn
        FROM fx_rates WHERE rate_date <= :as_of
    ) ranked WHERE rn = 1
)
SELECT e.entry_id, e.customer_id, e.entry_type, e.document_number, e.posting_date, e.due_date,
       e.currency, e.amount,
       CASE WHEN e.amount > 0 THEN e.amount - COALESCE(t.applied, 0)
            ELSE e.amount + COALESCE(f.applied, 0) END AS open_amount,
       CASE WHEN e.currency = :reporting THEN 1 ELSE fx.rate END AS fx_rate,
       CAST(:as_of AS DATE) - e.due_date AS days_past_due
FROM ledger_entries e
LEFT JOIN applied_to t ON t.entry_id = e.entry_id
LEFT JOIN applied_from f ON f.entry_id = e.entry_id
LEFT JOIN fx ON fx.currency = e.currency
WHERE e.posting_date <= :as_of
  AND CASE WHEN e.amount > 0 THEN e.amount - COALESCE(t.applied, 0)
           ELSE e.amount + COALESCE(f.applied, 0) END <> 0
"""


def _params(as_of: date) -> dict[str, object]:
    return {"as_of": as_of, "reporting": load_settings().reporting_currency}


def portfolio_summary(store: Store, as_of: date) -> pd.DataFrame:
    """One row: open AR, overdue AR, unapplied credits and customer counts as of D.

    open_ar = sum of open debit items (invoices) in the reporting currency;
    overdue_ar = the part of open_ar with days_past_due > 0;
    unapplied_credits = sum of unapplied cash and open credit notes (<= 0);
    net_balance = open_ar + unapplied_credits; customers_with_balance counts customers with open items.
    `missing_fx` counts open items whose currency has no rate on or before D (left out of the sums).
    """
    sql = f"""
    WITH items AS ({OPEN_ITEMS_SQL})
    SELECT
        COALESCE(SUM(CASE WHEN open_amount > 0 THEN open_amount * fx_rate END), 0) AS open_ar,
        COALESCE(SUM(CASE WHEN open_amount > 0 AND days_past_due > 0 THEN open_amount * fx_rate END), 0)
            AS overdue_ar,
        COALESCE(SUM(CASE WHEN open_amount < 0 THEN open_amount * fx_rate END), 0) AS unapplied_credits,
        COUNT(DISTINCT CASE WHEN open_amount > 0 THEN customer_id END) AS customers_with_balance,
        (SELECT COUNT(*) FROM customers) AS customers,
        SUM(CASE WHEN fx_rate IS NULL THEN 1 ELSE 0 END) AS missing_fx
    FROM items
    """  # noqa: S608 - composed from constants only
    frame = store.read(sql, _params(as_of))
    frame["net_balance"] = frame["open_ar"] + frame["unapplied_credits"]
    frame["missing_fx"] = frame["missing_fx"].fillna(0).astype(int)
    return frame


def ledger_bounds(store: Store) -> tuple[date | None, date | None]:
    """First and last posting dates in the ledger (None, None when empty)."""
    row = store.read("SELECT MIN(posting_date) AS first, MAX(posting_date) AS last FROM ledger_entries")
    first, last = row.iloc[0]["first"], row.iloc[0]["last"]
    if pd.isna(first):
        return None, None
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()
