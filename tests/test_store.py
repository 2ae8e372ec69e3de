"""The store: parameterised reads, atomic serialised writes, plain errors for a locked file."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.migrations import connect
from analytics.store.connection import Store, bulk_insert
from analytics.store.ids import reserve_ids
from analytics.store.schema import ENTRY_IDS, customers


def _customer(cid: str) -> dict:
    return {"customer_id": cid, "name": f"Customer {cid}", "segment": "enterprise", "currency": "USD",
            "payment_terms_days": 30, "created_at": pd.Timestamp("2026-01-01")}


def test_read_binds_parameters_and_returns_frames(store: Store) -> None:
    frame = store.read("SELECT CAST(:d AS DATE) - CAST(:e AS DATE) AS days, :name AS name",
                       {"d": date(2024, 3, 1), "e": date(2024, 2, 1), "name": "O'Brien; DROP TABLE x"})
    assert frame.to_dict("records") == [{"days": 29, "name": "O'Brien; DROP TABLE x"}]


def test_read_expands_in_lists_of_core_statements(store: Store) -> None:
    with store.write() as conn:
        bulk_insert(conn, "customers", pd.DataFrame([_customer(c) for c in ("A", "B", "C")]))
    stmt = (sa.select(customers.c.customer_id).where(customers.c.customer_id.in_(["A", "C"]))
            .order_by(customers.c.customer_id))
    assert store.read(stmt).customer_id.tolist() == ["A", "C"]


def test_failed_write_rolls_back_everything(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        with store.write() as conn:
            conn.execute(customers.insert().values(**_customer("A")))
            conn.execute(customers.insert().values(**_customer("A")))  # duplicate key
    assert store.scalar("SELECT COUNT(*) FROM customers") == 0


def test_bulk_insert_after_reserve_ids_in_one_transaction(store: Store) -> None:
    frame = pd.DataFrame([_customer(f"C{i}") for i in range(1000)])
    with store.write() as conn:
        assert reserve_ids(conn, ENTRY_IDS, 1) == 1
        assert bulk_insert(conn, "customers", frame) == 1000
        assert reserve_ids(conn, ENTRY_IDS, 10) == 2
        assert reserve_ids(conn, ENTRY_IDS, 1) == 12
    assert store.scalar("SELECT COUNT(*) FROM customers") == 1000


def test_concurrent_writers_from_threads_all_persist(store: Store) -> None:
    """Two (here eight) sessions saving at once queue on the write lock; nothing is lost."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                with store.write() as conn:
                    conn.execute(customers.insert().values(**_customer(f"T{n}-{i}")))
                    conn.execute(customers.update().where(customers.c.customer_id == f"T{n}-{i}")
                                 .values(name="updated"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.read("SELECT name, COUNT(*) AS n FROM customers GROUP BY name").to_dict("records") == [
        {"name": "updated", "n": 200}]


@pytest.mark.duckdb_only  # the DuckDB file's lock / the app's inbox
def test_second_process_gets_a_plain_locked_message(store: Store, tmp_path) -> None:
    code = (
        "from analytics.migrations import connect\nfrom analytics.store.connection import StoreLocked\n"
        f"try:\n    connect({str(tmp_path / 'ardesk.duckdb')!r})\n"
        "except StoreLocked as e:\n    print('LOCKED', e.pid, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("LOCKED "), out.stderr
    assert "in use by process" in out.stdout and "Traceback" not in out.stdout + out.stderr


@pytest.mark.duckdb_only  # the DuckDB file's lock / the app's inbox
def test_cli_reports_a_locked_store_without_traceback(store: Store, tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "analytics.cli", "--db", str(tmp_path / "ardesk.duckdb"), "db", "info"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("ardesk: The store ") and "Traceback" not in out.stderr


def test_unopenable_store_is_a_plain_error(tmp_path) -> None:
    bad = tmp_path / "not-a-db.duckdb"
    bad.write_text("this is not a database file")
    with pytest.raises(Exception) as info:
        connect(str(bad))
    assert type(info.value).__name__ in {"StoreError", "StoreLocked"}
    assert "Could not open the store" in str(info.value)


@pytest.mark.postgres
def test_a_postgres_store_has_the_report_indexes_and_sessions_without_jit(pg_store: Store) -> None:
    """The covering indexes of `schema.POSTGRES_INDEXES` exist on a fresh store, and report sessions
    run without JIT and with 64MB for hash aggregates (`connection.POSTGRES_SESSION`)."""
    from analytics.store.schema import POSTGRES_INDEXES

    names = set(pg_store.read("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")["indexname"])
    assert {index.name for index in POSTGRES_INDEXES} <= names
    assert pg_store.read("SELECT current_setting('jit') AS jit, current_setting('work_mem') AS work_mem"
                         ).to_dict("records") == [{"jit": "off", "work_mem": "64MB"}]


@pytest.mark.postgres
def test_a_bulk_write_refreshes_postgresqls_statistics_inside_its_transaction(pg_store: Store) -> None:
    """After 10,000 rows written in one transaction, `refresh_statistics` gives the planner their count before
    commit (autovacuum would only after it); below the threshold it leaves the statistics alone."""
    import pandas as pd

    from analytics.store.connection import BULK_ROWS, bulk_insert, refresh_statistics

    def rows(n: int, start: int) -> pd.DataFrame:
        return pd.DataFrame({"entry_id": range(start, start + n), "customer_id": "C1", "entry_type": "invoice",
                             "document_number": [f"INV-{i}" for i in range(start, start + n)],
                             "posting_date": "2024-01-01", "due_date": "2024-01-31", "amount": 10.0, "currency": "USD"})

    planner_rows = "SELECT reltuples FROM pg_class WHERE relname = 'ledger_entries'"
    with pg_store.write() as conn:
        conn.execute(sa.text("INSERT INTO customers (customer_id, name, segment, currency, created_at) VALUES ('C1', 'One', 'SMB', 'USD', now())"))
        bulk_insert(conn, "ledger_entries", rows(BULK_ROWS - 1, 1))
        refresh_statistics(conn)
        assert conn.execute(sa.text(planner_rows)).scalar() <= 0  # never analysed: PostgreSQL's -1 (or 0)
        bulk_insert(conn, "ledger_entries", rows(1, BULK_ROWS))
        refresh_statistics(conn)
        assert conn.execute(sa.text(planner_rows)).scalar() == BULK_ROWS
