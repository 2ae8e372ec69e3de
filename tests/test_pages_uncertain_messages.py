"""Uncertain messages on the pages (AppTest): the Customer 360 and the bulk page show them and record a
person's decision (marked sent, sent again with the same Message-ID); a send from the Customer 360 to a
server that drops the connection says uncertain. The delivery faults: test_outreach_delivery_faults.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.collections.outreach.delivery import send_now
from analytics.migrations import connect
from tests.conftest import new_store, signed_in_app
from tests.smtp_server import DropAfterData, free_port
from tests.test_outreach_delivery_faults import ANA, T, _customers, _message, _smtp, serving


@pytest.fixture
def uncertain_books(tmp_path: Path, app_env, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with two uncertain messages (C001 named with markdown), the app delivering to a folder."""
    path = tmp_path / "pages.duckdb"
    store = new_store(path)
    ids = _customers(store, 2)
    with store.write() as conn:
        conn.execute(sa.text("UPDATE customers SET name = 'Acme **bold** <b>x</b>' WHERE customer_id = 'C001'"))
    port = free_port()
    with serving(port, DropAfterData()):
        send_now(store, ANA, ids, "reminder_friendly", action_key="pg-1", as_of=T, config=_smtp(port))
    store.close()
    monkeypatch.setenv("ARDESK_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("ARDESK_OUTREACH_MODE", "outbox")
    app_env(path)
    return path


def test_customer_page_and_bulk_page_show_uncertain_messages_and_record_the_decision(
        uncertain_books: Path, tmp_path: Path) -> None:
    at = signed_in_app("collector", "ana.collector").run()
    at.query_params["customer"] = "C001"
    at.switch_page("pages/customer.py").run()
    assert not at.exception
    assert any(w.value.startswith("1 message(s) may have reached the customer") for w in at.warning)
    texts = [t.value for t in at.text]
    assert "Message 1 to ap@c001.example (C001): Friendly reminder: 1 open invoice for Acme **bold** <b>x</b>" in texts
    assert any(t.startswith("Why uncertain: the server received the message but never confirmed it") for t in texts)
    at.button(key="customer_mark_sent_1").click().run()
    assert not at.exception
    assert at.success[0].value == "Message 1 marked sent."
    assert not [b for b in at.button if b.key == "customer_mark_sent_1"]

    bulk = signed_in_app("collector", "ana.collector").run()
    bulk.switch_page("pages/bulk.py").run()
    assert not bulk.exception
    assert [t.value for t in bulk.text][0] == "Message 2 to ap@c002.example (C002): Friendly reminder: 1 open " \
                                              "invoice for Acme 002"
    bulk.button(key="bulk_send_again_2").click().run()
    assert not bulk.exception
    assert bulk.success[0].value == "Message 2 sent again."
    [eml] = (tmp_path / "outbox").glob("*.eml")
    store = connect(str(uncertain_books))
    try:
        assert store.read("SELECT message_id, status FROM messages ORDER BY message_id").values.tolist() == [
            [1, "sent"], [2, "sent"]]
        assert f"Message-ID: {_message(store, 2)['message_header_id']}" in eml.read_text()
        assert store.read("SELECT action FROM audit_log WHERE action IN ('message.mark_sent', 'message.send_again') "
                          "ORDER BY audit_id")["action"].tolist() == ["message.mark_sent", "message.send_again"]
    finally:
        store.close()


def test_sending_from_the_customer_page_to_a_server_that_drops_says_uncertain(
        uncertain_books: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("ARDESK_OUTREACH_MODE", "smtp")
    monkeypatch.setenv("ARDESK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ARDESK_SMTP_PORT", str(port))
    at = signed_in_app("collector", "ana.collector").run()
    at.query_params["customer"] = "C002"
    at.switch_page("pages/customer.py").run()
    # the page's date is the ledger's last posting day, when nothing is past due yet: a statement lists it
    at.selectbox(key="outreach_template").select("statement_letter").run()
    with serving(port, DropAfterData()) as dropping:
        at.button(key="outreach_send").click().run()
    assert not at.exception
    assert at.warning[0].value.startswith("Delivery uncertain: the mail server received the message but never "
                                          "confirmed it")
    assert [t.value for t in at.text if t.value.startswith("Message 3 to ap@c002.example")]
    assert len(dropping.messages) == 1
