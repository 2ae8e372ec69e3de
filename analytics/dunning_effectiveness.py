"""How well each dunning configuration (and version) and each of its stages gets invoices paid.

A stage run counts when it was sent or done (`dunning_runs.outcome` in sent, done) on a date in
[start, end], for an invoice of a customer matching the filters; per invoice and stage the first
such run is the one measured. Reporting currency at the rate on `end`.
- invoices, amount = invoices that reached the stage, and their open amount on the run date
  (open-as-of rule of `analytics.ledger`);
- paid_7d_pct / paid_14d_pct / paid_30d_pct = share of that amount allocated from payments and
  credit notes in the N days after the run, over the runs whose N-day window ended by `end`
  (so young runs do not drag a share down);
- recovered = amount allocated from payments and credit notes after the run, up to `end`;
- median_days_to_pay = median days from the run to full payment, invoices paid by `end`;
- reached_final_pct = share of the invoices that later (by `end`) reached the last stage of their
  configuration version or an escalation-channel stage.
Comparable across configurations over the same period and segment (pass the same filters).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics.filters import ALL, Filters
from analytics.store import Store


def dunning_effectiveness(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """One row per (config_id, config_version, stage_no): config_name, stage_name, channel, invoices,
    amount, paid_7d_pct, paid_14d_pct, paid_30d_pct, recovered, median_days_to_pay, reached_final_pct."""
    raise NotImplementedError


def recovery_curve(store: Store, start: date, end: date, filters: Filters = ALL,
                   max_days: int = 60) -> pd.DataFrame:
    """Share of the open amount at each stage paid within 0..max_days days after it (cumulative).

    Long format: config_id, config_version, stage_no, days, share_paid_pct; each stage's runs count
    only for the days their window has reached by `end`.
    """
    raise NotImplementedError
