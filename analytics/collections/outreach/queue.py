"""Drafts and the outbox queue: `preview` renders each customer's message without writing;
`queue_messages` writes one `messages` row per customer, keyed by an idempotency key derived from
the action and the customer (queueing the same action twice queues nothing new). The statement
attachment and the RFC 5322 Message-ID are made here and stored, so every attempt and a resend
carry the same Message-ID."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import make_msgid
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.recipients import open_invoices, recipients
from analytics.collections.outreach.templates import render
from analytics.collections.statements import statement_items, statement_pdf, statement_xlsx
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.schema import messages

ATTACHMENT_KINDS = ("pdf", "xlsx")


@dataclass
class Draft:
    """One rendered message for one customer, or the reason it cannot be sent."""

    customer_id: str
    customer_name: str
    to_address: str | None
    contact_id: int | None
    subject: str
    body: str
    entry_ids: list[int]
    problem: str | None = None


def preview(
    store: Store, customer_ids: Sequence[str], template: str, as_of: date, note: str = "",
    sender_name: str = "Collections team",
) -> list[Draft]:
    """Render the template for each customer: its open invoices as of D, contact, optional note."""
    people = recipients(store, customer_ids)
    with store.engine.connect() as conn:
        invoices = open_invoices(conn, list(customer_ids), as_of) if len(customer_ids) else pd.DataFrame()
    drafts: list[Draft] = []
    by_customer = dict(tuple(invoices.groupby("customer_id"))) if len(invoices) else {}
    for person in people.itertuples(index=False):
        items = by_customer.get(person.customer_id, pd.DataFrame(columns=["entry_id", "open_amount"]))
        rows = [
            {"document_number": r.document_number, "posting_date": pd.Timestamp(r.posting_date).date(),
             "due_date": pd.Timestamp(r.due_date).date(), "amount": float(r.amount),
             "open_amount": float(r.open_amount), "days_overdue": int(r.days_overdue)}
            for r in items.itertuples(index=False)
        ]
        context = {
            "customer_name": person.customer_name, "customer_id": person.customer_id,
            "currency": person.currency, "contact_name": person.contact_name or "Sir or Madam",
            "invoices": rows, "total": sum(r["open_amount"] for r in rows),
            "overdue_total": sum(r["open_amount"] for r in rows if r["days_overdue"] > 0),
            "as_of": as_of.isoformat(), "note": note.strip(), "sender_name": sender_name,
        }
        subject, body = render(template, context)
        problem = None
        if not isinstance(person.email, str) or not person.email:
            problem = "no active contact with an email address"
        elif not rows:
            problem = "no open invoices"
        drafts.append(Draft(person.customer_id, person.customer_name,
                            person.email if isinstance(person.email, str) else None,
                            None if pd.isna(person.contact_id) else int(person.contact_id),
                            subject, body, [int(e) for e in items["entry_id"]], problem))
    missing = set(customer_ids) - set(people["customer_id"])
    drafts += [Draft(c, "", None, None, "", "", [], "no such customer") for c in sorted(missing)]
    return drafts


def message_key(action_key: str, customer_id: str) -> str:
    """The outbox idempotency key of one customer's message within one action (a form render)."""
    return "m-" + hashlib.sha256(f"{action_key}|{customer_id}".encode()).hexdigest()[:40]


def new_message_header_id(from_address: str) -> str:
    """A fresh RFC 5322 Message-ID in the sender's domain, made once per message and stored."""
    return make_msgid(domain=from_address.partition("@")[2] or "ardesk.local")


def backfill_message_header_ids(conn: sa.Connection) -> int:
    """Give every message without a stored Message-ID one (schema v7); returns how many."""
    from_address = load_settings().section("outreach").get("from_address", OutreachConfig.from_address)
    ids = [int(r[0]) for r in conn.execute(sa.select(messages.c.message_id)
                                           .where(messages.c.message_header_id.is_(None))).fetchall()]
    for message_id in ids:
        conn.execute(messages.update().where(messages.c.message_id == message_id)
                     .values(message_header_id=new_message_header_id(from_address)))
    return len(ids)


def queue_messages(
    store: Store, actor: Actor, customer_ids: Sequence[str], template: str, *, action_key: str,
    as_of: date, note: str = "", attach: str | None = None, config: OutreachConfig | None = None,
) -> pd.DataFrame:
    """Queue one message per customer; returns customer_id, message_id, status, reason per customer.

    Idempotent: a customer already queued under this action keeps its first message.
    Customers without a usable email contact or open invoices are not queued (reason given).
    """
    require(actor, "act_on_customers")
    if attach is not None and attach not in ATTACHMENT_KINDS:
        raise OutreachError(f"Attachment {attach!r} is not one of {', '.join(ATTACHMENT_KINDS)}.")
    if not action_key:
        raise OutreachError("An action key is required so a repeated request never queues twice.")
    customer_ids = list(dict.fromkeys(customer_ids))
    drafts = preview(store, customer_ids, template, as_of, note, sender_name=actor.name or actor.username)
    from_address = (config or OutreachConfig.from_settings()).from_address
    results: list[dict[str, Any]] = []
    with store.write() as conn:
        for d in drafts:
            key = message_key(action_key, d.customer_id)
            existing = conn.execute(sa.select(messages.c.message_id, messages.c.status)
                                    .where(messages.c.idempotency_key == key)).first()
            if existing is not None:
                results.append({"customer_id": d.customer_id, "message_id": int(existing.message_id),
                                "status": existing.status, "reason": "already queued by this action"})
                continue
            if d.problem:
                results.append({"customer_id": d.customer_id, "message_id": None, "status": "not queued",
                                "reason": d.problem})
                continue
            attachment_name = attachment = None
            if attach:
                items = statement_items(conn, d.customer_id, as_of)
                currency = str(conn.execute(sa.text("SELECT currency FROM customers WHERE customer_id = :c"),
                                            {"c": d.customer_id}).scalar())
                build = statement_pdf if attach == "pdf" else statement_xlsx
                attachment = build(d.customer_name, d.customer_id, currency, items, as_of)
                attachment_name = f"statement-{d.customer_id}-{as_of.isoformat()}.{attach}"
            row = {
                "idempotency_key": key, "customer_id": d.customer_id, "contact_id": d.contact_id,
                "to_address": d.to_address, "subject": d.subject, "body": d.body, "template": template,
                "entry_ids": json.dumps(d.entry_ids), "attachment_name": attachment_name,
                "attachment": attachment, "status": "queued", "attempts": 0,
                "created_by": actor.username, "created_at": datetime.now(),
                "message_header_id": new_message_header_id(from_address),
            }
            message_id = int(conn.execute(messages.insert().values(**row).returning(messages.c.message_id)).scalar())
            audit.record(conn, actor, "message.queue", "message", message_id, new={
                k: row[k] for k in ("customer_id", "to_address", "subject", "template", "idempotency_key",
                                    "attachment_name", "message_header_id")})
            results.append({"customer_id": d.customer_id, "message_id": message_id, "status": "queued",
                            "reason": None})
    return pd.DataFrame(results, columns=["customer_id", "message_id", "status", "reason"], dtype=object)
