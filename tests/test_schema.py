"""Schema versions: a store written by the previous version upgrades in place, losing nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from analytics import migrations
from analytics.migrations import connect
from analytics.store import schema

V1_SQL = Path(__file__).parent / "fixtures" / "store_v1.sql"

COLUMNS_SQL = (
    "SELECT table_name, column_name, data_type FROM information_schema.columns "
    "WHERE table_schema = 'main' ORDER BY table_name, column_name"
)


def _v1_store(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute(V1_SQL.read_text())
    con.close()
    return path


def test_v1_store_upgrades_in_place_with_nothing_lost(tmp_path: Path) -> None:
    path = _v1_store(tmp_path / "old.duckdb")
    con = duckdb.connect(str(path))
    before = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()  # noqa: S608
              for t in ("users", "customers", "contacts", "ledger_entries", "allocations", "activities",
                        "audit_log", "fx_rates")}
    con.close()

    store = connect(str(path))
    assert migrations.current_version(store) == migrations.SCHEMA_VERSION
    assert store.read("SELECT version FROM schema_migrations ORDER BY version").version.tolist() == [
        1, *(version for version, _, _ in migrations.MIGRATIONS)]  # every migration, in order (numbers may skip)
    for table, rows in before.items():
        after = [row[: len(rows[0])] for row in store.read(f"SELECT * FROM {table}")  # noqa: S608
                 .itertuples(index=False)] if rows else []
        assert len(after) == len(rows), table
    assert store.read("SELECT customer_id, name, credit_limit, risk_class FROM customers").to_dict("records") == [
        {"customer_id": "C1", "name": "Acme Tools", "credit_limit": 50000.0, "risk_class": None}]
    assert store.read("SELECT document_number, amount FROM ledger_entries ORDER BY entry_id").to_dict("records") == [
        {"document_number": "INV-1", "amount": 1200.5}, {"document_number": "PAY-1", "amount": -1000.0}]

    # New tables work, including their sequences, and old sequences continue where they were.
    with store.write() as conn:
        conn.execute(schema.messages.insert().values(
            idempotency_key="k1", customer_id="C1", to_address="ap@acme.example", subject="s", body="b",
            status="queued", created_by="ana.collector", created_at="2026-03-01 10:00:00"))
        conn.execute(schema.activities.insert().values(
            customer_id="C1", kind="note", occurred_at="2026-03-01 10:00:00", author="ana.collector"))
    assert store.read("SELECT activity_id FROM activities ORDER BY activity_id").activity_id.tolist() == [1, 2]
    assert store.scalar("SELECT message_id FROM messages") == 1


def test_upgraded_store_has_exactly_the_fresh_schema(tmp_path: Path) -> None:
    upgraded = connect(str(_v1_store(tmp_path / "old.duckdb")))
    fresh = connect(str(tmp_path / "fresh.duckdb"))
    assert upgraded.read(COLUMNS_SQL).to_dict("records") == fresh.read(COLUMNS_SQL).to_dict("records")


def test_upgrade_is_idempotent_and_refuses_a_newer_store(tmp_path: Path) -> None:
    store = connect(str(tmp_path / "s.duckdb"))
    assert migrations.upgrade(store) == migrations.SCHEMA_VERSION  # nothing left to do
    with store.write() as conn:
        conn.execute(schema.schema_migrations.insert().values(
            version=migrations.SCHEMA_VERSION + 1, description="from the future", applied_at="2030-01-01"))
    with pytest.raises(RuntimeError, match="newer than this AR Desk"):
        migrations.upgrade(store)
