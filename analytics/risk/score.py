"""The risk score and band of each customer, each input's contribution, and a suggested credit limit.

Inputs as of D (reporting nothing across customers: each customer's own currency):
- payment_index (`analytics.risk.payment_index`; NULL with fewer than 3 paid invoices);
- utilisation_pct = open debits as of D (`ledger.open_items`) / credit_limit x 100, capped at 100;
  over_limit = the uncapped figure is above 100; NULL (no contribution) without a credit limit;
- dispute_share_pct = the amount in disputes open as of D (`collections.disputes`: the disputed
  amount, else the invoice's open amount, else the whole open balance) / open debits x 100, at most 100;
- broken_promises = promises to pay with status 'broken' whose promised date is in the 90 days before D.

Score (0-100, higher = safer, like the index) = 100 - the four contributions (points lost):
- payment_points = 0.6 x (100 - payment_index); without an index, an index of 50 (30 days late) is assumed;
- utilisation_points = 0.15 x utilisation_pct;
- dispute_points = 0.15 x dispute_share_pct;
- promise_points = 2.5 x min(broken_promises, 4).
The weights sum to 100 points, so the score stays within 0-100. Band by the score rounded to a
whole number (halves up): 0-20 severe, 21-29 high, 30-50 elevated, 51-70 moderate, 71-100 low (BANDS).

Suggested credit limit = average monthly credit sales of the last 12 months (invoices posted after
D - 365 days, the customer's currency) x the band's months of sales (BANDS): low 2, moderate 1.5,
elevated 1, high 0.5, severe 0 (cash in advance).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pandas as pd

from analytics.collections.disputes import open_dispute_sql
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.risk.payment_index import PAYMENT_INDEX_SQL, index_params
from analytics.settings import load_settings
from analytics.store.connection import Store

# (band, lowest whole score, months of sales as the suggested credit limit), safest first.
BANDS: tuple[tuple[str, int, float], ...] = (
    ("low", 71, 2.0), ("moderate", 51, 1.5), ("elevated", 30, 1.0), ("high", 21, 0.5), ("severe", 0, 0.0))
BAND_NAMES = tuple(name for name, _, _ in BANDS)  # index = how bad: 0 low ... 4 severe
PAYMENT_WEIGHT, UTILISATION_WEIGHT, DISPUTE_WEIGHT, PROMISE_POINTS, PROMISE_CAP = 0.6, 0.15, 0.15, 2.5, 4
UNKNOWN_INDEX = 50  # no payment index (fewer than 3 paid invoices): treated as paying 30 days late
BROKEN_PROMISE_DAYS = 90
SCORE_COLUMNS = [
    "customer_id", "customer_name", "currency", "paid_invoices", "days_beyond_terms", "payment_index", "index_trend",
    "open_debits", "credit_limit", "utilisation_pct", "over_limit", "dispute_share_pct", "broken_promises",
    "payment_points", "utilisation_points", "dispute_points", "promise_points", "score", "band", "suggested_limit",
]


def band_of(score: float) -> str:
    """The band of a score (rounded to a whole number first, halves up)."""
    whole = math.floor(score + 0.5)
    return next(name for name, low, _ in BANDS if whole >= low)


def _band_sql(score: str) -> str:
    # FLOOR(x + 0.5), not ROUND: PostgreSQL rounds a double's halves to even
    whens = " ".join(f"WHEN FLOOR({score} + 0.5) >= {low} THEN '{name}'" for name, low, _ in BANDS[:-1])
    return f"CASE {whens} ELSE '{BANDS[-1][0]}' END"


def _months_sql(band: str) -> str:
    whens = " ".join(f"WHEN '{name}' THEN {months}" for name, _, months in BANDS)
    return f"CASE {band} {whens} END"


_SCORE = """100 - payment_points - utilisation_points - dispute_points - promise_points"""

RISK_SCORE_SQL = f"""
WITH items AS ({OPEN_ITEMS_SQL}),
open_ar AS (
    SELECT customer_id, SUM(open_amount) AS open_debits FROM items WHERE open_amount > 0 GROUP BY customer_id
), disputed AS (
    SELECT a.customer_id,
           SUM(COALESCE(a.amount, i.open_amount, o.open_debits, 0)) AS amount
    FROM activities a
    LEFT JOIN (SELECT entry_id, SUM(open_amount) AS open_amount FROM items WHERE open_amount > 0
               GROUP BY entry_id) i ON i.entry_id = a.entry_id
    LEFT JOIN open_ar o ON o.customer_id = a.customer_id
    WHERE {open_dispute_sql("a")}
    GROUP BY a.customer_id
), broken AS (
    SELECT customer_id, COUNT(*) AS broken_promises FROM activities
    WHERE kind = 'promise' AND status = 'broken' AND due_date < :as_of AND due_date >= :broken_since
    GROUP BY customer_id
), sales AS (
    SELECT customer_id, SUM(amount) / 12.0 AS monthly_sales FROM ledger_entries
    WHERE entry_type = 'invoice' AND posting_date > :sales_since AND posting_date <= :as_of
    GROUP BY customer_id
), idx AS ({PAYMENT_INDEX_SQL}),
inputs AS (
    SELECT c.customer_id, c.name AS customer_name, c.currency, idx.paid_invoices, idx.days_beyond_terms,
           idx.payment_index, idx.index_trend, COALESCE(o.open_debits, 0) AS open_debits, c.credit_limit,
           CASE WHEN c.credit_limit > 0 THEN COALESCE(o.open_debits, 0) * 100.0 / c.credit_limit END AS raw_utilisation,
           CASE WHEN COALESCE(o.open_debits, 0) > 0
                THEN LEAST(COALESCE(d.amount, 0) * 100.0 / o.open_debits, 100.0) ELSE 0 END AS dispute_share_pct,
           COALESCE(b.broken_promises, 0) AS broken_promises, COALESCE(s.monthly_sales, 0) AS monthly_sales
    FROM customers c
    JOIN idx ON idx.customer_id = c.customer_id
    LEFT JOIN open_ar o ON o.customer_id = c.customer_id
    LEFT JOIN disputed d ON d.customer_id = c.customer_id
    LEFT JOIN broken b ON b.customer_id = c.customer_id
    LEFT JOIN sales s ON s.customer_id = c.customer_id
), points AS (
    -- CASE, not LEAST: LEAST skips NULLs (no credit limit would read as 100 % used)
    SELECT inputs.*, CASE WHEN raw_utilisation > 100 THEN 100.0 ELSE raw_utilisation END AS utilisation_pct,
           COALESCE(raw_utilisation > 100, FALSE) AS over_limit,
           {PAYMENT_WEIGHT} * (100 - COALESCE(payment_index, {UNKNOWN_INDEX})) AS payment_points,
           {UTILISATION_WEIGHT} * CASE WHEN raw_utilisation > 100 THEN 100.0
                                       ELSE COALESCE(raw_utilisation, 0) END AS utilisation_points,
           {DISPUTE_WEIGHT} * dispute_share_pct AS dispute_points,
           {PROMISE_POINTS} * LEAST(broken_promises, {PROMISE_CAP}) AS promise_points
    FROM inputs
), scored AS (
    SELECT points.*, GREATEST({_SCORE}, 0) AS score, {_band_sql(f"GREATEST({_SCORE}, 0)")} AS band FROM points
)
SELECT customer_id, customer_name, currency, paid_invoices, days_beyond_terms, payment_index, index_trend,
       open_debits, credit_limit, utilisation_pct, over_limit, dispute_share_pct, broken_promises,
       payment_points, utilisation_points, dispute_points, promise_points, score, band,
       monthly_sales * {_months_sql("band")} AS suggested_limit
FROM scored
"""  # noqa: S608 - composed from constants and bind names only


def score_params(as_of: date) -> dict[str, Any]:
    """The binds of RISK_SCORE_SQL for the date `as_of`."""
    return {**index_params(as_of), "reporting": load_settings().reporting_currency,
            "broken_since": as_of - timedelta(days=BROKEN_PROMISE_DAYS),
            "sales_since": as_of - timedelta(days=365)}


def risk_scores(store: Store, as_of: date) -> pd.DataFrame:
    """Every customer's inputs, contributions (points lost), score, band and suggested limit as of D
    (SCORE_COLUMNS; the rules in the module docstring), riskiest first."""
    frame = store.read(RISK_SCORE_SQL + " ORDER BY score, customer_id", score_params(as_of))
    floats = ["days_beyond_terms", "payment_index", "index_trend", "open_debits", "credit_limit", "utilisation_pct",
              "dispute_share_pct", "payment_points", "utilisation_points", "dispute_points", "promise_points",
              "score", "suggested_limit"]
    frame[floats] = frame[floats].astype(float).round(2)
    frame[["paid_invoices", "broken_promises"]] = frame[["paid_invoices", "broken_promises"]].astype(int)
    frame["over_limit"] = frame["over_limit"].astype(bool)
    return frame[SCORE_COLUMNS]
