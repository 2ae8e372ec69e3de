"""Move a whole store from the embedded DuckDB file to PostgreSQL: `ardesk db copy`.

Every table of the schema is copied (users, sessions, the audit log and every history table
included), in dependency order, in one target transaction: a failed copy leaves the target as it
was. Rows travel in Arrow batches read natively from DuckDB and written with PostgreSQL's COPY, so
no row passes through a Python loop. Each id sequence on the target is then set to the source's
last value, so the next id handed out on the server follows the copied ones.

The copy is checked, not trusted: for every table the row count and the sum of every numeric
column (amounts, ids, counters) are read on both sides after the copy and must be equal, exactly
(sums of DECIMAL columns compared as decimals, to the cent).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal

import pyarrow.csv as pacsv
import sqlalchemy as sa

from analytics.store.connection import Store
from analytics.store.schema import metadata

BATCH_ROWS = 50_000
_NUMERIC = (sa.Integer, sa.Numeric, sa.Float)


class CopyRefused(RuntimeError):
    """The copy cannot start (target not empty, wrong engines); the message says why."""


@dataclass(frozen=True)
class TableCheck:
    """One table after the copy: its row count and numeric column sums on each side."""

    table: str
    source_rows: int
    target_rows: int
    source_sums: dict[str, Decimal]
    target_sums: dict[str, Decimal]

    @property
    def equal(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sums == self.target_sums


def copied_tables() -> list[sa.Table]:
    """Every table of the schema, parents before children (the order rows can be inserted in)."""
    return list(metadata.sorted_tables)


def numeric_columns(table: sa.Table) -> list[str]:
    """The columns whose sums check a copy: integers, decimals and floats."""
    return [c.name for c in table.columns if isinstance(c.type, _NUMERIC) and not isinstance(c.type, sa.Boolean)]


def table_fingerprint(store: Store, table: sa.Table) -> tuple[int, dict[str, Decimal]]:
    """Row count and the exact sum of each numeric column (0 for an empty or all-NULL column)."""
    cols = numeric_columns(table)
    sums = ", ".join(f'CAST(COALESCE(SUM("{c}"), 0) AS VARCHAR(60)) AS "{c}"' for c in cols)
    query = f"SELECT COUNT(*) AS n{', ' + sums if sums else ''} FROM {table.name}"  # noqa: S608
    with store.engine.connect() as conn:
        row = conn.execute(sa.text(query)).fetchall()[0]
    return int(row[0]), {c: Decimal(str(v)) for c, v in zip(cols, row[1:], strict=True)}


def rows_in(store: Store) -> dict[str, int]:
    """Row count of every table of the schema except the migrations stamp."""
    out = {}
    with store.engine.connect() as conn:
        for t in copied_tables():
            if t.name != "schema_migrations":
                out[t.name] = int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {t.name}")).fetchall()[0][0])  # noqa: S608
    return out


def _sequences(source: Store) -> dict[str, int | None]:
    """Each sequence of the DuckDB source and the last value it handed out (None: never used)."""
    with source.engine.connect() as conn:
        raw = conn.connection.driver_connection
        return {name: (None if last is None else int(last)) for name, last in raw.execute(
            "SELECT sequence_name, last_value FROM duckdb_sequences()").fetchall()}


def _select_list(table: sa.Table) -> str:
    # A blob travels as PostgreSQL's hex input ('\x0a1b'): CSV cannot hold raw bytes.
    return ", ".join(
        f"CASE WHEN \"{c.name}\" IS NULL THEN NULL ELSE '\\x' || hex(\"{c.name}\") END AS \"{c.name}\""
        if isinstance(c.type, sa.LargeBinary) else f'"{c.name}"'
        for c in table.columns
    )


def copy_store(source: Store, target: Store, *, replace: bool = False) -> list[TableCheck]:
    """Copy every row of `source` (DuckDB) into `target` (PostgreSQL), both at the same schema version.

    Refuses (CopyRefused) a target holding any row, unless `replace`, which empties it first in the
    same transaction. Returns one TableCheck per table; the caller reports a copy with any unequal
    check as failed (the rows are committed by then; a rerun with `replace` starts again).
    """
    if source.dialect != "duckdb" or target.dialect != "postgresql":
        raise CopyRefused(f"db copy moves a DuckDB file to PostgreSQL, not {source.dialect} to {target.dialect}.")
    holding = {t: n for t, n in rows_in(target).items() if n}
    if holding and not replace:
        listed = ", ".join(f"{t} ({n} rows)" for t, n in sorted(holding.items()))
        raise CopyRefused(f"The target store is not empty: {listed}. Add --replace to empty it first.")
    tables = [t for t in copied_tables() if t.name != "schema_migrations"]
    sequences = _sequences(source)
    with target.write() as tconn, source.engine.connect() as sconn:
        if holding:
            names = ", ".join(t.name for t in tables)
            tconn.execute(sa.text(f"TRUNCATE {names}"))
        raw_target = tconn.connection.driver_connection
        raw_source = sconn.connection.driver_connection
        options = pacsv.WriteOptions(include_header=False)
        for table in tables:
            cols = ", ".join(f'"{c.name}"' for c in table.columns)
            reader = raw_source.sql(f"SELECT {_select_list(table)} FROM {table.name}").to_arrow_reader(BATCH_ROWS)  # noqa: S608
            with raw_target.cursor() as cur, cur.copy(f"COPY {table.name} ({cols}) FROM STDIN WITH (FORMAT csv)") as cp:
                for batch in reader:
                    buf = io.BytesIO()
                    pacsv.write_csv(batch, buf, options)
                    cp.write(buf.getvalue())
        for name, last in sequences.items():
            if last is None:
                tconn.execute(sa.text("SELECT setval(CAST(:s AS regclass), 1, false)"), {"s": name}).fetchall()
            else:
                tconn.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v)"), {"s": name, "v": last}).fetchall()
    checks = []
    for table in tables:
        s_rows, s_sums = table_fingerprint(source, table)
        t_rows, t_sums = table_fingerprint(target, table)
        checks.append(TableCheck(table.name, s_rows, t_rows, s_sums, t_sums))
    return checks
