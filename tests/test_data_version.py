"""Cache keys: every write moves `data_version`; only writes that can move a figure move `figures_version`."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from analytics.access import audit
from analytics.access.roles import SYSTEM, Actor
from analytics.access.sign_in import attempt_sign_in
from analytics.access.users import add_user
from analytics.collections.followups import add_note, log_call, reassign
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.store.connection import Store
from analytics.store.data_version import data_version, figures_version
from tests.collector_data import add_customer, add_invoice, setup_people

T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")
INVOICES = Mapping(dataset="invoices", columns={
    "customer_id": "cust", "document_number": "doc", "posting_date": "date", "due_date": "due",
    "amount": "amount", "currency": "ccy"})


def test_sign_ins_accounts_and_the_timeline_leave_the_figures_version_alone(store: Store, tmp_path: Path) -> None:
    setup_people(store)
    add_customer(store, "C1")
    add_invoice(store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 1000)
    figures, everything = figures_version(store), data_version(store)

    add_user(store, SYSTEM, "cfo", "Carla CFO", "cfo", password="a-long-password-1")
    attempt_sign_in(store, "cfo", "a-long-password-1")
    attempt_sign_in(store, "cfo", "wrong")
    log_call(store, ANA, "C1", "reached", "will pay Friday")
    add_note(store, ANA, "C1", "asked for a copy of the invoice")
    assert data_version(store) > everything  # each of those writes was audited ...
    assert figures_version(store) == figures  # ... and none moves a ledger figure

    reassign(store, SYSTEM, "C1", "ben.collector", "holiday cover")  # aging by collector moves
    after_reassign = figures_version(store)
    assert after_reassign > figures
    log_call(store, ANA, "C1", "no answer")
    assert figures_version(store) == after_reassign

    (tmp_path / "i.csv").write_text("cust,doc,date,due,amount,ccy\nC1,INV-9,2024-01-05,2024-02-04,100.00,USD\n")
    run_import(store, tmp_path / "i.csv", INVOICES, SYSTEM)
    assert figures_version(store) > after_reassign


def test_figures_version_starts_over_when_the_log_is_reset(store: Store) -> None:
    setup_people(store)
    add_customer(store, "C1")
    reassign(store, SYSTEM, "C1", "ben.collector")
    before = figures_version(store)
    assert 0 < before <= data_version(store)  # the reassignment also writes a timeline entry
    with store.write() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log")
    assert figures_version(store) == 0


@pytest.mark.postgres
def test_a_write_committed_after_a_newer_one_still_moves_both_versions(pg_store: Store) -> None:
    """Two processes on PostgreSQL: the audit id comes from a sequence when the line is written, so
    the older transaction (lower id) can commit last. Keyed on the newest id alone, a cache read
    between the two commits would keep its stale figures after the late commit."""
    versions = []
    with pg_store.engine.connect() as slow:  # an import still running in another process
        with slow.begin():
            late = audit.record(slow, SYSTEM, "import.run", "import", "slow")
            with pg_store.write() as fast:  # meanwhile another process commits its import
                early = audit.record(fast, SYSTEM, "import.run", "import", "fast")
            versions.append((data_version(pg_store), figures_version(pg_store)))
        # the slow one commits now, below the newest id
    versions.append((data_version(pg_store), figures_version(pg_store)))
    assert late < early
    (data_before, figures_before), (data_after, figures_after) = versions
    assert data_after > data_before
    assert figures_after > figures_before
    with pg_store.write() as conn:  # a sign-in's line moves the data version only
        audit.record(conn, SYSTEM, "user.sign_in", "user", "ana")
    assert data_version(pg_store) > data_after
    assert figures_version(pg_store) == figures_after
