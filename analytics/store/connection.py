"""The one owner of database connections.

Every query in AR Desk goes through this module. The same SQL runs on the embedded DuckDB file
(the default) and on PostgreSQL (a SQLAlchemy URL). Rules that follow from how DuckDB behaves:

- One process owns a DuckDB file; a second process cannot open it, not even read-only. Opening a
  held file raises `StoreLocked` with a plain message instead of a driver traceback.
- Inside the process each thread checks out its own pooled connection (never one shared
  connection: DuckDB returns other threads' results when one is shared).
- Writes are serialised by one lock per store, so two sessions saving at once queue instead of
  failing with a write-write conflict.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.settings import database_url, load_settings

log = logging.getLogger(__name__)

Params = Mapping[str, Any] | None
Query = str | sa.sql.Executable


class StoreLocked(RuntimeError):
    """The DuckDB file is held by another process (usually the running app)."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path, self.pid = path, pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"The store {path} is in use by {holder}, most likely the running AR Desk app. "
            "DuckDB lets only one process open the file. Stop that process, or let the running "
            "app do the work: `ardesk import` and `ardesk sync` queue files into its inbox."
        )


class StoreError(RuntimeError):
    """The store could not be opened or used, explained in plain words."""


_write_locks: dict[str, threading.RLock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(url: str) -> threading.RLock:
    with _write_locks_guard:
        return _write_locks.setdefault(url, threading.RLock())


# PostgreSQL session settings for the KPI queries at 10M entries: no JIT (it spent 2.3 s compiling a
# 6 s top-overdue query; the queries it would speed up are already short), and hash aggregates of a
# few hundred thousand open items kept in memory instead of spilling to disk (the default is 4MB).
POSTGRES_SESSION = "-c jit=off -c work_mem=64MB"


class Store:
    """A database behind a SQLAlchemy engine, with DataFrame reads and serialised writes."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = sa.engine.make_url(url)
        options = ({"connect_args": {"options": POSTGRES_SESSION}}
                   if parsed.get_backend_name() == "postgresql" and "options" not in parsed.query else {})
        self.engine = sa.create_engine(url, **options)
        self.dialect: str = self.engine.dialect.name  # "duckdb" or "postgresql"
        self._lock = _write_lock(url)

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)})"

    @property
    def path(self) -> str | None:
        """The DuckDB file path, or None for a server database."""
        return self.engine.url.database if self.dialect == "duckdb" else None

    def read(self, query: Query, params: Params = None) -> pd.DataFrame:
        """Run a query and return its rows as a DataFrame."""
        with self.engine.connect() as conn:
            return read_df(conn, query, params)

    def scalar(self, query: Query, params: Params = None) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(_as_stmt(query), dict(params or {})).scalar()

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One write transaction at a time: commits on success, rolls back on any error."""
        with self._lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write_if_free(self, wait_s: float) -> Iterator[sa.Connection | None]:
        """Like `write`, but yields None (the caller skips its write) when another write holds the
        lock for longer than `wait_s`: for bookkeeping a page load must not wait for (an import)."""
        if not self._lock.acquire(timeout=wait_s):
            yield None
            return
        try:
            with self.engine.begin() as conn:
                yield conn
        finally:
            self._lock.release()

    def close(self) -> None:
        """Write every committed change into the DuckDB file (CHECKPOINT), then drop the connections.

        Committed transactions already survive a crash through DuckDB's write-ahead log; the
        checkpoint makes a clean shutdown leave no log to replay. Called by the app at shutdown
        and by the command line when it is done.
        """
        if self.dialect == "duckdb":
            try:
                with self._lock, self.engine.connect() as conn:
                    conn.connection.driver_connection.execute("CHECKPOINT")
            except Exception as exc:  # noqa: BLE001 - the log still holds every commit; say why
                log.warning("checkpoint at close failed (the write-ahead log keeps the commits): %s", exc)
        self.engine.dispose()


def _as_stmt(query: Query) -> sa.sql.Executable:
    return sa.text(query) if isinstance(query, str) else query


def read_df(conn: sa.Connection, query: Query, params: Params = None) -> pd.DataFrame:
    """Rows of `query` as a DataFrame, on an open connection (inside a transaction if any).

    DuckDB runs natively (`.df()`, no per-row Python objects); other engines use pandas.
    The same types on both paths: DECIMAL columns come back as float64, DATE columns as datetime64
    (DuckDB's `.df()` gives datetime64; the PostgreSQL driver gives `datetime.date` objects, which
    are converted, so a caller's `.dt` works on either engine).
    """
    stmt = _as_stmt(query)
    if conn.dialect.name == "duckdb":
        if isinstance(stmt, sa.TextClause) and params:
            stmt = stmt.bindparams(**{k: v for k, v in params.items() if k in stmt._bindparams})
        # render_postcompile expands `IN` lists (`col.in_([...])`) into one placeholder per value.
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        values = compiled.params
        args = [values[name] for name in (compiled.positiontup or [])]
        raw = conn.connection.driver_connection
        return raw.execute(compiled.string, args).df()
    return _dates_as_datetime64(pd.read_sql(stmt, conn, params=dict(params or {})))


def _dates_as_datetime64(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns holding `datetime.date` objects (a DATE column from the driver) as datetime64[us], as DuckDB gives them."""
    for name in [c for c, kind in frame.dtypes.items() if pd.api.types.is_object_dtype(kind)]:
        values = frame[name].dropna()
        if not values.empty and type(values.iloc[0]) is date:
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
    return frame


BULK_ROWS = 10_000  # rows written to a table in one transaction from which PostgreSQL's statistics are refreshed
LEDGER_TABLES = ("ledger_entries", "allocations", "invoice_installments", "dunning_runs")


def refresh_statistics(conn: sa.Connection, scope_table: str | None = None, scope_rows: int = 0) -> None:
    """On PostgreSQL, ANALYZE the ledger's tables this transaction has written `BULK_ROWS` rows or more
    of, and a refresh's temporary scope table `scope_table` when it holds that many (`scope_rows`).

    Autovacuum analyses a table only after the transaction that filled it commits, and never a
    temporary table; until then the planner believes a ledger that just took 100k write-offs holds
    none of them and joins them to the refresh's customers by a nested loop (the 1M-adjustments
    import: over five minutes in one statement instead of seconds). ANALYZE runs inside the
    transaction and counts its own uncommitted rows. The refreshes every write calls
    (`refresh_settled_on`, `refresh_stage_results`, `refresh_monthly_summaries`) call this first.
    DuckDB needs nothing. Table names are our own schema's, never user input.
    """
    if conn.dialect.name != "postgresql":
        return
    written = conn.execute(sa.text(
        "SELECT pg_current_xact_id()::text, relname, n_tup_ins + n_tup_upd + n_tup_del "
        "FROM pg_stat_xact_user_tables WHERE relname = ANY(:names)"), {"names": list(LEDGER_TABLES)}).fetchall()
    # per table, the rows written when this transaction last analysed it: analysed again only after
    # another BULK_ROWS (several refreshes run in one import's transaction)
    for xact, name, rows in written:
        if conn.info.get("analysed_in") != xact:
            conn.info["analysed_in"], conn.info["analysed_at_rows"] = xact, {}
        if rows - conn.info["analysed_at_rows"].get(name, 0) >= BULK_ROWS:
            conn.execute(sa.text(f"ANALYZE {name}"))
            conn.info["analysed_at_rows"][name] = rows
    if scope_table and scope_rows >= BULK_ROWS:
        conn.execute(sa.text(f"ANALYZE {scope_table}"))


def bulk_insert(conn: sa.Connection, table: str, frame: pd.DataFrame) -> int:
    """Append a DataFrame to `table` by column name, the fast native way for each engine.

    DuckDB reads the frame directly (about 50x faster than executemany); PostgreSQL gets COPY.
    `table` is a name from our own schema, never user input.
    """
    if frame.empty:
        return 0
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    if conn.dialect.name == "duckdb":
        raw = conn.connection.driver_connection
        view = f"_bulk_{threading.get_ident()}"
        raw.register(view, frame)
        try:
            raw.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {view}")  # noqa: S608
        finally:
            raw.unregister(view)
    elif conn.dialect.name == "postgresql":
        buf = io.StringIO()
        frame.to_csv(buf, index=False, header=False)
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buf.getvalue())
    else:
        frame.to_sql(table, conn, if_exists="append", index=False)
    return len(frame)


_LOCK_PID = re.compile(r"PID (\d+)")


def open_store(url_or_path: str | None = None) -> Store:
    """Open the store (default: settings) and check it is usable; the schema is left as it is
    (`analytics.migrations.connect` also brings it up to date).

    Raises `StoreLocked` when another process holds the DuckDB file.
    """
    url = database_url(url_or_path) if url_or_path else load_settings().db_url
    if url.startswith("duckdb:///"):
        path = url.removeprefix("duckdb:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        store.engine.dispose()  # never opened: nothing to checkpoint
        message = str(exc.orig or exc)
        if "Could not set lock" in message or "Conflicting lock" in message:
            pid = _LOCK_PID.search(message)
            raise StoreLocked(store.path or url, int(pid.group(1)) if pid else None) from None
        raise StoreError(f"Could not open the store {url}: {message.splitlines()[0]}") from None
    return store
