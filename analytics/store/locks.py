"""Writers that must take turns across processes: one import, one dunning run at a time per store.

On PostgreSQL several processes (app instances, cron imports, `ardesk dunning run`) write to one
store. Row-level rules (unique keys, conditional claims) keep single rows safe, but a writer that
reads the store to decide what to write (which documents are new, which dunning stages are due)
must not decide on a state another writer is changing. Such writers take a named PostgreSQL
advisory lock: the second waits, then decides on the first's committed result. On DuckDB one
process owns the file and `Store.write` already serialises its writers, so these are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from analytics.store.connection import Store

IMPORTS = "ardesk:imports"
DUNNING_RUNS = "ardesk:dunning-runs"


def take_turn(conn: sa.Connection, name: str) -> None:
    """Inside a write transaction: wait until no other transaction holds `name`; held to commit/rollback."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name}).fetchall()


@contextmanager
def one_at_a_time(store: Store, name: str) -> Iterator[None]:
    """Around a job of several transactions (a dunning run): no other process runs a job named
    `name` on this store meanwhile. A session-level lock on its own connection, released at the end
    (and by the server if the process dies)."""
    if store.dialect != "postgresql":
        yield
        return
    with store.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": name}).fetchall()
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": name}).fetchall()
            conn.commit()
