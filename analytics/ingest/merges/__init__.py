"""The merges into the store, one per dataset family, each on its natural key.

A new key is inserted, a changed row is updated and audited with its old and new values, an
identical row is left alone, so re-importing a file changes nothing. Rule: every merge has the
`Merge` signature and is listed once in `MERGES`: a new dataset is a module here, a line there,
and the names of the temporary tables it stages in `stages.STAGE_NAMES`.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.mapping import LEDGER_DATASETS
from analytics.ingest.merges.allocations import merge_allocation_file
from analytics.ingest.merges.changes import Counts
from analytics.ingest.merges.contacts import merge_contacts
from analytics.ingest.merges.customers import merge_customers
from analytics.ingest.merges.disputes import merge_disputes
from analytics.ingest.merges.dunning_history import merge_dunning_history
from analytics.ingest.merges.entries import merge_entries
from analytics.ingest.merges.fx_rates import merge_fx_rates
from analytics.ingest.merges.installments import merge_installments
from analytics.ingest.merges.write_offs import merge_write_offs
from analytics.ingest.progress import Clock
from analytics.ingest.staging import Staging

# (conn, actor, run_id, staging, errors, clock, source_label): what the merge did
Merge = Callable[[sa.Connection, Actor, int, Staging, pd.DataFrame, Clock, str], Counts]

MERGES: dict[str, Merge] = {
    **dict.fromkeys(LEDGER_DATASETS, merge_entries),
    "customers": merge_customers,
    "fx-rates": merge_fx_rates,
    "allocations": merge_allocation_file,
    "write-offs": merge_write_offs,
    "contacts": merge_contacts,
    "disputes": merge_disputes,
    "dunning-history": merge_dunning_history,
    "installments": merge_installments,
}


def merge(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
          clock: Clock, source_label: str) -> Counts:
    """Merge the accepted rows of `staging` with the merge of its dataset."""
    return MERGES[staging.mapping.dataset](conn, actor, run_id, staging, errors, clock, source_label)
