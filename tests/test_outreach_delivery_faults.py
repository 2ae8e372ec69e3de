"""Outreach delivery that never sends twice: servers that take the message and never confirm it,
deliveries killed between claim and send, and what the frequency cap counts meanwhile.

The SMTP servers are real aiosmtpd servers on loopback (tests/smtp_server.py); the killed
deliveries are real `ardesk outreach retry` processes stopped with SIGKILL while the server holds
them at a chosen step. The pages where a person decides: test_pages_uncertain_messages.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access.roles import Actor, PermissionDenied
from analytics.cli.main import main
from analytics.collections.outreach import delivery
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.delivery import (
    deliver,
    mark_sent,
    recover_interrupted,
    retry_queued,
    send_again,
    send_now,
)
from analytics.collections.outreach.outbox import emails_in_window, outbox
from analytics.collections.outreach.queue import queue_messages
from analytics.migrations import SCHEMA_VERSION, connect
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.schema import messages
from tests.collector_data import (
    overdue_customers,
)
from tests.conftest import empty_postgres
from tests.smtp_server import DropAfterData, Recorder, Stall, free_port, start_smtp

ROOT = Path(__file__).resolve().parent.parent
T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")


class Refuse(Recorder):
    """Takes the whole message, then answers with a refusal (so it did not take it)."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd's signature
        return self.reply


@contextmanager
def serving(port: int, handler: Recorder) -> Iterator[Recorder]:
    controller, _ = start_smtp(port, handler)
    try:
        yield handler
    finally:
        if isinstance(handler, Stall):
            handler.release()
        controller.stop()


def _customers(store: Store, n: int) -> list[str]:
    return overdue_customers(store, n, T)


def _smtp(port: int, **overrides: object) -> OutreachConfig:
    return OutreachConfig(mode="smtp", smtp_host="127.0.0.1", smtp_port=port, **overrides)


def _message(store: Store, message_id: int) -> dict:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(messages).where(messages.c.message_id == message_id)).mappings().one())


def _count(store: Store, sql: str) -> int:
    return int(store.scalar(sql))


def test_refusal_after_the_content_is_retried_but_a_drop_after_it_is_never_sent_twice(store: Store) -> None:
    ids = _customers(store, 2)
    port = free_port()
    config = _smtp(port)
    with serving(port, Refuse("451 4.3.0 Try again later")) as refusing:
        first = send_now(store, ANA, ids, "reminder_friendly", action_key="drop-1", as_of=T, config=config)
    assert first["status"].tolist() == ["queued", "queued"]  # the server answered "no": a retry is safe
    assert first["reason"].str.startswith("SMTPDataError: (451").all() and refusing.messages == []

    with serving(port, DropAfterData()) as dropping:
        retried = retry_queued(store, ANA, config=config)
        assert retried["status"].tolist() == ["uncertain", "uncertain"]
        assert retried["reason"].str.startswith("the server received the message but never confirmed it "
                                                "(SMTPServerDisconnected").all()
        assert retried["reason"].str.endswith("it may have reached the customer: mark it sent, or send it "
                                              "again (same Message-ID)").all()
        # ... and nothing retries them on its own: not the nightly retry, not a delivery of the same ids
        assert retry_queued(store, ANA, config=config).empty
        again = deliver(store, ANA, retried["message_id"].tolist(), config=config)
        assert again["status"].tolist() == ["uncertain", "uncertain"]
        assert again["reason"].str.startswith("not retried automatically: it may have reached").all()
        send_now(store, ANA, ids, "reminder_friendly", action_key="drop-1", as_of=T, config=config)  # a double click
    assert sorted(m["To"] for m in dropping.messages) == ["ap@c001.example", "ap@c002.example"]  # one copy each

    box = outbox(store, "C001")
    [row] = box.to_dict("records")
    assert row["status"] == "uncertain" and row["attempts"] == 2 and pd.isna(row["sent_at"])
    assert row["last_error"] == retried["reason"].iloc[0] and not pd.isna(row["data_started_at"])
    # every attempt carried the Message-ID stored when the message was queued
    stored = {int(m.message_id): m.message_header_id for m in outbox(store).itertuples()}
    assert {m["To"]: m["Message-ID"] for m in dropping.messages} == {
        "ap@c001.example": stored[int(first["message_id"].iloc[0])],
        "ap@c002.example": stored[int(first["message_id"].iloc[1])]}
    assert re.fullmatch(r"<[^<>@\s]+@ardesk\.example>", stored[1])
    assert _count(store, "SELECT COUNT(*) FROM activities WHERE kind = 'email'") == 0
    assert _count(store, "SELECT COUNT(*) FROM audit_log WHERE action = 'message.uncertain'") == 2


def test_a_server_that_times_out_after_the_content_leaves_the_message_uncertain(store: Store) -> None:
    [cid] = _customers(store, 1)
    port = free_port()
    config = _smtp(port, smtp_timeout=0.5)
    with serving(port, Stall("data")) as stalled:
        result = send_now(store, ANA, [cid], "reminder_firm", action_key="slow-1", as_of=T, config=config)
        [reason] = result["reason"].tolist()
        assert result["status"].tolist() == ["uncertain"]
        assert reason.startswith("the server received the message but never confirmed it (SMTPServerDisconnected: "
                                 "Connection unexpectedly closed: timed out)")
        stalled.release()
        assert retry_queued(store, ANA, config=config).empty
    assert len(stalled.messages) == 1
    assert _message(store, 1)["status"] == "uncertain"


def test_a_person_marks_an_uncertain_message_sent_or_sends_it_again_with_the_same_message_id(store: Store) -> None:
    ids = _customers(store, 2)
    port = free_port()
    config = _smtp(port)
    with serving(port, DropAfterData()) as dropping:
        send_now(store, ANA, ids, "reminder_friendly", action_key="p-1", as_of=T, config=config)
    assert _count(store, "SELECT COUNT(*) FROM messages WHERE status = 'uncertain'") == 2
    handed_over = _message(store, 1)["data_started_at"]

    before = _count(store, "SELECT COUNT(*) FROM audit_log")
    for role in ("viewer", "sales", "cfo", "analyst"):
        with pytest.raises(PermissionDenied, match="may not act on customers"):
            mark_sent(store, Actor("x", role), 1)
        with pytest.raises(PermissionDenied):
            send_again(store, Actor("x", role), 2, config=config)
    assert _count(store, "SELECT COUNT(*) FROM audit_log") == before

    assert mark_sent(store, ANA, 1) == {"message_id": 1, "customer_id": "C001", "status": "sent", "reason": None}
    sent = _message(store, 1)
    assert sent["status"] == "sent" and sent["sent_at"] == handed_over and sent["last_error"] is None
    activity = store.read("SELECT customer_id, occurred_at, author, outcome FROM activities WHERE kind = 'email'")
    assert activity.to_dict("records") == [{"customer_id": "C001", "occurred_at": handed_over,
                                           "author": "ana.collector", "outcome": "sent"}]
    assert _count(store, "SELECT COUNT(*) FROM dunning_runs WHERE customer_id = 'C001' AND outcome = 'sent'") == 1
    with pytest.raises(OutreachError, match="Message 1 is sent, not uncertain: there is nothing to decide."):
        mark_sent(store, ANA, 1)
    with pytest.raises(OutreachError, match="There is no message 99."):
        send_again(store, ANA, 99, config=config)

    with serving(port, Recorder()) as recorder:
        assert send_again(store, ANA, 2, config=config) == {
            "message_id": 2, "customer_id": "C002", "status": "sent", "reason": None}
        with pytest.raises(OutreachError, match="Message 2 is sent, not uncertain"):
            send_again(store, ANA, 2, config=config)  # a double click sends nothing more
    [dropped] = [m for m in dropping.messages if m["To"] == "ap@c002.example"]
    [resent] = recorder.messages
    assert resent["Message-ID"] == dropped["Message-ID"] == _message(store, 2)["message_header_id"]
    audit = store.read("SELECT action, actor, entity_id, detail FROM audit_log "
                       "WHERE action IN ('message.mark_sent', 'message.send_again', 'message.send') ORDER BY audit_id")
    assert audit[["action", "actor", "entity_id"]].values.tolist() == [
        ["message.mark_sent", "ana.collector", "1"], ["message.send_again", "ana.collector", "2"],
        ["message.send", "ana.collector", "2"]]
    assert audit["detail"].iloc[0].startswith("marked sent by ana.collector; was: the server received the message")


def test_the_frequency_cap_counts_sent_and_possibly_sent_messages_in_its_window_only(store: Store) -> None:
    [cid] = _customers(store, 1)
    now = datetime.now()
    with store.write() as conn:
        def message(key: str, status: str, **values: object) -> None:
            conn.execute(messages.insert().values(
                idempotency_key=key, customer_id=cid, to_address="ap@c001.example", subject="s", body="b",
                entry_ids="[1]", status=status, created_by="ana.collector", created_at=now - timedelta(days=30),
                message_header_id=f"<{key}@ardesk.example>", **values))

        message("orphan", "sending", claimed_by="old-host:1:x", lease_until=now - timedelta(days=20))
        message("maybe-recent", "uncertain", data_started_at=now - timedelta(days=1))
        message("maybe-old", "uncertain", data_started_at=now - timedelta(days=8))
        message("live", "sending", claimed_by="other-host:2:y", lease_until=now + timedelta(minutes=5))
        conn.execute(sa.text("INSERT INTO activities (customer_id, kind, occurred_at, author, department, subject) "
                             "VALUES (:c, 'email', :t, 'sam.sales', 'sales', 'Old renewal')"),
                     {"c": cid, "t": now - timedelta(days=8)})
    config = OutreachConfig(mode="outbox", max_emails_per_customer=3, frequency_window_days=7)
    # the uncertain one handed over yesterday and the one being handed over right now; not the orphan,
    # the old uncertain one or the old email
    assert emails_in_window(store, cid, config) == 2


def test_an_orphaned_claim_no_longer_blocks_the_customer_through_the_cap(store: Store, tmp_path: Path) -> None:
    [cid] = _customers(store, 1)
    config = OutreachConfig(mode="outbox", outbox_dir=tmp_path / "outbox", max_emails_per_customer=1)
    [orphan] = queue_messages(store, ANA, [cid], "reminder_friendly", action_key="o-1", as_of=T,
                              config=config)["message_id"].tolist()
    with store.write() as conn:  # a delivery claimed it and died before sending, a week ago
        conn.execute(messages.update().where(messages.c.message_id == orphan).values(
            status="sending", attempts=1, claimed_by="gone:1:x", lease_until=datetime.now() - timedelta(days=7)))
    fresh = send_now(store, ANA, [cid], "reminder_firm", action_key="o-2", as_of=T, config=config)
    assert fresh["status"].tolist() == ["sent"]
    # the delivery first put the orphan back in the queue; sending it now would be a second email in the window
    [row] = retry_queued(store, ANA, config=config).to_dict("records")
    assert row["message_id"] == orphan and row["status"] == "blocked"
    assert row["reason"].startswith("frequency cap: 1 emails to this customer in the last 7 days (limit 1)")
    [recovery] = store.read("SELECT entity_id, old_values, new_values, detail FROM audit_log "
                            "WHERE action = 'message.recover'").to_dict("records")
    assert recovery["entity_id"] == str(orphan) and recovery["new_values"] == '{"status": "queued"}'
    assert recovery["detail"].startswith("delivery interrupted before sending: the claim of gone:1:x ran out at ")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_recovery_settles_only_expired_claims_by_whether_the_content_had_started(store: Store) -> None:
    ids = _customers(store, 4)
    config = OutreachConfig(mode="outbox")
    queue_messages(store, ANA, ids, "reminder_friendly", action_key="r-1", as_of=T, config=config)
    now = datetime.now()
    claims = {1: dict(lease_until=now - timedelta(seconds=1)),
              2: dict(lease_until=now - timedelta(seconds=1), data_started_at=now - timedelta(minutes=6)),
              3: dict(lease_until=now + timedelta(minutes=5)),
              4: dict(lease_until=None)}  # claimed by a version that kept no lease
    with store.write() as conn:
        for message_id, values in claims.items():
            conn.execute(messages.update().where(messages.c.message_id == message_id)
                         .values(status="sending", attempts=1, claimed_by=f"h:{message_id}:n", **values))
    recovered = recover_interrupted(store, ANA)
    assert recovered[["message_id", "status"]].values.tolist() == [[1, "queued"], [2, "uncertain"], [4, "uncertain"]]
    assert recovered["reason"].tolist()[1].startswith("delivery interrupted while the message was being handed to "
                                                       "the server (by h:2:n, from ")
    assert recovered["reason"].tolist()[2].startswith("delivery interrupted under an earlier AR Desk version")
    assert _message(store, 3)["status"] == "sending"
    assert recover_interrupted(store, ANA).empty  # settled once
    assert _count(store, "SELECT COUNT(*) FROM audit_log WHERE action = 'message.recover'") == 3
    [live] = deliver(store, ANA, [3], config=config).to_dict("records")
    assert live["status"] == "sending" and live["reason"].startswith("being delivered by h:3:n (claim held until ")
    with pytest.raises(PermissionDenied):
        recover_interrupted(store, Actor("v", "viewer"))


def test_a_delivery_whose_claim_ran_out_before_the_content_left_sends_nothing(store: Store, monkeypatch) -> None:
    [cid] = _customers(store, 1)
    port = free_port()
    config = _smtp(port, lease_seconds=0.01)
    real = delivery._hand_over

    def slow_hand_over(*args: object) -> datetime:
        time.sleep(0.05)  # the claim runs out while the server waits for the content
        return real(*args)

    monkeypatch.setattr(delivery, "_hand_over", slow_hand_over)
    with serving(port, Recorder()) as recorder:
        [row] = send_now(store, ANA, [cid], "reminder_friendly", action_key="l-1", as_of=T,
                         config=config).to_dict("records")
    assert row["status"] == "queued"
    assert row["reason"] == ("ClaimLost: the delivery's claim ran out before the message was handed to the server; "
                             "nothing was sent")
    assert recorder.messages == []


# -- a delivery process killed with SIGKILL -----------------------------------------------------------

def _settings_with_lease(tmp_path: Path, seconds: int) -> Path:
    text = (ROOT / "config" / "settings.toml").read_text()
    path = tmp_path / "settings.toml"
    path.write_text(re.sub(r"(?m)^lease_seconds = .*$", f"lease_seconds = {seconds}", text, count=1))
    return path


def _kill_retry_while_held(db: Path, port: int, held: Stall, tmp_path: Path) -> None:
    """Run `ardesk outreach retry` in its own process and SIGKILL it once the server holds it."""
    env = {**os.environ, "ARDESK_SETTINGS": str(_settings_with_lease(tmp_path, 3)), "ARDESK_OUTREACH_MODE": "smtp",
           "ARDESK_SMTP_HOST": "127.0.0.1", "ARDESK_SMTP_PORT": str(port)}
    child = subprocess.Popen([sys.executable, "-m", "analytics.cli", "--db", str(db), "outreach", "retry"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if not held.reached.wait(60):
            child.kill()
            pytest.fail(f"the delivery never reached the server's {held.at} step:\n{child.communicate()[0].decode()}")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    held.release()


def _queued_store(tmp_path: Path) -> Path:
    db = tmp_path / "killed.duckdb"
    store = connect(str(db))
    [cid] = _customers(store, 1)
    queue_messages(store, ANA, [cid], "reminder_friendly", action_key="k-1", as_of=T,
                   config=OutreachConfig(mode="smtp"))
    store.close()  # the delivery process owns the DuckDB file while it runs
    return db


def _after_lease(store: Store, message_id: int) -> None:
    lease_until = _message(store, message_id)["lease_until"]
    while datetime.now() <= lease_until:
        time.sleep(0.05)


@pytest.fixture
def cli_smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The in-process `ardesk` delivers by SMTP to a loopback port (with the shipped lease)."""
    port = free_port()
    monkeypatch.setenv("ARDESK_OUTREACH_MODE", "smtp")
    monkeypatch.setenv("ARDESK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ARDESK_SMTP_PORT", str(port))
    monkeypatch.delenv("ARDESK_SETTINGS", raising=False)
    load_settings.cache_clear()
    yield port
    load_settings.cache_clear()


@pytest.mark.slow
def test_killed_before_data_goes_back_to_the_queue_and_is_sent_once(tmp_path: Path, cli_smtp: int,
                                                                    capsys: pytest.CaptureFixture) -> None:
    db = _queued_store(tmp_path)
    with serving(cli_smtp, Stall("rcpt")) as held:  # the server has not been sent any content yet
        _kill_retry_while_held(db, cli_smtp, held, tmp_path)
        store = connect(str(db))
        try:
            killed = _message(store, 1)
            assert killed["status"] == "sending" and killed["data_started_at"] is None
            assert re.fullmatch(r".+:\d+:[0-9a-f]{8}", killed["claimed_by"])
            _after_lease(store, 1)
        finally:
            store.close()
        capsys.readouterr()
        assert main(["--db", str(db), "outreach", "retry"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Recovered 1 interrupted delivery:\n  message 1 (C001): delivery interrupted before "
                          f"sending: the claim of {killed['claimed_by']} ran out at ")
    assert "1 message(s) tried: 1 sent\n" in out
    assert [m["To"] for m in held.messages] == ["ap@c001.example"]
    store = connect(str(db))
    try:
        sent = _message(store, 1)
        assert sent["status"] == "sent" and sent["attempts"] == 2
        assert held.messages[0]["Message-ID"] == sent["message_header_id"] == killed["message_header_id"]
    finally:
        store.close()


@pytest.mark.slow
def test_killed_while_the_content_was_going_out_is_uncertain_never_resent(tmp_path: Path, cli_smtp: int,
                                                                            capsys: pytest.CaptureFixture) -> None:
    db = _queued_store(tmp_path)
    with serving(cli_smtp, Stall("data")) as held:  # the server has the content; its reply never goes out
        _kill_retry_while_held(db, cli_smtp, held, tmp_path)
        store = connect(str(db))
        try:
            killed = _message(store, 1)
            assert killed["status"] == "sending" and killed["data_started_at"] is not None
            _after_lease(store, 1)
        finally:
            store.close()
        capsys.readouterr()
        assert main(["--db", str(db), "outreach", "retry"]) == 3
        out = capsys.readouterr().out
        assert main(["--db", str(db), "outreach", "retry"]) == 3  # still waiting for a person; nothing re-sent
    assert out.startswith("Recovered 1 interrupted delivery:\n  message 1 (C001): delivery interrupted while the "
                          f"message was being handed to the server (by {killed['claimed_by']}, from ")
    assert "0 message(s) tried: none\n" in out
    assert ("1 message(s) need a person: the server may have them. Check with the recipient, then "
            "`ardesk outreach resolve ID sent` or `... resolve ID again`:\n  message 1 (C001) to ap@c001.example: "
            "delivery interrupted while") in out
    assert len(held.messages) == 1

    capsys.readouterr()
    assert main(["--db", str(db), "outreach", "resolve", "1", "sent"]) == 0
    assert capsys.readouterr().out == "Message 1 (C001): marked sent.\n"
    assert main(["--db", str(db), "outreach", "resolve", "1", "again"]) == 2
    assert "ardesk: Message 1 is sent, not uncertain: there is nothing to decide." in capsys.readouterr().err
    assert main(["--db", str(db), "outreach", "retry"]) == 0
    assert len(held.messages) == 1


# -- schema v7 on both engines -------------------------------------------------------------------------

@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "v6.duckdb")
    url = request.getfixturevalue("pg_url")
    return empty_postgres(url)


def test_a_store_from_before_v7_gets_message_ids_and_its_orphaned_claims_settled(any_engine_url: str,
                                                                               tmp_path: Path) -> None:
    store = connect(any_engine_url)
    ids = _customers(store, 2)
    with store.write() as conn:  # back to a v6 store's messages table, with a claim an older version left
        for column in ("message_header_id", "claimed_by", "lease_until", "data_started_at"):
            conn.execute(sa.text(f"ALTER TABLE messages DROP COLUMN {column}"))
        conn.execute(sa.text("UPDATE schema_migrations SET version = 6"))  # a fresh store has one stamp
        for i, (cid, status) in enumerate(zip(ids, ("sending", "queued"), strict=True), start=1):
            conn.execute(sa.text(
                "INSERT INTO messages (idempotency_key, customer_id, to_address, subject, body, entry_ids, status, "
                "attempts, created_by, created_at) VALUES (:k, :c, :to, 'Reminder', 'Please pay.', :e, :s, 1, "
                "'ana.collector', :t)"),
                {"k": f"old-{i}", "c": cid, "to": f"ap@{cid.lower()}.example", "e": f"[{i}]", "s": status,
                 "t": datetime.now() - timedelta(days=2)})
    store.close()

    store = connect(any_engine_url)  # upgrades
    try:
        assert store.scalar("SELECT MAX(version) FROM schema_migrations") == SCHEMA_VERSION  # upgraded to the current version
        header_ids = store.read("SELECT message_header_id FROM messages ORDER BY message_id")["message_header_id"]
        assert header_ids.str.fullmatch(r"<[^<>@\s]+@ardesk\.example>").all() and header_ids.nunique() == 2
        [settled] = recover_interrupted(store, ANA).to_dict("records")
        assert settled["message_id"] == 1 and settled["status"] == "uncertain"
        assert settled["reason"].startswith("delivery interrupted under an earlier AR Desk version")
        config = OutreachConfig(mode="outbox", outbox_dir=tmp_path / "outbox", max_emails_per_customer=1)
        assert emails_in_window(store, "C001", config) == 1  # it may have gone out two days ago
        assert retry_queued(store, ANA, config=config)[["message_id", "status"]].values.tolist() == [[2, "sent"]]
        assert mark_sent(store, ANA, 1)["status"] == "sent"
        [eml] = (tmp_path / "outbox").glob("*.eml")
        assert f"Message-ID: {header_ids.iloc[1]}" in eml.read_text()
    finally:
        store.close()
