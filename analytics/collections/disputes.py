"""When a dispute is open: the one dated rule that dunning, the worklist and the Customer 360 share.

A dispute (an `activities` row of kind 'dispute') is **open as of D** when it was opened on or
before D (`occurred_at`) and not resolved by D: `resolved_at` is blank or after D. Its `status`
(open, resolved, rejected) is the state today; the dates make a past as-of date reproduce the
past. Disputes logged in the app are dated when they are logged; imported ones carry the file's
`opened_on` and `resolved_on` (`analytics.ingest.team_datasets`). A dispute with no invoice
(`entry_id` NULL) covers the whole account.
"""

from __future__ import annotations


def open_dispute_sql(alias: str = "a", as_of: str = ":as_of") -> str:
    """SQL condition: the activity aliased `alias` is a dispute open as of the date `as_of`."""
    return (f"{alias}.kind = 'dispute' AND CAST({alias}.occurred_at AS DATE) <= {as_of} "
            f"AND ({alias}.resolved_at IS NULL OR CAST({alias}.resolved_at AS DATE) > {as_of})")


# How long a department has to answer a dispute, in days from the day it was opened, when the
# dispute does not carry its own answer date (`activities.due_date`). Until then the dispute waits
# with its department; it reaches the collector's worklist only once the answer is overdue.
DISPUTE_ANSWER_DAYS = {"sales": 10, "logistics": 10, "billing": 7, "quality": 14, "legal": 30, "collections": 7}
DEFAULT_ANSWER_DAYS = 10  # a department not listed above


def answer_due_sql(alias: str = "a") -> str:
    """SQL: the date the dispute aliased `alias` must be answered by: its own `due_date`, else the day
    it was opened + DISPUTE_ANSWER_DAYS of its department (DEFAULT_ANSWER_DAYS for any other)."""
    days = " ".join(f"WHEN '{d}' THEN {n}" for d, n in DISPUTE_ANSWER_DAYS.items())
    return (f"COALESCE({alias}.due_date, CAST({alias}.occurred_at AS DATE) + "
            f"CASE {alias}.department {days} ELSE {DEFAULT_ANSWER_DAYS} END)")
