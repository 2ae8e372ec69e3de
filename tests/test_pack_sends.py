"""The scheduled monthly pack through a real SMTP server (aiosmtpd): once per month and recipient,
audited; too early or without recipients nothing goes; the app's inbox watcher runs the job."""

from __future__ import annotations

import shutil
import time
from datetime import date, datetime
from pathlib import Path

import pytest

from analytics.access.roles import Actor, PermissionDenied
from analytics.migrations import connect
from analytics.reports import pack_sends
from analytics.reports.pack_sends import PackSchedule, month_sends, pack_key, run_monthly
from analytics.store.connection import Store

PEOPLE = ("cfo@example.com", "Controller@Example.com")


@pytest.fixture
def books(demo_store_file: Path, tmp_path: Path) -> Store:
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_store_file, path)
    store = connect(str(path))
    yield store
    store.close()


def _attachments(mail) -> list[tuple[str, str, bytes]]:  # noqa: ANN001 - an EmailMessage
    return [(p.get_filename(), p.get_content_type(), p.get_content()) for p in mail.iter_attachments()]


def test_the_pack_goes_once_per_month_and_recipient(books: Store, smtp) -> None:
    handler, config = smtp
    schedule = PackSchedule(send_on_day=3, recipients=PEOPLE)

    assert run_monthly(books, datetime(2026, 10, 2, 23, 59), schedule, config) is None  # before the send day
    assert handler.messages == []

    first = run_monthly(books, datetime(2026, 10, 5, 8, 0), schedule, config)  # the September pack
    assert first[["recipient", "status"]].to_dict("records") == [
        {"recipient": "Controller@Example.com", "status": "sent"}, {"recipient": "cfo@example.com", "status": "sent"}]
    assert sorted(m["To"] for m in handler.messages) == ["Controller@Example.com", "cfo@example.com"]
    mail = handler.messages[0]
    assert mail["Subject"] == "Monthly AR pack, September 2026"
    assert mail["X-ARDesk-Key"] in {pack_key(date(2026, 9, 1), p) for p in PEOPLE}
    [(name, kind, content)] = _attachments(mail)
    assert (name, kind) == ("ardesk-pack-2026-09.pdf", "application/pdf") and content.startswith(b"%PDF")
    assert "Open AR (USD): " in mail.get_body(("plain",)).get_content()

    assert run_monthly(books, datetime(2026, 10, 5, 8, 0, 5), schedule, config) is None  # the watcher's next round
    assert run_monthly(books, datetime(2026, 10, 28), schedule, config) is None
    assert len(handler.messages) == 2

    run_monthly(books, datetime(2026, 11, 3, 7, 0), schedule, config)  # the October pack
    assert len(handler.messages) == 4
    assert sorted(m["Subject"] for m in handler.messages[2:]) == ["Monthly AR pack, October 2026"] * 2

    assert pack_key(date(2026, 9, 1), "cfo@example.com") == "pack-2026-09-cfo@example.com"
    keys = books.read("SELECT idempotency_key, customer_id, status FROM messages WHERE idempotency_key LIKE 'pack-%' "
                      "ORDER BY idempotency_key")
    assert keys.to_dict("records") == [
        {"idempotency_key": f"pack-{m}-{p}", "customer_id": None, "status": "sent"}
        for m in ("2026-09", "2026-10") for p in ("cfo@example.com", "controller@example.com")]
    audit = books.read("SELECT action, entity_id FROM audit_log WHERE action = 'pack.queue' ORDER BY audit_id")
    assert audit.to_dict("records") == [{"action": "pack.queue", "entity_id": "2026-09"},
                                        {"action": "pack.queue", "entity_id": "2026-10"}]
    sent_lines = books.read("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'message.send' AND entity_id IN "
                            "(SELECT CAST(message_id AS VARCHAR) FROM pack_sends)")
    assert sent_lines["n"].iloc[0] == 4
    # a staff message writes no customer activity
    assert books.read("SELECT COUNT(*) AS n FROM activities WHERE subject LIKE 'Monthly AR pack%'")["n"].iloc[0] == 0


def test_a_recipient_added_later_gets_the_month_once_and_the_others_nothing_again(
        books: Store, smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    handler, config = smtp
    monkeypatch.setattr(pack_sends, "pack_pdf", lambda pack: b"%PDF-1.3 stand-in")  # the PDF: tested above
    run_monthly(books, datetime(2026, 10, 3), PackSchedule(3, PEOPLE[:1]), config)
    run_monthly(books, datetime(2026, 10, 4), PackSchedule(3, PEOPLE), config)
    assert sorted(m["To"] for m in handler.messages) == ["Controller@Example.com", "cfo@example.com"]
    assert month_sends(books, date(2026, 9, 1))["status"].tolist() == ["sent", "sent"]


def test_no_recipients_means_off_and_a_bad_setting_is_said_not_raised(books: Store, smtp,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics.settings import Settings

    handler, config = smtp
    assert PackSchedule.from_settings() == PackSchedule(3, ())  # the shipped settings: off
    assert run_monthly(books, datetime(2026, 10, 5), None, config) is None
    for raw, reason in (({"send_on_day": 31, "recipients": ["cfo@example.com"]}, "a day of the month from 1 to 28"),
                        ({"recipients": "cfo@example.com"}, "a list of email addresses")):
        monkeypatch.setattr(pack_sends, "load_settings", lambda raw=raw: Settings({"pack": raw}))
        with pytest.raises(pack_sends.PackError, match=reason):
            PackSchedule.from_settings()
        assert run_monthly(books, datetime(2026, 10, 5), None, config) is None  # logged once, not raised
    monkeypatch.setattr(pack_sends, "load_settings",
                        lambda: Settings({"pack": {"send_on_day": 5, "recipients": [" cfo@example.com"]}}))
    assert PackSchedule.from_settings() == PackSchedule(5, ("cfo@example.com",))
    assert run_monthly(books, datetime(2026, 10, 4), None, config) is None  # before the 5th
    assert handler.messages == [] and month_sends(books, date(2026, 9, 1)).empty
    with pytest.raises(PermissionDenied, match="act on customers"):  # a CFO may have the pack, not email it
        pack_sends.send_pack(books, Actor("carol", "cfo"), date(2026, 9, 1), ("cfo@example.com",), config=config)


def test_the_apps_inbox_watcher_runs_the_monthly_job(books: Store, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics.ingest import inbox

    calls: list[datetime] = []
    monkeypatch.setattr(inbox, "run_monthly", lambda store, now: calls.append(now))
    watcher = inbox.start_inbox_watcher(books, tmp_path / "inbox", interval_s=0.05)
    try:
        deadline = time.monotonic() + 20
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert calls and watcher.last_error is None


def test_v25_lets_a_message_to_staff_through_the_outbox_once_on_each_engine(store_on_each_engine: Store,
                                                                            tmp_path: Path) -> None:
    import sqlalchemy as sa

    from analytics import migrations
    from analytics.access.roles import SYSTEM
    from analytics.collections.outreach.config import OutreachConfig
    from analytics.collections.outreach.delivery import deliver
    from analytics.collections.outreach.queue import queue_staff_message

    store = store_on_each_engine
    with store.write() as conn:  # messages as before v25, then the upgrade (twice: it is idempotent)
        conn.execute(sa.text("ALTER TABLE messages ALTER COLUMN customer_id SET NOT NULL"))
        migrations._v25_monthly_pack(conn)
        migrations._v25_monthly_pack(conn)
    config = OutreachConfig(mode="outbox", outbox_dir=tmp_path / "outbox")
    queued = []
    for _ in range(2):
        with store.write() as conn:
            queued.append(queue_staff_message(
                conn, SYSTEM, idempotency_key="pack-2026-09-cfo@example.com", to_address="cfo@example.com",
                subject="Monthly AR pack, September 2026", body="Attached.", attachment_name="ardesk-pack-2026-09.pdf",
                attachment=b"%PDF-1.3 stand-in", from_address=config.from_address))
    (message_id, new), again = queued
    assert new and again == (message_id, False)
    for _ in range(2):
        deliver(store, SYSTEM, [message_id], config=config)
    [eml] = (tmp_path / "outbox").glob("*.eml")
    assert b"ardesk-pack-2026-09.pdf" in eml.read_bytes()
    assert store.read("SELECT status, customer_id FROM messages").to_dict("records") == [
        {"status": "sent", "customer_id": None}]
    assert store.read("SELECT action FROM audit_log ORDER BY audit_id")["action"].tolist() == [
        "message.queue", "message.send"]
    assert store.read("SELECT COUNT(*) AS n FROM activities")["n"].iloc[0] == 0
