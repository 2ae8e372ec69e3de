"""Each dunning stage an invoice reached, and what was paid after it: table `dunning_stage_results`.

One row per (invoice, configuration, version, stage) that has a sent or done run:
- run_date = the first sent/done run of that stage for the invoice (a repeat is not a new reach);
- open_amount = the invoice's open amount on run_date by the open-as-of rule of
  `analytics.ledger.open_items` (amount - allocations dated on or before run_date, any source), own currency;
- paid_7d / paid_14d / paid_30d = allocations from payments and credit notes dated in
  (run_date, run_date + N days];
- paid_after = allocations from payments and credit notes dated after run_date (any later date);
- paid_on = the first date on which allocations from payments and credit notes reach the invoice
  amount, if no write-off or adjustment was applied to it on or before that date (else NULL);
- next_run = the run date of the invoice's next stage reach, of any configuration (reaches ordered by
  run date, configuration, version, stage; NULL for the last);
- paid_until_next = allocations from payments and credit notes dated in (run_date, next_run], or
  after run_date when next_run is NULL: the payments this stage "recovered" (`dunning_effectiveness`).

Every field is fixed by dated facts, so a report for a past period reads the same rows and stays
reproducible: windows only count once they have closed (`dunning_effectiveness`), and payments
dated after a report's end are subtracted there. The rows are derived data: every write of
dunning runs, allocations or invoice amounts calls `refresh_stage_results` for the invoices it
touched, in its own transaction; the schema upgrade fills the table once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from analytics.ledger.settlement import entry_scope
from analytics.store.schema import STAGE_WINDOWS

PAYMENT_SOURCES = ("payment", "credit_note")  # credits whose allocation is money received
_SOURCES = ", ".join(f"'{t}'" for t in PAYMENT_SOURCES)


def from_payment_sql(allocation: str) -> str:
    """SQL condition: the allocation aliased `allocation` comes from a payment or a credit note.

    Written as "not from another kind of credit" (write-offs and credit adjustments are few), and as
    NOT IN an uncorrelated set: both engines build that small set once and probe it by hash (NOT EXISTS
    made DuckDB decorrelate per allocation and PostgreSQL probe the ledger's key per allocation).
    Entry ids are never NULL, so NOT IN means the same as NOT EXISTS."""
    return (f"{allocation}.from_entry_id NOT IN (SELECT src.entry_id FROM ledger_entries src "  # noqa: S608
            f"WHERE src.amount < 0 AND src.entry_type NOT IN ({_SOURCES}))")


_WINDOW_SUMS = "".join(
    f"""
           SUM(CASE WHEN p.is_payment = 1 AND p.allocation_date > s.run_date
                     AND p.allocation_date - s.run_date <= {n} THEN p.amount ELSE 0 END) AS paid_{n}d,"""
    for n in STAGE_WINDOWS)
_WINDOW_COLUMNS = ", ".join(f"paid_{n}d" for n in STAGE_WINDOWS)
_WINDOW_VALUES = ", ".join(f"COALESCE(s.paid_{n}d, 0)" for n in STAGE_WINDOWS)

# Each reach is carried whole through `ordered` and `per_stage`, never joined back to itself on its four
# key columns: PostgreSQL cannot estimate such a join of two CTEs (it guessed one row) and then re-ran
# `paid_in_full` once per reach in a nested loop (150 s for the 20k-entry demo; now a second).
_STAGE_RESULTS_SQL = f"""
WITH reached AS (
    SELECT r.entry_id, r.customer_id, r.config_id, r.config_version, r.stage_no, MIN(r.run_date) AS run_date
    FROM dunning_runs r
    WHERE r.outcome IN ('sent', 'done'){{scope}}
    GROUP BY r.entry_id, r.customer_id, r.config_id, r.config_version, r.stage_no
), ordered AS (
    SELECT rd.entry_id, rd.customer_id, rd.config_id, rd.config_version, rd.stage_no, rd.run_date,
           LEAD(rd.run_date) OVER (PARTITION BY rd.entry_id
                                   ORDER BY rd.run_date, rd.config_id, rd.config_version, rd.stage_no) AS next_run
    FROM reached rd
), applied AS (
    SELECT a.to_entry_id AS entry_id, a.allocation_date, a.amount,
           CASE WHEN c.entry_type IN ({_SOURCES}) THEN 1 ELSE 0 END AS is_payment
    FROM allocations a JOIN ledger_entries c ON c.entry_id = a.from_entry_id
    WHERE a.to_entry_id IN (SELECT rd.entry_id FROM reached rd)
), daily AS (
    SELECT entry_id, allocation_date AS d,
           SUM(CASE WHEN is_payment = 1 THEN amount ELSE 0 END) AS paid,
           SUM(CASE WHEN is_payment = 0 THEN amount ELSE 0 END) AS other
    FROM applied GROUP BY entry_id, allocation_date
), running AS (
    SELECT entry_id, d,
           SUM(paid) OVER (PARTITION BY entry_id ORDER BY d ROWS UNBOUNDED PRECEDING) AS paid_to_date,
           SUM(other) OVER (PARTITION BY entry_id ORDER BY d ROWS UNBOUNDED PRECEDING) AS other_to_date
    FROM daily
), paid_in_full AS (
    SELECT ru.entry_id, MIN(ru.d) AS paid_on
    FROM running ru JOIN ledger_entries e ON e.entry_id = ru.entry_id
    WHERE ru.paid_to_date >= e.amount AND ru.other_to_date = 0
    GROUP BY ru.entry_id
), per_stage AS (
    SELECT s.entry_id, s.customer_id, s.config_id, s.config_version, s.stage_no, s.run_date, s.next_run,
           SUM(CASE WHEN p.allocation_date <= s.run_date THEN p.amount ELSE 0 END) AS applied_before,{_WINDOW_SUMS}
           SUM(CASE WHEN p.is_payment = 1 AND p.allocation_date > s.run_date THEN p.amount ELSE 0 END) AS paid_after,
           SUM(CASE WHEN p.is_payment = 1 AND p.allocation_date > s.run_date
                     AND (s.next_run IS NULL OR p.allocation_date <= s.next_run) THEN p.amount ELSE 0 END)
               AS paid_until_next
    FROM ordered s
    LEFT JOIN applied p ON p.entry_id = s.entry_id
    GROUP BY s.entry_id, s.customer_id, s.config_id, s.config_version, s.stage_no, s.run_date, s.next_run
)
SELECT s.entry_id, s.config_id, s.config_version, s.stage_no, s.customer_id, e.currency, s.run_date,
       e.amount - COALESCE(s.applied_before, 0) AS open_amount, {_WINDOW_VALUES},
       COALESCE(s.paid_after, 0) AS paid_after, f.paid_on, s.next_run,
       COALESCE(s.paid_until_next, 0) AS paid_until_next
FROM per_stage s
JOIN ledger_entries e ON e.entry_id = s.entry_id
LEFT JOIN paid_in_full f ON f.entry_id = s.entry_id
"""  # noqa: S608 - constants only

_COLUMNS = (f"entry_id, config_id, config_version, stage_no, customer_id, currency, run_date, open_amount, "
            f"{_WINDOW_COLUMNS}, paid_after, paid_on, next_run, paid_until_next")


def refresh_stage_results(conn: sa.Connection, customer_ids: Sequence[str] | None = None,
                          entry_ids: Sequence[int] | None = None) -> int:
    """Recompute `dunning_stage_results` for the invoices in scope; returns the rows written.

    Scope: everything (neither given), the invoices of `customer_ids`, and/or `entry_ids`: the
    entries whose runs, allocations, amount or type changed (a credit brings in the invoices it was
    applied to). Set-based SQL, the same on DuckDB and PostgreSQL. Call it inside the writing
    transaction.
    """
    scope = entry_scope(conn, "_stage_scope", customer_ids, entry_ids)
    if scope is None:
        return 0
    if scope.table:  # a credit in scope (its type or amount changed) changes the invoices it was applied to
        conn.execute(sa.text("""INSERT INTO _stage_scope (entry_id) SELECT DISTINCT a.to_entry_id FROM allocations a
            WHERE a.from_entry_id IN (SELECT entry_id FROM _stage_scope)"""))
    delete = "DELETE FROM dunning_stage_results" + (f" WHERE {scope.where()}" if scope.where() else "")  # noqa: S608
    conn.execute(sa.text(delete).bindparams(*scope.binds), scope.params)
    select = _STAGE_RESULTS_SQL.format(scope=f" AND ({scope.where('r.')})" if scope.where() else "")
    insert = sa.text(f"INSERT INTO dunning_stage_results ({_COLUMNS}) {select}").bindparams(*scope.binds)
    written = conn.execute(insert, scope.params).rowcount
    scope.drop(conn)
    return int(written) if written is not None and written >= 0 else 0
