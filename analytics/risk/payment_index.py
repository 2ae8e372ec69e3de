"""The payment index: a PAYDEX-style 0-100 figure of how a customer pays, from its own ledger.

Rule, as of D:
- paid invoices = invoices (entry_type 'invoice', amount > 0, with a due date) fully settled
  (`settled_on`, by payment, credit or write-off) after D - 24 months and on or before D;
- days_beyond_terms = the dollar-weighted average of (settled_on - due_date) over them:
  sum(amount x days) / sum(amount) (negative = paid early);
- payment_index = the piecewise-linear map of days_beyond_terms through INDEX_KNOTS, D&B's PAYDEX
  table: 20 or more days early -> 100 (anticipates), on the due date -> 80 (prompt), 15 days late
  -> 70, 22 -> 60, 30 -> 50, 60 -> 40, 90 -> 30, 120 -> 20, 180 or later -> 0; linear between two
  knots (e.g. 10 days late -> 80 + 10 x (70 - 80) / 15 = 73.33);
- shown only with at least MIN_PAID_INVOICES (3) paid invoices: NULL otherwise;
- index_trend = payment_index as of D - payment_index as of D - 90 days (NULL when either is).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from analytics.ledger.months import add_months, month_end
from analytics.store.connection import Store

# (days beyond terms, index), D&B's PAYDEX table; early payment of 20 days stands for "anticipates".
INDEX_KNOTS: tuple[tuple[int, int], ...] = (
    (-20, 100), (0, 80), (15, 70), (22, 60), (30, 50), (60, 40), (90, 30), (120, 20), (180, 0))
MIN_PAID_INVOICES = 3
HISTORY_MONTHS = 24
TREND_DAYS = 90


def index_of_days(days: float) -> float:
    """The index of a days-beyond-terms figure (INDEX_KNOTS, linear between knots): the rule the SQL applies."""
    if days <= INDEX_KNOTS[0][0]:
        return float(INDEX_KNOTS[0][1])
    for (d0, i0), (d1, i1) in zip(INDEX_KNOTS, INDEX_KNOTS[1:], strict=False):
        if days <= d1:
            return i0 + (days - d0) * (i1 - i0) / (d1 - d0)
    return float(INDEX_KNOTS[-1][1])


def index_case_sql(days: str) -> str:
    """SQL CASE mapping a days-beyond-terms expression to the index (knots are constants)."""
    (first_d, first_i), last_i = INDEX_KNOTS[0], INDEX_KNOTS[-1][1]
    whens = [f"WHEN {days} <= {first_d} THEN {first_i}"]
    for (d0, i0), (d1, i1) in zip(INDEX_KNOTS, INDEX_KNOTS[1:], strict=False):
        whens.append(f"WHEN {days} <= {d1} THEN {i0} + ({days} - ({d0})) * ({i1 - i0}) / {float(d1 - d0)}")
    return f"CASE WHEN {days} IS NULL THEN NULL {' '.join(whens)} ELSE {last_i} END"


def _paid_sql(as_of: str, since: str) -> str:
    return f"""
        SELECT e.customer_id, COUNT(*) AS paid_invoices,
               SUM(CAST(e.amount AS DOUBLE PRECISION) * (e.settled_on - e.due_date))
                 / SUM(CAST(e.amount AS DOUBLE PRECISION)) AS days_beyond_terms
        FROM ledger_entries e
        WHERE e.entry_type = 'invoice' AND e.amount > 0 AND e.due_date IS NOT NULL
          AND e.settled_on IS NOT NULL AND e.settled_on <= {as_of} AND e.settled_on > {since}
        GROUP BY e.customer_id"""  # noqa: S608 - bind names only


def _shown(paid: str, days: str) -> str:
    return f"CASE WHEN {paid} >= {MIN_PAID_INVOICES} THEN {index_case_sql(days)} END"


# One row per customer: paid_invoices, days_beyond_terms, payment_index, index_trend, as of :as_of
# (binds :as_of, :index_since, :trend_as_of, :trend_since; see `index_params`).
PAYMENT_INDEX_SQL = f"""
SELECT c.customer_id, COALESCE(n.paid_invoices, 0) AS paid_invoices, n.days_beyond_terms,
       {_shown("n.paid_invoices", "n.days_beyond_terms")} AS payment_index,
       {_shown("n.paid_invoices", "n.days_beyond_terms")}
         - {_shown("p.paid_invoices", "p.days_beyond_terms")} AS index_trend
FROM customers c
LEFT JOIN ({_paid_sql(":as_of", ":index_since")}) n ON n.customer_id = c.customer_id
LEFT JOIN ({_paid_sql(":trend_as_of", ":trend_since")}) p ON p.customer_id = c.customer_id
"""  # noqa: S608 - composed from constants and bind names only


def _months_before(day: date, months: int) -> date:
    """The same day `months` months before (the month's last day when it is shorter, e.g. 29 Feb -> 28 Feb)."""
    first = add_months(day, -months)
    return min(first.replace(day=28) + timedelta(days=day.day - 28), month_end(first)) if day.day > 28 \
        else first.replace(day=day.day)


def index_params(as_of: date) -> dict[str, date]:
    """The binds of PAYMENT_INDEX_SQL for the date `as_of`."""
    before = as_of - timedelta(days=TREND_DAYS)
    return {"as_of": as_of, "index_since": _months_before(as_of, HISTORY_MONTHS), "trend_as_of": before,
            "trend_since": _months_before(before, HISTORY_MONTHS)}


def payment_index(store: Store, as_of: date) -> pd.DataFrame:
    """Per customer: customer_id, paid_invoices, days_beyond_terms, payment_index, index_trend (the rule above)."""
    frame = store.read(PAYMENT_INDEX_SQL + " ORDER BY c.customer_id", index_params(as_of))
    for column in ("days_beyond_terms", "payment_index", "index_trend"):
        frame[column] = frame[column].astype(float).round(2)
    return frame
