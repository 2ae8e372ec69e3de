"""Which invoices are held out of dunning as of D: the one dated rule that the dunning schedule,
automatic dunning, the worklist's dunning items and every reminder share.

An invoice is **held as of D** when an activity of its customer covers it and is, as of D, either
- a dispute open as of D (`collections.disputes.open_dispute_sql`: opened by D, not resolved by D), or
- a promise to pay that pauses dunning (`pauses_dunning`, a tick box on by default; promises from
  before schema v15 do not pause), made on or before D, with D <= the promised date: the pause
  lasts until the promised date + 1 day. That is the day an unpaid promise is broken
  (`followups.refresh_promise_statuses`: promised date < D), so a broken promise resumes dunning
  at once, whether or not its status was refreshed yet. A cancelled promise holds nothing.
- a remittance advice ("I have paid" in the customer portal, kind 'remittance'), recorded on or
  before D, with D before its `due_date`: the stated payment date (`paid_on`) + `[portal]
  remittance_pause_days` (fixed when it is recorded). Reminders resume on that day.

What goes out now (a reminder, the re-check before sending) asks the same question with what is
known now (`known_now`): a dispute whose status is open today, and a promise logged after D, hold
too, so a dispute logged today stops today's reminder even when the ledger (and D) ends earlier.

An activity **covers** an invoice it names (its `entry_id`, or a row in `activity_invoices`), and
every invoice of the account when it names none (`whole_account`: an explicit choice for
disputes; a promise without invoices is about the account).
"""

from __future__ import annotations

from analytics.collections.disputes import open_dispute_sql


def paused_promise_sql(alias: str = "p", as_of: str = ":as_of", known_now: bool = False) -> str:
    """SQL condition: the activity aliased `alias` is a promise that pauses dunning as of `as_of`."""
    made = "" if known_now else f"AND CAST({alias}.occurred_at AS DATE) <= {as_of} "
    return (f"{alias}.kind = 'promise' AND {alias}.pauses_dunning {made}"
            f"AND {alias}.status IN ('pending', 'kept', 'broken') AND {as_of} <= {alias}.due_date")


def paused_remittance_sql(alias: str = "r", as_of: str = ":as_of", known_now: bool = False) -> str:
    """SQL condition: the activity aliased `alias` is a remittance advice pausing dunning as of `as_of`."""
    made = "" if known_now else f"AND CAST({alias}.occurred_at AS DATE) <= {as_of} "
    return f"{alias}.kind = 'remittance' {made}AND {as_of} < {alias}.due_date"


def covers_invoice_sql(alias: str, entry: str) -> str:
    """SQL condition: the activity aliased `alias` covers the invoice whose id is the expression `entry`
    (it names it, or names no invoice at all: the whole account)."""
    return f"""({alias}.entry_id = {entry}
        OR EXISTS (SELECT 1 FROM activity_invoices {alias}_i
                   WHERE {alias}_i.activity_id = {alias}.activity_id AND {alias}_i.entry_id = {entry})
        OR ({alias}.entry_id IS NULL AND NOT EXISTS (SELECT 1 FROM activity_invoices {alias}_n
                                                     WHERE {alias}_n.activity_id = {alias}.activity_id)))"""  # noqa: S608


def _dispute_sql(alias: str, as_of: str, known_now: bool) -> str:
    return f"{alias}.kind = 'dispute' AND {alias}.status = 'open'" if known_now else open_dispute_sql(alias, as_of)


def _covering_sql(alias: str, entry: str, customer: str, condition: str) -> str:
    """EXISTS an activity of the customer meeting `condition` that covers the invoice: one
    correlated subquery over activities left-joined to their invoices (which the engines decorrelate;
    an OR of nested EXISTS they evaluate row by row)."""
    return f"""EXISTS (SELECT 1 FROM activities {alias}
        LEFT JOIN activity_invoices {alias}_i ON {alias}_i.activity_id = {alias}.activity_id
        WHERE {alias}.customer_id = {customer} AND ({condition})
          AND ({alias}.entry_id = {entry} OR {alias}_i.entry_id = {entry}
               OR ({alias}.entry_id IS NULL AND {alias}_i.activity_id IS NULL)))"""  # noqa: S608


def dunning_hold_sql(entry: str, customer: str, as_of: str = ":as_of", alias: str = "h",
                     known_now: bool = False) -> str:
    """SQL condition: the invoice (`entry`, of customer `customer`: SQL expressions) is held as of
    `as_of`: disputed, under a promise that pauses dunning, or paid by the customer's word (module rule)."""
    return _covering_sql(alias, entry, customer, f"({_dispute_sql(alias, as_of, known_now)}) "
                                                 f"OR ({paused_promise_sql(alias, as_of, known_now)}) "
                                                 f"OR ({paused_remittance_sql(alias, as_of, known_now)})")


def disputed_sql(entry: str, customer: str, as_of: str = ":as_of", alias: str = "hd", known_now: bool = False) -> str:
    """SQL condition: the invoice is covered by a dispute open as of `as_of` (part of the hold)."""
    return _covering_sql(alias, entry, customer, _dispute_sql(alias, as_of, known_now))
