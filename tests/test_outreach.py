"""Outreach against a real aiosmtpd server on loopback: exactly-once delivery, re-checks, the cap."""

from __future__ import annotations

import email
import io
import threading
from datetime import date, datetime, timedelta
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa

from analytics.access.roles import Actor, PermissionDenied
from analytics.collections.followups import open_dispute
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.delivery import deliver, retry_queued, send_now
from analytics.collections.outreach.queue import preview, queue_messages
from analytics.store.connection import Store
from tests.collector_data import (
    add_customer,
    add_invoice,
    add_payment,
    overdue_customers,
)
from tests.smtp_server import free_port, start_smtp

T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")


def _customers(store: Store, n: int) -> list[str]:
    return overdue_customers(store, n, T)


def _rows(store: Store, sql: str) -> list[dict]:
    """Query rows as dicts, SQL NULL as None."""
    frame = store.read(sql).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def _count(store: Store, sql: str) -> int:
    return int(store.scalar(sql))


@pytest.mark.slow
def test_bulk_send_to_50_customers_delivers_exactly_50_with_text_and_attachment(store: Store, smtp) -> None:
    handler, config = smtp
    ids = _customers(store, 50)
    result = send_now(store, ANA, ids, "reminder_friendly", action_key="bulk-1", as_of=T,
                      note="We value your business.", attach="pdf", config=config)
    assert result["status"].tolist() == ["sent"] * 50
    assert len(handler.messages) == 50
    assert sorted(m["To"] for m in handler.messages) == [f"ap@{c.lower()}.example" for c in ids]
    mail = next(m for m in handler.messages if m["To"] == "ap@c007.example")
    assert mail["Subject"] == "Friendly reminder: 1 open invoice for Acme 007"
    assert mail["From"] == config.from_address
    body = mail.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")  # SMTP line ends
    assert body.startswith("Dear Pat C007,\n")
    assert (f"- INV-007 dated {T - timedelta(days=40)}, due {T - timedelta(days=10)}: 1,007.00 USD "
            "(10 days overdue)") in body
    assert "Total past due: 1,007.00 USD" in body and "We value your business." in body
    assert "Balance 1,007.00 USD = open invoices 1,007.00 USD − unapplied cash/credits 0.00 USD." in body
    # the letterhead's footer (settings [letterhead]) under the signature, in the text and the HTML part
    assert "Kind regards,\nAna Collector\n\n-- \nAR Desk Demo Ltd\n1 Ledger Street\n" in body
    assert body.rstrip().endswith("Bank details: Demo Bank, account 000123456, routing 000000000 (demo figures)")
    html_part = mail.get_body(preferencelist=("html",))
    assert html_part.get_content_type() == "text/html" and "Remit to: AR Desk Demo Ltd, Lockbox 4400" in (
        html_part.get_content())
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == f"statement-C007-{T.isoformat()}.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content().startswith(b"%PDF")
    # every delivery wrote one email activity and one audit line, and recorded dunning stage 1 as run
    assert _count(store, "SELECT COUNT(*) FROM activities WHERE kind = 'email' AND outcome = 'sent'") == 50
    assert _count(store, "SELECT COUNT(*) FROM audit_log WHERE action = 'message.send'") == 50
    assert _count(store, "SELECT COUNT(*) FROM dunning_runs WHERE stage_no = 1 AND outcome = 'sent'") == 50
    # ... and each reach is in the stage results with what was open when the email went out
    reached = store.read("SELECT customer_id, run_date, open_amount FROM dunning_stage_results WHERE stage_no = 1")
    assert len(reached) == 50 and set(reached["run_date"].dt.date) == {T}
    assert reached.set_index("customer_id")["open_amount"]["C007"] == 1007.0

    again = send_now(store, ANA, ids, "reminder_friendly", action_key="bulk-1", as_of=T,
                     note="We value your business.", attach="pdf", config=config)
    assert len(handler.messages) == 50
    assert set(again["status"]) == {"sent"} and set(again["reason"]) == {"already sent"}
    assert _count(store, "SELECT COUNT(*) FROM messages") == 50
    assert _count(store, "SELECT COUNT(*) FROM activities WHERE kind = 'email'") == 50


def test_excel_statement_lists_open_items_and_total(store: Store, smtp) -> None:
    handler, config = smtp
    [cid] = _customers(store, 1)
    add_invoice(store, cid, "INV-B", T - timedelta(days=5), T + timedelta(days=25), 250.5)
    send_now(store, ANA, [cid], "statement_cover", action_key="x1", as_of=T, attach="xlsx", config=config)
    [mail] = handler.messages
    [attachment] = list(mail.iter_attachments())
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(attachment.get_content())).active
    rows = [list(r) for r in sheet.iter_rows(min_row=4, values_only=True)]
    assert rows == [
        ["Invoice", "Date", "Due", "Amount", "Open", "Days overdue"],
        ["INV-001", datetime.combine(T - timedelta(days=40), datetime.min.time()),
         datetime.combine(T - timedelta(days=10), datetime.min.time()), 1001.0, 1001.0, 10],
        ["INV-B", datetime.combine(T - timedelta(days=5), datetime.min.time()),
         datetime.combine(T + timedelta(days=25), datetime.min.time()), 250.5, 250.5, 0],
        ["Total open", None, None, None, 1251.5, None],
    ]


def test_frequency_cap_counts_every_team_and_says_why(store: Store, smtp) -> None:
    handler, config = smtp
    [cid] = _customers(store, 1)
    with store.write() as conn:  # an email logged by sales earlier today counts towards the cap
        conn.execute(sa.text("INSERT INTO activities (customer_id, kind, occurred_at, author, department, subject) "
                             "VALUES (:c, 'email', :t, 'sam.sales', 'sales', 'Renewal offer')"),
                     {"c": cid, "t": datetime.now() - timedelta(hours=1)})
    capped = OutreachConfig(**{**config.__dict__, "max_emails_per_customer": 2})
    first = send_now(store, ANA, [cid], "statement_cover", action_key="a1", as_of=T, config=capped)
    second = send_now(store, ANA, [cid], "statement_cover", action_key="a2", as_of=T, config=capped)
    assert first["status"].tolist() == ["sent"]
    assert second["status"].tolist() == ["blocked"]
    reason = second["reason"].iloc[0]
    assert reason.startswith("frequency cap: 2 emails to this customer in the last 7 days (limit 2); "
                             "last by ana.collector at ")
    assert len(handler.messages) == 1
    assert _rows(store, "SELECT status, last_error FROM messages ORDER BY message_id") == [
        {"status": "sent", "last_error": None}, {"status": "blocked", "last_error": reason}]


def test_server_down_keeps_messages_queued_with_error_then_retry_sends_each_once(store: Store) -> None:
    ids = _customers(store, 5)
    port = free_port()  # nothing listens here yet
    config = OutreachConfig(mode="smtp", smtp_host="127.0.0.1", smtp_port=port)
    down = send_now(store, ANA, ids, "reminder_firm", action_key="down-1", as_of=T, config=config)
    assert down["status"].tolist() == ["queued"] * 5
    assert down["reason"].str.startswith("ConnectionRefusedError").all()
    box = store.read("SELECT status, attempts, last_error, sent_at FROM messages ORDER BY message_id")
    assert box["status"].tolist() == ["queued"] * 5 and box["attempts"].tolist() == [1] * 5
    assert box["last_error"].str.contains("Connection refused").all() and box["sent_at"].isna().all()
    assert _count(store, "SELECT COUNT(*) FROM activities") == 0

    controller, handler = start_smtp(port)
    try:
        retried = retry_queued(store, ANA, config=config)
        assert retried["status"].tolist() == ["sent"] * 5
        assert retry_queued(store, ANA, config=config).empty
        assert deliver(store, ANA, retried["message_id"].tolist(), config=config)["reason"].tolist() == [
            "already sent"] * 5
    finally:
        controller.stop()
    assert sorted(m["To"] for m in handler.messages) == [f"ap@{c.lower()}.example" for c in ids]
    assert _rows(store, "SELECT status, attempts, last_error FROM messages ORDER BY message_id") == [
        {"status": "sent", "attempts": 2, "last_error": None}] * 5


def test_two_deliveries_at_once_send_each_message_once(store: Store, smtp) -> None:
    handler, config = smtp
    ids = _customers(store, 20)
    queued = queue_messages(store, ANA, ids, "reminder_friendly", action_key="race", as_of=T)
    message_ids = queued["message_id"].astype(int).tolist()
    threads = [threading.Thread(target=deliver, args=(store, ANA, message_ids), kwargs={"config": config})
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(handler.messages) == 20
    assert _count(store, "SELECT COUNT(*) FROM messages WHERE status = 'sent'") == 20


def test_recheck_blocks_messages_whose_invoices_are_paid_or_disputed(store: Store, smtp) -> None:
    handler, config = smtp
    ids = _customers(store, 3)
    queued = queue_messages(store, ANA, ids, "reminder_friendly", action_key="rc", as_of=T)
    add_payment(store, "C001", "PAY-1", T, 1001, invoice_id=1)
    open_dispute(store, ANA, "C002", "Wrong price", 1002, "sales", entry_id=2)
    result = deliver(store, ANA, queued["message_id"].tolist(), config=config)
    assert result[["customer_id", "status", "reason"]].to_dict("records") == [
        {"customer_id": "C001", "status": "blocked", "reason": "every invoice in it is paid or disputed now (INV-001 paid)"},
        {"customer_id": "C002", "status": "blocked",
         "reason": "every invoice in it is paid or disputed now (INV-002 disputed)"},
        {"customer_id": "C003", "status": "sent", "reason": None},
    ]
    assert [m["To"] for m in handler.messages] == ["ap@c003.example"]


def test_outbox_mode_writes_eml_files(store: Store, tmp_path) -> None:
    ids = _customers(store, 2)
    config = OutreachConfig(mode="outbox", outbox_dir=tmp_path / "outbox")
    send_now(store, ANA, ids, "final_notice", action_key="ob", as_of=T, config=config)
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert [f.name for f in files] == ["00000001.eml", "00000002.eml"]
    mail = email.message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert mail["Subject"] == "FINAL NOTICE: Acme 001 account C001" and mail["To"] == "ap@c001.example"


def test_customers_without_email_contact_are_not_queued_and_say_why(store: Store) -> None:
    _customers(store, 1)
    add_customer(store, "NOCONTACT", contact=None)
    add_invoice(store, "NOCONTACT", "INV-N", T - timedelta(days=40), T - timedelta(days=10), 10)
    drafts = preview(store, ["C001", "NOCONTACT", "GHOST"], "reminder_friendly", T)
    assert [(d.customer_id, d.problem) for d in drafts] == [
        ("C001", None), ("NOCONTACT", "no active contact with an email address"), ("GHOST", "no such customer")]
    queued = queue_messages(store, ANA, ["NOCONTACT"], "reminder_friendly", action_key="nc", as_of=T)
    assert queued.to_dict("records") == [{"customer_id": "NOCONTACT", "message_id": None, "status": "not queued",
                                          "reason": "no active contact with an email address"}]


@pytest.mark.parametrize("role", ["viewer", "sales", "cfo", "analyst"])
def test_forbidden_outreach_raises_and_writes_nothing(store: Store, role: str) -> None:
    ids = _customers(store, 2)
    before = _count(store, "SELECT COUNT(*) FROM audit_log")
    with pytest.raises(PermissionDenied, match="may not act on customers"):
        queue_messages(store, Actor("x", role), ids, "reminder_friendly", action_key="f", as_of=T)
    with pytest.raises(PermissionDenied):
        retry_queued(store, Actor("x", role))
    assert _count(store, "SELECT COUNT(*) FROM messages") == 0
    assert _count(store, "SELECT COUNT(*) FROM audit_log") == before


def test_unknown_template_is_refused_with_the_choices(store: Store) -> None:
    ids = _customers(store, 1)
    with pytest.raises(OutreachError, match="There is no template 'nope'; choose one of call_script, final_notice, "
                                            "formal_letter, reminder_firm, reminder_friendly, reminder_letter, "
                                            "reminder_predue, statement_cover, statement_letter"):
        queue_messages(store, ANA, ids, "nope", action_key="t", as_of=T)


def test_every_shipped_template_renders_for_a_customer(store: Store) -> None:
    from analytics.collections.outreach.templates import list_templates

    [cid] = _customers(store, 1)
    add_invoice(store, cid, "INV-NEXT", T, T + timedelta(days=20), 300)  # not yet due: the pre-due reminder's
    for name in list_templates():
        [draft] = preview(store, [cid], name, T, note="A personal note.")
        assert draft.problem is None and draft.subject and "Acme 001" in draft.subject + draft.body
        assert "A personal note." in draft.body
