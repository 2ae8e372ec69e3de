"""Bad debt: write-offs per month, bad debt % of credit sales (monthly and rolling 12 months),
the 90+ balance over time, and roll rates between aging buckets.

Reporting currency, flows at each period's closing FX rate, balances at the month-end rate.
- write_offs = write-off entries posted in the month (positive);
- bad_debt_pct = write_offs / credit_sales x 100; bad_debt_pct_12m = the same over the 12 months
  ending at the month end;
- ar_90_plus = open invoices more than 90 days past due at the month end;
- roll rate from bucket b at month end M to the next bucket at the next month end M' = balance at
  M' of the invoices that were in b at M and are in the next bucket at M' / balance in b at M x 100.
  Exact per due date (all invoices due on one day age together), so no invoice x month join.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics.filters import ALL, Filters
from analytics.store import Store


def bad_debt_monthly(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Columns: month_end, write_offs, credit_sales, bad_debt_pct, write_offs_12m, credit_sales_12m,
    bad_debt_pct_12m, ar_end, ar_90_plus."""
    raise NotImplementedError


def roll_rates(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Long format, one row per (month_end, from_bucket): month_end (M'), from_bucket, to_bucket,
    from_balance (in from_bucket at the previous month end), rolled_balance, roll_rate (%)."""
    raise NotImplementedError
