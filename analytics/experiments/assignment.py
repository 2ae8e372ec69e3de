"""Which arm each customer of an experiment is in: hashed once, stored, never recomputed.

Rule: a customer's bucket is int(md5("<experiment_id>:<customer_id>").hexdigest()[:8], 16) % 10,000,
computed in Python (the same on every process and engine) and stored in `experiment_assignments` with
its arm; nothing ever recomputes it, so a change of split or of this code cannot move a customer.
The arm of a bucket b, with H = holdout_pct x 100 holdout buckets:
- holdout when b < H (no dunning at all: measures what dunning itself adds);
- otherwise challenger when (b - H) < (10,000 - H) x challenger_pct / 100, else champion
  (challenger_pct is the challenger's share of the non-holdout buckets: 50, or 10 for a "safe" 90/10).
Who is assigned: the customers whose `customers.segment` equals the experiment's segment, not already
in another running experiment, on the day the experiment starts; a customer of the segment who
arrives later (an import) joins on arrival (`assign_arrivals`, assigned_on = that day).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analytics.store.connection import bulk_insert, read_df

BUCKETS = 10_000
ARMS = ("champion", "challenger", "holdout")


def bucket_of(experiment_id: int, customer_id: str) -> int:
    """The customer's bucket: int(md5(f"{experiment_id}:{customer_id}")[:8 hex], 16) % BUCKETS."""
    digest = hashlib.md5(f"{int(experiment_id)}:{customer_id}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) % BUCKETS


def buckets(experiment_id: int, customer_ids: Iterable[str]) -> np.ndarray:
    """`bucket_of` for many customers, as an int64 array in their order."""
    return np.fromiter((bucket_of(experiment_id, c) for c in customer_ids), dtype=np.int64)


def arm_of_bucket(bucket: int, challenger_pct: int, holdout_pct: int) -> str:
    """The arm of one bucket (the module rule)."""
    return str(arms(np.array([bucket]), challenger_pct, holdout_pct)[0])


def arms(bucket_array: np.ndarray, challenger_pct: int, holdout_pct: int) -> np.ndarray:
    """The arms of many buckets: holdout when b < H (H = holdout_pct x 100); of the rest, challenger
    when (b - H) < (BUCKETS - H) x challenger_pct / 100, else champion. Integer arithmetic: exact."""
    b = np.asarray(bucket_array, dtype=np.int64)
    h = int(holdout_pct) * BUCKETS // 100
    # (b - h) < (BUCKETS - h) * pct / 100  <=>  (b - h) * 100 < (BUCKETS - h) * pct
    challenger = (b - h) * 100 < (BUCKETS - h) * int(challenger_pct)
    return np.where(b < h, "holdout", np.where(challenger, "challenger", "champion")).astype(object)


def planned_shares(challenger_pct: int, holdout_pct: int) -> dict[str, float]:
    """The share of buckets each arm gets (the planned split the SRM check compares with)."""
    arm_of_each = arms(np.arange(BUCKETS), challenger_pct, holdout_pct)
    return {arm: float(np.mean(arm_of_each == arm)) for arm in ARMS}


# The segment's customers not yet in this experiment nor in any other running one.
_UNASSIGNED_SQL = """
SELECT c.customer_id FROM customers c
WHERE c.segment = :segment
  AND NOT EXISTS (SELECT 1 FROM experiment_assignments a JOIN experiments e ON e.experiment_id = a.experiment_id
                  WHERE a.customer_id = c.customer_id AND (a.experiment_id = :experiment_id OR e.status = 'running'))
ORDER BY c.customer_id
"""


def assign_experiment(conn: sa.Connection, experiment_id: int, segment: str, challenger_pct: int,
                      holdout_pct: int, day: date) -> int:
    """Store the arm of each customer of `segment` not assigned yet (one read, one bulk insert), in the
    caller's transaction. Returns the customers assigned."""
    ids = read_df(conn, _UNASSIGNED_SQL, {"segment": segment, "experiment_id": int(experiment_id)})["customer_id"]
    if ids.empty:
        return 0
    b = buckets(experiment_id, ids.astype(str))
    frame = pd.DataFrame({"experiment_id": np.full(len(b), int(experiment_id), dtype=np.int64),
                          "customer_id": ids.astype(str).to_numpy(), "bucket": b.astype(np.int64),
                          "arm": arms(b, challenger_pct, holdout_pct), "assigned_on": pd.Timestamp(day).date()})
    return bulk_insert(conn, "experiment_assignments", frame)


def assign_arrivals(conn: sa.Connection, as_of: date) -> int:
    """New customers of every running experiment's segment join it on `as_of` (an import calls this in
    its transaction). Returns the customers assigned."""
    running = read_df(conn, "SELECT experiment_id, segment, challenger_pct, holdout_pct FROM experiments "
                            "WHERE status = 'running' ORDER BY experiment_id")
    return sum(assign_experiment(conn, int(r.experiment_id), r.segment, int(r.challenger_pct),
                                 int(r.holdout_pct), as_of) for r in running.itertuples(index=False))
