"""`ardesk followup ...` and `ardesk outreach send`: the Customer 360 panels' writes from a script.

The same engine functions as the panels, so the same role checks, validation, idempotency and
audit; `--as USER` must be an active account; when the app owns the DuckDB store the command is
queued as a signed inbox job that the app runs once, even when the inbox is ingested twice.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from analytics.access.roles import SYSTEM
from analytics.access.users import set_active
from analytics.cli.main import main
from analytics.ingest.inbox import Folders, ingest_pending, pending_jobs
from analytics.migrations import connect
from analytics.store.connection import Store, StoreLocked
from tests.collector_data import add_customer, add_invoice, add_payment, overdue_customers, setup_people

T = date.today()


def _rows(store: Store, sql: str) -> list[dict]:
    frame = store.read(sql).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


@pytest.fixture
def books(tmp_path: Path) -> Path:
    """C1 (ana.collector's) with invoice INV-1 of 1,000.00 and C2 with INV-2 of 500.00; a closed file."""
    db = tmp_path / "ardesk.duckdb"
    store = connect(str(db))
    setup_people(store)
    add_customer(store, "C1")
    add_customer(store, "C2", collector="ben.collector")
    add_invoice(store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 1000)
    add_invoice(store, "C2", "INV-2", T - timedelta(days=40), T - timedelta(days=10), 500)
    store.close()
    return db


def ardesk(db: Path, *args: str) -> int:
    return main(["--db", str(db), *args])


def _json(capsys) -> list[dict]:
    return json.loads(capsys.readouterr().out)


def test_each_followup_lands_on_the_timeline_as_the_named_user_and_is_audited(books: Path, capsys) -> None:
    as_ana = ("--as", "ana.collector", "--format", "json")
    assert ardesk(books, "followup", "call", "C1", "--outcome", "reached", "--note", "Pays Friday", *as_ana) == 0
    [call] = _json(capsys)
    assert (call["action"], call["customer_id"], call["repeated"]) == ("call", "C1", False)
    assert call["key"].startswith("cli-")
    assert ardesk(books, "followup", "promise", "C1", "--amount", "600.50", "--date", str(T + timedelta(days=5)),
                  "--invoice", "INV-1", *as_ana) == 0
    promise = _json(capsys)[0]["activity_id"]
    assert ardesk(books, "followup", "dispute", "C1", "--reason", "Damaged goods", "--amount", "200",
                  "--department", "logistics", "--invoice", "INV-1", *as_ana) == 0
    dispute = _json(capsys)[0]["activity_id"]
    assert ardesk(books, "followup", "resolve", "C1", str(dispute), "--resolution", "resolved",
                  "--note", "Credit note issued", *as_ana) == 0
    capsys.readouterr()
    assert ardesk(books, "followup", "task", "C1", "--subject", "Send copy invoice", "--due",
                  str(T + timedelta(days=2)), *as_ana) == 0
    task = _json(capsys)[0]["activity_id"]
    assert ardesk(books, "followup", "note", "C1", "Changed AP system", "--as", "sam.sales") == 0
    assert ardesk(books, "followup", "escalate", "C1", "--to", "agency", "--reason", "No answer in 90 days",
                  *as_ana) == 0
    capsys.readouterr()
    assert ardesk(books, "followup", "done", str(task), *as_ana) == 0
    assert _json(capsys)[0] == {"action": "done", "task_id": task, "changed": True}

    store = connect(str(books))
    try:
        got = _rows(store, "SELECT activity_id, kind, author, outcome, amount, entry_id, department, status, target "
                           "FROM activities ORDER BY activity_id")
        assert [(r["kind"], r["author"]) for r in got] == [
            ("call", "ana.collector"), ("promise", "ana.collector"), ("dispute", "ana.collector"),
            ("note", "ana.collector"), ("task", "ana.collector"), ("note", "sam.sales"),
            ("escalation", "ana.collector")]
        by_id = {r["activity_id"]: r for r in got}
        assert (float(by_id[promise]["amount"]), by_id[promise]["entry_id"], by_id[promise]["status"]) == (600.5, 1,
                                                                                                           "pending")
        assert (by_id[dispute]["status"], by_id[dispute]["department"], by_id[dispute]["entry_id"]) == (
            "resolved", "logistics", 1)
        assert by_id[task]["status"] == "done"
        assert store.scalar("SELECT status FROM customers WHERE customer_id = 'C1'") == "with_agency"
        audited = _rows(store, "SELECT actor, action FROM audit_log WHERE action NOT LIKE 'user.%' ORDER BY audit_id")
        assert [a["action"] for a in audited] == [
            "activity.call", "activity.promise", "activity.dispute", "dispute.resolve", "activity.note",
            "activity.task", "activity.note", "customer.status", "activity.escalation", "task.complete"]
        assert {a["actor"] for a in audited} == {"ana.collector", "sam.sales"}
    finally:
        store.close()


def test_the_same_key_writes_once_and_a_key_of_another_kind_is_refused(books: Path, capsys) -> None:
    args = ("followup", "call", "C1", "--outcome", "no answer", "--as", "ana.collector", "--key", "dialer-77",
            "--format", "json")
    assert ardesk(books, *args) == 0
    first = _json(capsys)[0]
    assert ardesk(books, *args) == 0
    again = _json(capsys)[0]
    assert (again["activity_id"], again["repeated"], first["repeated"]) == (first["activity_id"], True, False)
    assert ardesk(books, "followup", "call", "C1", "--outcome", "no answer", "--as", "ana.collector") == 0  # no key
    assert ardesk(books, "followup", "note", "C1", "x", "--as", "ana.collector", "--key", "dialer-77") == 2
    assert ("idempotency key 'dialer-77': already used by activity 1 (a call), not a note"
            in capsys.readouterr().err)
    store = connect(str(books))
    try:
        assert store.scalar("SELECT COUNT(*) FROM activities") == 2  # the keyed call once, the unkeyed one
        assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'activity.call'") == 2
    finally:
        store.close()


@pytest.mark.parametrize("args, message", [
    (("call", "C1", "--outcome", "reached", "--as", "nobody"), "'nobody' is not a user of this store"),
    (("call", "C1", "--outcome", "reached", "--as", "val.viewer"), "val.viewer (Viewer) may not act on customers"),
    (("note", "C1", "hello", "--as", "val.viewer"), "val.viewer (Viewer) may not add notes"),
    (("call", "C1", "--outcome", "reached", "--as", "sam.sales"), "sam.sales (Sales) may not act on customers"),
    (("call", "C9", "--outcome", "reached", "--as", "ana.collector"), "customer_id 'C9': there is no such customer"),
    (("promise", "C1", "--amount", "10", "--date", str(T), "--invoice", "INV-2", "--as", "ana.collector"),
     "invoice 'INV-2': C1 has no invoice with that document number"),
    (("promise", "C1", "--amount", "0", "--date", str(T), "--as", "ana.collector"), "amount 0.0: must be greater than 0"),
    (("task", "C1", "--subject", "x", "--due", str(T - timedelta(days=1)), "--as", "ana.collector"),
     f"due date {T - timedelta(days=1)}: must not be before {T}"),
    (("resolve", "C2", "1", "--resolution", "resolved", "--as", "ana.collector"), "dispute 1: there is no such dispute"),
])
def test_bad_input_or_a_forbidden_user_writes_nothing_and_says_why(books: Path, capsys, args, message) -> None:
    assert ardesk(books, "followup", *args) == 2
    assert message in capsys.readouterr().err
    store = connect(str(books))
    try:
        assert store.scalar("SELECT COUNT(*) FROM activities") == 0
        assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE action NOT LIKE 'user.%'") == 0
    finally:
        store.close()


def test_a_disabled_user_and_a_dispute_of_another_customer_are_refused(books: Path, capsys) -> None:
    assert ardesk(books, "followup", "dispute", "C2", "--reason", "Price", "--amount", "50", "--department", "sales",
                  "--whole-account", "--as", "ben.collector", "--format", "json") == 0
    dispute = _json(capsys)[0]["activity_id"]
    assert ardesk(books, "followup", "resolve", "C1", str(dispute), "--resolution", "rejected",
                  "--as", "ana.collector") == 2
    assert f"dispute {dispute}: it is a dispute of C2, not C1." in capsys.readouterr().err
    store = connect(str(books))
    set_active(store, SYSTEM, "ben.collector", False)
    store.close()
    assert ardesk(books, "followup", "call", "C2", "--outcome", "reached", "--as", "ben.collector") == 2
    assert "The account of ben.collector is disabled" in capsys.readouterr().err


def test_an_amount_with_more_than_cents_is_refused_by_the_parser(books: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        ardesk(books, "followup", "promise", "C1", "--amount", "10.005", "--date", str(T), "--as", "ana.collector")
    assert stop.value.code == 2
    assert "'10.005': an amount has at most two decimals (cents)" in capsys.readouterr().err


def _app_owns_the_store(monkeypatch: pytest.MonkeyPatch, db: Path) -> None:
    """As when the running app holds the DuckDB file: the command line cannot open it."""
    import analytics.cli.followup as cli

    def locked(_db=None):  # noqa: ANN001, ANN202
        raise StoreLocked(str(db), 4242)

    monkeypatch.setattr(cli, "connect", locked)


def test_while_the_app_owns_the_store_a_followup_is_queued_and_recorded_once(
        books: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("ARDESK_INBOX", raising=False)
    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)
    _app_owns_the_store(monkeypatch, books)
    folders = Folders(books.parent / "inbox", books.parent / "done", books.parent / "failed",
                      books.parent / "quarantine")
    assert ardesk(books, "followup", "promise", "C1", "--amount", "250", "--date", str(T + timedelta(days=3)),
                  "--invoice", "INV-1", "--as", "ana.collector", "--key", "dialer-9") == 0
    assert "owns the store" in capsys.readouterr().out
    assert ardesk(books, "followup", "note", "C1", "Queued note", "--as", "val.viewer") == 0  # refused when run
    jobs = {json.loads(p.read_text())["action"]: p for p in pending_jobs(folders.inbox)}  # same second: any order
    job, refused_job = jobs["promise"], jobs["note"]
    queued = json.loads(job.read_text())
    assert (queued["kind"], queued["action"], queued["actor"]["username"]) == ("action", "promise", "ana.collector")
    assert queued["arguments"]["key"] == "dialer-9" and queued["signature"].startswith("hmac-sha256:")
    assert ardesk(books, "followup", "promise", "C1", "--amount", "250", "--date", str(T + timedelta(days=3)),
                  "--invoice", "INV-1", "--as", "ana.collector", "--key", "dialer-9") == 0
    assert len(pending_jobs(folders.inbox)) == 2  # the identical waiting job is reused
    copy = shutil.copy(job, books.parent / "copy.job.json")

    store = connect(str(books))  # the app's process
    try:
        ingest_pending(store, folders)
        shutil.copy(copy, job)  # a crash between commit and moving the job: it runs again
        ingest_pending(store, folders)
        ingest_pending(store, folders)
        got = _rows(store, "SELECT kind, author, amount, entry_id, idempotency_key FROM activities")
        assert got == [{"kind": "promise", "author": "ana.collector", "amount": 250.0, "entry_id": 1,
                        "idempotency_key": "dialer-9"}]
        assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'activity.promise'") == 1
    finally:
        store.close()
    result = json.loads((folders.done / job.name.replace(".job.json", ".result.json")).read_text())
    assert (result["action"], result["activity_id"]) == ("promise", 1)
    assert "val.viewer (Viewer) may not add notes" in (folders.failed / f"{refused_job.name}.error.txt").read_text()


def test_outreach_send_delivers_once_per_key_with_the_panels_rechecks(
        tmp_path: Path, smtp, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    handler, config = smtp
    monkeypatch.setenv("ARDESK_OUTREACH_MODE", "smtp")
    monkeypatch.setenv("ARDESK_SMTP_HOST", config.smtp_host)
    monkeypatch.setenv("ARDESK_SMTP_PORT", str(config.smtp_port))
    db = tmp_path / "ardesk.duckdb"
    store = connect(str(db))
    overdue_customers(store, 2, T)
    store.close()
    send = ("outreach", "send", "--template", "reminder_friendly", "--customer", "C001", "--as-of", str(T),
            "--as", "ana.collector", "--key", "crm-1", "--format", "json")
    assert ardesk(db, *send) == 0
    [sent] = _json(capsys)
    assert (sent["customer_id"], sent["status"]) == ("C001", "sent")
    assert ardesk(db, *send) == 0  # the same key: the same message, not sent again
    assert _json(capsys)[0]["message_id"] == sent["message_id"]
    assert [m["To"] for m in handler.messages] == ["ap@c001.example"]
    assert handler.messages[0]["Subject"] == "Friendly reminder: 1 open invoice for Acme 001"

    assert ardesk(db, "outreach", "send", "--template", "reminder_friendly", "--customer", "C002",
                  "--as", "sam.sales") == 2
    assert "sam.sales (Sales) may not act on customers" in capsys.readouterr().err
    store = connect(str(db))
    try:  # a paid invoice is re-checked before sending, as on the panel
        add_payment(store, "C002", "PAY-2", T, 1002, invoice_id=2)
    finally:
        store.close()
    assert ardesk(db, "outreach", "send", "--template", "reminder_friendly", "--customer", "C002",
                  "--as-of", str(T), "--as", "ana.collector", "--format", "json") == 1
    assert _json(capsys) == [{"action": "send", "customer_id": "C002", "message_id": None, "status": "not queued",
                              "reason": "no invoices past due (open, not disputed, not paused by a promise)"}]
    assert len(handler.messages) == 1
    store = connect(str(db))
    try:
        assert store.read("SELECT customer_id, status FROM messages").values.tolist() == [["C001", "sent"]]
        assert store.scalar("SELECT author FROM activities WHERE kind = 'email'") == "ana.collector"
    finally:
        store.close()


@pytest.mark.postgres
def test_on_postgresql_a_followup_writes_directly(pg_store: Store, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Every process writes to a server database itself: nothing is queued, the same rules hold."""
    monkeypatch.setenv("ARDESK_INBOX", str(tmp_path / "inbox"))
    setup_people(pg_store)
    add_customer(pg_store, "C1")
    add_invoice(pg_store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 1000)
    args = ("--db", pg_store.url, "followup", "promise", "C1", "--amount", "999.99", "--date", str(T + timedelta(days=7)),
            "--invoice", "INV-1", "--as", "ana.collector", "--key", "pg-1", "--format", "json")
    assert main(list(args)) == 0
    first = _json(capsys)[0]
    assert main(list(args)) == 0
    assert (_json(capsys)[0]["activity_id"], first["repeated"]) == (first["activity_id"], False)
    assert not (tmp_path / "inbox").exists()
    assert _rows(pg_store, "SELECT author, amount, entry_id, idempotency_key FROM activities") == [
        {"author": "ana.collector", "amount": 999.99, "entry_id": 1, "idempotency_key": "pg-1"}]
    assert main(["--db", pg_store.url, "followup", "call", "C1", "--outcome", "reached", "--as", "sam.sales"]) == 2
    assert "sam.sales (Sales) may not act on customers" in capsys.readouterr().err


def test_a_scripted_dispute_names_its_invoices_or_says_whole_account(books: Path, capsys) -> None:
    store = connect(str(books))
    add_invoice(store, "C1", "INV-3", T - timedelta(days=20), T - timedelta(days=5), 300)
    store.close()
    as_ana = ("--as", "ana.collector", "--format", "json")
    with pytest.raises(SystemExit):  # neither invoices nor --whole-account: argparse refuses, nothing written
        ardesk(books, "followup", "dispute", "C1", "--reason", "Price", "--department", "sales", *as_ana)
    assert "one of the arguments --invoice --whole-account is required" in capsys.readouterr().err
    assert ardesk(books, "followup", "dispute", "C1", "--reason", "Price", "--department", "sales",
                  "--invoice", "INV-1", "--invoice", "INV-3", *as_ana) == 0
    two = _json(capsys)[0]["activity_id"]
    assert ardesk(books, "followup", "promise", "C2", "--amount", "500", "--date", str(T + timedelta(days=3)), "--no-pause",
                  "--as", "ben.collector", "--format", "json") == 0
    promise = _json(capsys)[0]["activity_id"]
    store = connect(str(books))
    try:
        linked = store.read("SELECT l.entry_id, e.document_number FROM activity_invoices l JOIN ledger_entries e "
                            "USING (entry_id) WHERE l.activity_id = :a ORDER BY 2", {"a": two})
        assert linked["document_number"].tolist() == ["INV-1", "INV-3"]
        # no amount given: the disputed invoices' open amount, 1,000 + 300
        assert float(store.scalar("SELECT amount FROM activities WHERE activity_id = :a", {"a": two})) == 1300.0
        row = store.read("SELECT amount, whole_account, pauses_dunning FROM activities WHERE activity_id = :a",
                         {"a": promise}).iloc[0]
        assert (float(row.amount), bool(row.whole_account), bool(row.pauses_dunning)) == (500.0, True, False)
    finally:
        store.close()
