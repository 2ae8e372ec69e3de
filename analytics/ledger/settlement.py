"""When an entry is settled: `ledger_entries.settled_on` and `open_now`, kept from the allocations.

`settled_on` is the first date from which the entry's open amount is 0 and stays 0 (the allocations
to a debit, or from a credit, dated on or before it sum to |amount|, and no later allocation changes
that); NULL while open. It only prunes: an entry with settled_on <= D is closed at D. `open_now` is
the open amount after every allocation in the store (NULL until the entry's first allocation: then
the amount itself). Every write of allocations or entry amounts calls `refresh_settled_on` in its
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from analytics.store.connection import bulk_insert, refresh_statistics

# settled_on and open_now per entry in scope: daily allocation sums (to a debit, from a credit), their running
# total, and the first date from which the running total equals |amount| with no later date where it
# does not (an over-allocated entry is open again: it stays NULL). Rows only where it changes.
_SETTLED_ON_CHANGES = """
WITH scope AS (
    SELECT e.entry_id, e.settled_on, e.amount, COALESCE(e.open_now, e.amount) AS open_now,
           CASE WHEN e.amount > 0 THEN e.amount ELSE -e.amount END AS target,
           CASE WHEN e.amount > 0 THEN 1 ELSE 0 END AS debit
    FROM ledger_entries e{scope}
), daily AS (
    SELECT a.to_entry_id AS entry_id, 1 AS debit, a.allocation_date AS d, SUM(a.amount) AS applied
    FROM allocations a WHERE a.to_entry_id IN (SELECT s.entry_id FROM scope s WHERE s.debit = 1)
    GROUP BY a.to_entry_id, a.allocation_date
    UNION ALL
    SELECT a.from_entry_id AS entry_id, 0 AS debit, a.allocation_date AS d, SUM(a.amount) AS applied
    FROM allocations a WHERE a.from_entry_id IN (SELECT s.entry_id FROM scope s WHERE s.debit = 0)
    GROUP BY a.from_entry_id, a.allocation_date
), running AS (
    SELECT s.entry_id, d.d, s.target,
           SUM(d.applied) OVER (PARTITION BY s.entry_id ORDER BY d.d ROWS UNBOUNDED PRECEDING) AS applied
    FROM scope s JOIN daily d ON d.entry_id = s.entry_id AND d.debit = s.debit
), marked AS (
    SELECT entry_id, d, target, applied,
           MAX(CASE WHEN applied <> target THEN d END) OVER (PARTITION BY entry_id) AS last_open
    FROM running
), settled AS (
    SELECT entry_id, MIN(d) AS settled_on FROM marked
    WHERE applied = target AND (last_open IS NULL OR d > last_open)
    GROUP BY entry_id
), totals AS (
    SELECT entry_id, debit, SUM(applied) AS applied FROM daily GROUP BY entry_id, debit
), fresh AS (
    SELECT s.entry_id, s.settled_on AS old_settled_on, s.open_now AS old_open_now, t.settled_on,
           s.amount + CASE WHEN s.debit = 1 THEN -COALESCE(tot.applied, 0) ELSE COALESCE(tot.applied, 0) END
               AS open_now
    FROM scope s
    LEFT JOIN settled t ON t.entry_id = s.entry_id
    LEFT JOIN totals tot ON tot.entry_id = s.entry_id AND tot.debit = s.debit
)
SELECT entry_id, settled_on, open_now FROM fresh
WHERE old_settled_on IS DISTINCT FROM settled_on OR old_open_now <> open_now
"""


@dataclass(frozen=True)
class EntryScope:
    """The entries a refresh covers: everything, the entries of some customers, and/or some entry
    ids (held in a temporary table, `table`). `where(prefix)` is the SQL predicate ("" = all)."""

    table: str | None
    params: dict[str, object]

    @property
    def binds(self) -> list[sa.BindParameter]:
        return [sa.bindparam("customer_ids", expanding=True)] if "customer_ids" in self.params else []

    def where(self, prefix: str = "") -> str:
        terms = ([f"{prefix}entry_id IN (SELECT entry_id FROM {self.table})"] if self.table else []) + (  # noqa: S608
            [f"{prefix}customer_id IN :customer_ids"] if "customer_ids" in self.params else [])
        return " OR ".join(terms)

    def drop(self, conn: sa.Connection) -> None:
        if self.table:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.table}"))


def entry_scope(conn: sa.Connection, table: str, customer_ids: Sequence[str] | None,
                entry_ids: Sequence[int] | None) -> EntryScope | None:
    """The scope of a refresh (see `EntryScope`); None when ids were given but all lists are empty."""
    given = [ids for ids in (customer_ids, entry_ids) if ids is not None]
    if given and not any(len(ids) for ids in given):
        return None
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    if entry_ids is not None:
        conn.execute(sa.text(f"CREATE TEMPORARY TABLE {table} (entry_id BIGINT)"))
        bulk_insert(conn, table, pd.DataFrame({"entry_id": pd.Series(list(entry_ids), dtype="int64")}))
    refresh_statistics(conn, table, len(entry_ids or ()))
    params: dict[str, object] = {} if customer_ids is None else {"customer_ids": [str(c) for c in customer_ids]}
    return EntryScope(table if entry_ids is not None else None, params)


def refresh_settled_on(conn: sa.Connection, customer_ids: Sequence[str] | None = None,
                       entry_ids: Sequence[int] | None = None) -> int:
    """Recompute `ledger_entries.settled_on` and `open_now` from the allocations; returns the entries
    changed.

    Scope: all entries (neither given), the entries of `customer_ids`, and/or `entry_ids` (an
    allocation changes both its credit and its invoice: pass both). Set-based SQL, the same on DuckDB
    and PostgreSQL; only rows whose date changes are written. Call it inside the writing transaction.
    """
    scope = entry_scope(conn, "_settled_scope", customer_ids, entry_ids)
    if scope is None:
        return 0
    conn.execute(sa.text("DROP TABLE IF EXISTS _settled_changes"))
    where = f" WHERE {scope.where('e.')}" if scope.where() else ""
    create = sa.text("CREATE TEMPORARY TABLE _settled_changes AS " + _SETTLED_ON_CHANGES.format(scope=where))
    conn.execute(create.bindparams(*scope.binds), scope.params)
    changed = int(conn.execute(sa.text("SELECT COUNT(*) FROM _settled_changes")).fetchall()[0][0])
    if changed:
        conn.execute(sa.text("""UPDATE ledger_entries SET settled_on = c.settled_on, open_now = c.open_now
            FROM _settled_changes c WHERE ledger_entries.entry_id = c.entry_id"""))
    conn.execute(sa.text("DROP TABLE IF EXISTS _settled_changes"))
    scope.drop(conn)
    return changed
