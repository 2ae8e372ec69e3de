"""Ids come from database sequences, reserved in blocks per transaction: never `MAX() + 1`.

A sequence never hands out the same value twice, across processes and after a crash or a restart.
"""

from __future__ import annotations

import sqlalchemy as sa


def reserve_ids(conn: sa.Connection, sequence: str, count: int) -> int:
    """Reserve `count` consecutive ids from `sequence` for this transaction; returns the first.

    Ids come from sequences, never from `MAX() + 1`: a sequence never hands out the same value
    twice, across processes and after a crash or a restart, whatever the table's statistics say.
    On PostgreSQL an advisory lock, held until the transaction ends, keeps another process's
    reservation out of the block; on DuckDB the store's write lock and its one writer process do.
    `sequence` is a name from our own schema, never user input.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": sequence}).fetchall()
    # fetchall, not scalar: on DuckDB a pending result makes the next native statement on this
    # connection (a bulk_insert) fail with "connection is busy".
    first = int(conn.execute(sa.text(f"SELECT nextval('{sequence}')")).fetchall()[0][0])
    if count > 1:
        extend_reservation(conn, sequence, first + count - 1)
    return first


def extend_reservation(conn: sa.Connection, sequence: str, last_id: int) -> None:
    """Move `sequence` past `last_id`, for a writer that numbered rows from a reserved first id on
    without knowing their count in advance (the demo generator). Call inside the transaction that
    reserved the first id, so no other writer can take ids in between."""
    conn.execute(sa.text(f"SELECT setval('{sequence}', :last)"), {"last": int(last_id)}).fetchall()


def restart_ids(conn: sa.Connection, sequence: str) -> None:
    """Start `sequence` again at 1: only for a table emptied in the same transaction (and every
    row that refers to its ids), as the demo's --replace does, so a regenerated demo is identical."""
    conn.execute(sa.text(f"DROP SEQUENCE IF EXISTS {sequence}"))
    conn.execute(sa.text(f"CREATE SEQUENCE {sequence}"))
