"""Automatic dunning against a real SMTP server: what is due goes out once, the rest stays for people."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.collections.automatic_dunning import automatic_sends_due, run_automatic_dunning, run_daily
from analytics.collections.followups import open_dispute, promise_to_pay
from analytics.ingest.inbox import Folders, pending_jobs
from analytics.migrations import connect
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people
from tests.conftest import run_app_watcher

T = date.today()
ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    (1, "Friendly reminder", 1, "email", "reminder_friendly"),
    (2, "Firm reminder", 15, "email", "reminder_firm"),
    (3, "Reminder letter", 30, "letter", "reminder_letter"),
    (4, "Call", 45, "call", None, "manual"),
]


@pytest.fixture
def books(store: Store) -> Store:
    return _books(store)


def _books(store: Store) -> Store:
    setup_people(store)
    add_dunning_config(store, stages=STAGES, mode="automatic")
    add_customer(store, "C1")
    add_invoice(store, "C1", "INV-1a", T - timedelta(days=40), T - timedelta(days=10), 300)
    add_invoice(store, "C1", "INV-1b", T - timedelta(days=35), T - timedelta(days=5), 200)
    add_customer(store, "C2")
    add_invoice(store, "C2", "INV-2", T - timedelta(days=50), T - timedelta(days=20), 800)  # starts at stage 1: one stage per run
    add_customer(store, "C3")
    add_invoice(store, "C3", "INV-3", T - timedelta(days=70), T - timedelta(days=40), 900)  # stage 1 too (the letter comes later)
    add_customer(store, "C4", contact=None)
    add_invoice(store, "C4", "INV-4", T - timedelta(days=40), T - timedelta(days=10), 400)  # nobody to email
    add_customer(store, "C5")
    add_invoice(store, "C5", "INV-5", T - timedelta(days=20), T + timedelta(days=10), 100)  # not due yet
    return store


def _runs(store: Store) -> list[dict]:
    return store.read("""SELECT e.document_number, r.stage_no FROM dunning_runs r
        JOIN ledger_entries e ON e.entry_id = r.entry_id ORDER BY 1""").to_dict("records")


def test_due_emails_go_out_once_per_customer_and_template(books: Store, smtp) -> None:
    handler, config = smtp
    assert automatic_sends_due(books, T)[["customer_id", "template", "invoices"]].to_dict("records") == [
        {"customer_id": "C1", "template": "reminder_friendly", "invoices": 2},
        {"customer_id": "C2", "template": "reminder_friendly", "invoices": 1},
        {"customer_id": "C3", "template": "reminder_friendly", "invoices": 1},
        {"customer_id": "C4", "template": "reminder_friendly", "invoices": 1}]

    dry = run_automatic_dunning(books, SYSTEM, T, dry_run=True, config=config)
    assert set(dry["status"]) == {"would send"} and len(dry) == 4
    assert handler.messages == [] and _runs(books) == []

    done = run_automatic_dunning(books, SYSTEM, T, config=config)
    assert done[["customer_id", "status"]].to_dict("records") == [
        {"customer_id": "C1", "status": "sent"}, {"customer_id": "C2", "status": "sent"},
        {"customer_id": "C3", "status": "sent"}, {"customer_id": "C4", "status": "not queued"}]
    assert sorted((m["To"], m["Subject"].split(":")[0]) for m in handler.messages) == [
        ("ap@c1.example", "Friendly reminder"), ("ap@c2.example", "Friendly reminder"),
        ("ap@c3.example", "Friendly reminder")]
    assert _runs(books) == [{"document_number": "INV-1a", "stage_no": 1}, {"document_number": "INV-1b", "stage_no": 1},
                            {"document_number": "INV-2", "stage_no": 1}, {"document_number": "INV-3", "stage_no": 1}]

    again = run_automatic_dunning(books, SYSTEM, T, config=config)  # the same day, e.g. a second cron
    assert len(handler.messages) == 3 and len(_runs(books)) == 4
    assert again[["customer_id", "status"]].to_dict("records") == [{"customer_id": "C4", "status": "not queued"}]
    assert books.read("SELECT entity_id FROM audit_log WHERE action = 'dunning.run'")["entity_id"].tolist() == [
        T.isoformat(), T.isoformat()]


def test_a_paused_promise_and_a_one_invoice_dispute_leave_only_their_invoices_out(books: Store, smtp) -> None:
    handler, config = smtp
    promise_to_pay(books, Actor("ana.collector", "collector"), "C1", 300, T + timedelta(days=2), entry_ids=[1])
    open_dispute(books, Actor("ana.collector", "collector"), "C2", "Price", None, "sales", entry_ids=[3])
    due = automatic_sends_due(books, T)
    assert due[["customer_id", "template", "entry_ids"]].to_dict("records") == [
        {"customer_id": "C1", "template": "reminder_friendly", "entry_ids": [2]},  # INV-1a paused, INV-1b goes
        {"customer_id": "C3", "template": "reminder_friendly", "entry_ids": [4]},
        {"customer_id": "C4", "template": "reminder_friendly", "entry_ids": [5]}]
    run_automatic_dunning(books, SYSTEM, T, config=config)
    [mail] = [m for m in handler.messages if m["To"] == "ap@c1.example"]
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "INV-1b" in body and "INV-1a" not in body  # the email lists only the invoice due for the stage
    assert _runs(books) == [{"document_number": "INV-1b", "stage_no": 1}, {"document_number": "INV-3", "stage_no": 1}]
    # the day after the promised date, unpaid: broken, and INV-1a is due again at once
    later = automatic_sends_due(books, T + timedelta(days=3))
    assert later[later["customer_id"] == "C1"][["template", "entry_ids"]].to_dict("records") == [
        {"template": "reminder_friendly", "entry_ids": [1]}]


def test_only_roles_that_act_on_customers_may_run_it(books: Store) -> None:
    with pytest.raises(PermissionDenied):
        run_automatic_dunning(books, Actor("val.viewer", "viewer"), T)
    assert books.scalar("SELECT COUNT(*) FROM messages") == 0


def test_the_daily_job_runs_once_after_its_time(books: Store, smtp) -> None:
    handler, config = smtp
    seven = datetime.strptime("07:00", "%H:%M").time()
    morning = datetime.combine(T, seven)
    assert run_daily(books, morning - timedelta(minutes=1), seven, config) is None
    assert run_daily(books, morning + timedelta(minutes=5), None, config) is None  # switched off by default
    assert len(run_daily(books, morning + timedelta(minutes=5), seven, config)) == 4
    assert run_daily(books, morning + timedelta(hours=3), seven, config) is None  # done today
    assert len(handler.messages) == 3


@pytest.mark.postgres
def test_two_app_instances_run_the_daily_job_once(pg_store: Store, smtp) -> None:
    """Both instances' inbox threads find the day not run yet, at once: one runs it, the other
    waits on the dunning-runs lock, then finds it done (without the second check: two runs)."""
    handler, config = smtp
    _books(pg_store)
    seven = datetime.strptime("07:00", "%H:%M").time()
    morning = datetime.combine(T, seven) + timedelta(minutes=5)
    instances = [connect(pg_store.url) for _ in range(2)]  # each app process has its own engine
    start = threading.Barrier(2)

    def daily(store: Store):
        start.wait()
        return run_daily(store, morning, seven, config)

    try:
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(daily, instances))
    finally:
        for store in instances:
            store.close()
    assert sorted(o is None for o in outcomes) == [False, True]
    assert len(next(o for o in outcomes if o is not None)) == 4
    assert pg_store.read("SELECT entity_id FROM audit_log WHERE action = 'dunning.run'")["entity_id"].tolist() == [
        T.isoformat()]
    assert len(handler.messages) == 3


@pytest.mark.duckdb_only  # the DuckDB file's lock / the app's inbox
@pytest.mark.slow
def test_cli_queues_the_run_for_the_app_when_it_owns_the_store(books: Store, smtp, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    handler, config = smtp
    env = {**os.environ, "ARDESK_DB": str(tmp_path / "ardesk.duckdb")}
    env.pop("ARDESK_INBOX", None)
    out = subprocess.run([sys.executable, "-m", "analytics.cli", "dunning", "run", "--as-of", T.isoformat()],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert "queued for it" in out.stdout and "Traceback" not in out.stderr
    folders = Folders(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", tmp_path / "quarantine")
    assert len(pending_jobs(folders.inbox)) == 1
    monkeypatch.setenv("ARDESK_OUTREACH_MODE", "smtp")  # the app's own delivery settings, here the test server
    monkeypatch.setenv("ARDESK_SMTP_HOST", config.smtp_host)
    monkeypatch.setenv("ARDESK_SMTP_PORT", str(config.smtp_port))
    run_app_watcher(books, folders.inbox)
    assert len(handler.messages) == 3
    [result] = folders.done.glob("*.result.csv")
    assert sorted(result.read_text().splitlines()[1:])[0].startswith("C1,reminder_friendly,2,")


def test_a_policy_with_interest_and_a_fee_shows_them_and_books_them_only_when_it_says_so(books: Store, smtp) -> None:
    """INV-1a (300, 10 days late) and INV-1b (200, 5 days late) of C1 reach the firm reminder... no: the
    friendly one; at 10 % a year: 300 × 0.10 / 365 × 10 = 0.82 and 200 × 0.10 / 365 × 5 = 0.27,
    plus a fee of 15 per customer email. Shown by default; booked once when book_fees is on."""
    handler, config = smtp
    with books.write() as conn:
        conn.execute(sa.text("UPDATE dunning_configs SET interest_rate = 0.10"))
        conn.execute(sa.text("UPDATE dunning_stages SET fee = 15 WHERE stage_no = 1"))
    open_ar = float(books.scalar("SELECT SUM(amount) FROM ledger_entries"))
    out = run_automatic_dunning(books, SYSTEM, T, config=config)
    assert set(out.loc[out.status == "sent", "customer_id"]) == {"C1", "C2", "C3"}
    body = next(m for m in handler.messages if "INV-1a" in m.get_body(("plain",)).get_content())
    text = " ".join(body.get_body(("plain",)).get_content().split())
    assert "interest at 10.00 % a year: 1.09 USD; dunning fee: 15.00 USD; with them: 516.09 USD" in text
    assert float(books.scalar("SELECT SUM(amount) FROM ledger_entries")) == open_ar  # shown, not booked

    with books.write() as conn:
        conn.execute(sa.text("UPDATE dunning_configs SET book_fees = TRUE"))
        conn.execute(sa.text("DELETE FROM dunning_runs"))
        conn.execute(sa.text("DELETE FROM messages"))
        conn.execute(sa.text("DELETE FROM activities WHERE kind = 'email'"))  # the same day's send, undone
    for _ in range(2):  # the same day again books nothing more
        run_automatic_dunning(books, SYSTEM, T, config=config)
    booked = books.read("SELECT customer_id, SUM(amount) AS amount FROM ledger_entries "
                        "WHERE entry_type = 'adjustment' GROUP BY customer_id ORDER BY 1")
    # C1: 0.82 + 0.27 + 15; C2: 800 × 0.10 / 365 × 20 = 4.38, + 15; C3: 900 × 0.10 / 365 × 40 = 9.86, + 15
    assert dict(zip(booked.customer_id, booked.amount.astype(float).round(2), strict=True)) == {
        "C1": 16.09, "C2": 19.38, "C3": 24.86}
