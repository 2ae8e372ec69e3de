"""DSO (standard and countback), Best Possible DSO, ADD, CEI, % over 90, and days to pay, per month.

Periods: one per report point, the month ends from start's month to end's month (the last point
is `end` itself when it is not a month end, so the last period is month-to-date). A period runs
from the day after the previous point (the first: the 1st of its month) to its point; days = its
length in days.

Definitions (reporting currency; balances converted at the FX rate on the point, flows of a
period at the rate on its last day; open items by the one rule in `analytics.ledger`):
- ar_end = open debits (open invoices, gross of unapplied cash) at the point; ar_start = the same
  at the previous point; current_ar_end = the part not yet past due; over_90_ar_end = the part more
  than 90 days past due;
- credit_sales = invoices (entry_type 'invoice') posted in the period; collections = payments
  posted in the period (positive); write_offs = write-offs posted in the period (positive);
- dso_standard = ar_end / credit_sales x days;
- dso_countback = exhaust ar_end against credit sales period by period backwards (this period,
  then the months before it): each fully covered period adds its days, the last one its days x the
  uncovered share; history before 24 months is not searched (the DSO is then capped there);
- bpdso = current_ar_end / credit_sales x days; add = dso_standard - bpdso;
- cei = (ar_start + credit_sales/N - ar_end) / (ar_start + credit_sales/N - current_ar_end) x 100,
  N = months in the period (1 for a monthly row);
- pct_over_90 = over_90_ar_end / ar_end x 100.
A ratio whose denominator is 0 is NaN (no sales in the period: no DSO).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics.filters import ALL, Filters
from analytics.store import Store

DSO_COLUMNS = [
    "month_end", "period_start", "days", "ar_start", "ar_end", "current_ar_end", "overdue_ar_end",
    "over_90_ar_end", "credit_sales", "collections", "write_offs", "dso_standard", "dso_countback",
    "bpdso", "add", "cei", "pct_over_90",
]


def dso_monthly(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """One row per month end in [start, end] with `DSO_COLUMNS` (formulas in the module docstring)."""
    raise NotImplementedError


def days_to_pay(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Invoices paid in each month of [start, end]: count, amount, weighted days to pay and days late.

    An invoice is paid on the date its allocations from payments and credit notes (dated on or
    before `end`) reach its amount; invoices with a write-off allocation are not "paid" (bad debt).
    days_to_pay = paid date - posting date; days_late = max(paid date - due date, 0); both averaged
    weighted by invoice amount (reporting currency at the rate on `end`). Columns: month_end,
    invoices_paid, amount_paid, avg_days_to_pay, avg_days_late, paid_late_pct (share of the amount
    paid after the due date).
    """
    raise NotImplementedError
