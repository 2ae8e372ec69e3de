"""Collector KPIs over a period [start, end], one row per collector (customers.collector).

- customers = customers owned (matching the filters); open_ar / overdue_ar = their open invoices
  and the past-due part as of `end` (reporting currency);
- calls, emails, notes = activities of those kinds the collector authored in the period;
  actions_per_day = (calls + emails + notes) / working days (Monday to Friday) in the period;
- promises = promises to pay the collector recorded in the period; promises_due = those whose
  promised date is on or before `end`; kept = due promises for which the customer's payments
  posted from the promise date to the promised date reach the promised amount ("paid in full on or
  before the promised date"); kept_pct = kept / promises_due x 100;
- collected_14d = payments (positive, reporting currency) posted by the collector's customers in
  the period within 14 days after one of the collector's actions on that customer (each payment
  counted once).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics.filters import ALL, Filters
from analytics.store import Store

ACTION_KINDS = ("call", "email", "note")


def collector_kpis(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Columns: collector, customers, open_ar, overdue_ar, calls, emails, notes, actions_per_day,
    promises, promises_due, promises_kept, kept_pct, collected_14d."""
    raise NotImplementedError
