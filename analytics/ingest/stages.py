"""The store-side stages: temporary tables on the store's connection that hold accepted rows.

The validation (allocations) and the merges stage rows here to compare them with the store in
set-based SQL. Rule: every stage is named in `STAGE_NAMES`, so a run drops them all before it
commits; on DuckDB a read-only stage is the Arrow table itself, registered, not a copy.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from analytics.ingest.progress import Clock
from analytics.store.connection import bulk_insert

CHUNK_ROWS = 1_000_000
ALLOC_STAGE = """CREATE TEMPORARY TABLE _import_allocations (
    row_number BIGINT, from_type VARCHAR(16), from_document VARCHAR(64), to_document VARCHAR(64),
    amount NUMERIC(18,2), allocation_date DATE)"""
STAGE_NAMES = ("_import_entries", "_import_allocations", "_import_customers", "_import_fx", "_import_match",
               "_import_new_customers")
STAGE_NAMES += ("_import_write_offs", "_import_related")
STAGE_NAMES += ("_import_contacts", "_import_disputes", "_import_dunning", "_import_runs", "_import_team_check")
STAGE_NAMES += ("_import_attributes",)
STAGE_NAMES += ("_import_installments", "_import_schedules", "_import_schedule_status")


def drop_stages(conn: sa.Connection) -> None:
    for name in STAGE_NAMES:
        forget(conn, name)
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


def forget(conn: sa.Connection, name: str) -> None:
    if conn.dialect.name == "duckdb":
        conn.connection.driver_connection.unregister(name)


def stage(conn: sa.Connection, ddl: str, name: str, rows: pa.Table, clock: Clock | None = None,
          step: str = "staging", writable: bool = False) -> int:
    """Make `rows` queryable as `name` on the store's connection, for set-based SQL.

    DuckDB reads the Arrow table in place (no copy); other engines get a temporary table loaded
    in bulk (COPY on PostgreSQL). `writable` stages always get a real temporary table.
    """
    forget(conn, name)
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    if conn.dialect.name == "duckdb" and not writable:
        conn.connection.driver_connection.register(name, rows)
        if clock:
            clock.tick(step, clock.total)
        return rows.num_rows
    conn.execute(sa.text(ddl))
    done = 0
    for start in range(0, rows.num_rows, CHUNK_ROWS):
        chunk = rows.slice(start, CHUNK_ROWS).to_pandas(types_mapper=pd.ArrowDtype)
        done += bulk_insert(conn, name, chunk)
        if clock:  # staged rows can outnumber file rows (a settlement adds a payment): report file rows
            clock.tick(step, clock.total * done // max(rows.num_rows, 1))
    return done
