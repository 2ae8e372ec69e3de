"""Headline KPIs for the Overview tiles: as of a date and as of the previous month end.

Row "current": the month of `as_of` up to `as_of` (the whole month when `as_of` is a month end);
row "previous": the month ending at the previous month end. Each row comes from
`analytics.dso.dso_monthly` (same definitions):
open_ar = open invoices at the row's date; overdue_ar = the part past due;
overdue_pct = overdue_ar / open_ar x 100; dso = dso_standard; bpdso; add = dso - bpdso; cei;
share_90_plus = AR more than 90 days past due / open_ar x 100;
bad_debt_pct = write-offs / credit sales over the 12 months ending at the row's date x 100.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics.filters import ALL, Filters
from analytics.store import Store

SUMMARY_COLUMNS = ["period", "as_of", "period_start", "open_ar", "overdue_ar", "overdue_pct", "dso", "bpdso",
                   "add", "cei", "bad_debt_pct", "share_90_plus", "credit_sales", "collections"]


def kpi_summary(store: Store, as_of: date, filters: Filters = ALL) -> pd.DataFrame:
    """Two rows (period "current", then "previous") with `SUMMARY_COLUMNS`."""
    raise NotImplementedError


def top_overdue_customers(store: Store, as_of: date, filters: Filters = ALL, n: int = 10) -> pd.DataFrame:
    """The n customers with the most overdue AR as of D (reporting currency), largest first.

    Columns: customer_id, customer_name, segment, collector, open_ar, overdue_ar, over_90_ar,
    oldest_days_past_due, unapplied (open credits, <= 0). Customers with nothing overdue are left out.
    """
    raise NotImplementedError
