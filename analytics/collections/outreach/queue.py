"""Drafts and the outbox queue: `preview` renders each customer's message without writing;
`queue_messages` writes one `messages` row per customer, keyed by an idempotency key derived from
the action and the customer (queueing the same action twice queues nothing new). The statement
attachment and the RFC 5322 Message-ID are made here and stored, so every attempt and a resend
carry the same Message-ID."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import make_msgid
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.collections.charges import interest_due, stage_fee
from analytics.collections.customer_360 import balance_line
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.message_templates import (
    CompiledTemplate,
    TemplateVersion,
    latest_template,
)
from analytics.collections.outreach.policy import recheck
from analytics.collections.outreach.recipients import balance_parts, open_invoices, recipients
from analytics.collections.outreach.templates import SCOPE_WORDS, invoice_scope
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
    body_html: str | None = None  # v19: the HTML part (the template's, else the text escaped), with the letterhead
    template_version: int | None = None


def _listed(items: pd.DataFrame, scope: str, only: Sequence[int] | None) -> pd.DataFrame:
    """The invoices a message lists: the template's scope (`templates.invoice_scope`), then, when
    given, only the chosen invoices (a bulk filter's matches)."""
    if scope == "past_due":
        items = items[(items["days_overdue"] > 0) & (items["held"] == 0)]
    elif scope == "not_due":
        items = items[(items["days_overdue"] <= 0) & (items["held"] == 0)]
    if only is not None:
        items = items[items["entry_id"].isin([int(e) for e in only])]
    return items


def preview(
    store: Store, customer_ids: Sequence[str], template: str, as_of: date, note: str = "",
    sender_name: str = "Collections team", *, only_entries: Mapping[str, Sequence[int]] | None = None,
    recheck_with: OutreachConfig | None = None, charges: tuple[float | None, float | None] | None = None,
    version: TemplateVersion | None = None,
) -> list[Draft]:
    """Render the template for each customer: the invoices it lists as of D (`templates.invoice_scope`:
    a reminder lists only invoices past due and not held), the balance in parts, contact, note.

    `only_entries` (customer -> invoice ids) narrows each list to those invoices (a bulk filter).
    With `recheck_with`, a draft that could be queued also goes through the re-check the delivery
    runs right before sending (`policy.recheck`, with what is known now), so "sendable" here is
    what a send then does.

    `charges` (annual interest rate, stage fee) adds the interest accrued on each invoice listed and
    the fee to the template's variables (`collections.charges`; shown, not booked). `version` renders
    that version (an unsaved edit on the Templates page) instead of the template's latest."""
    compiled = CompiledTemplate(version or latest_template(store, template))
    people = recipients(store, customer_ids)
    scope = invoice_scope(template)
    with store.engine.connect() as conn:
        invoices = open_invoices(conn, list(customer_ids), as_of) if len(customer_ids) else pd.DataFrame()
        parts = balance_parts(conn, list(customer_ids), as_of) if len(customer_ids) else pd.DataFrame()
        interest = (interest_due(conn, None, as_of, charges[0]).set_index("entry_id")["interest"]
                    if charges is not None and len(customer_ids) else pd.Series(dtype=float))
    by_customer = dict(tuple(invoices.groupby("customer_id"))) if len(invoices) else {}
    parts_of = parts.set_index("customer_id").to_dict("index") if len(parts) else {}
    empty = pd.DataFrame(columns=["entry_id", "open_amount", "days_overdue", "held"])
    drafts: list[Draft] = []
    for person in people.itertuples(index=False):
        only = None if only_entries is None else only_entries.get(person.customer_id, [])
        items = _listed(by_customer.get(person.customer_id, empty), scope, only)
        rows = [
            {"document_number": r.document_number, "posting_date": pd.Timestamp(r.posting_date).date(),
             "due_date": pd.Timestamp(r.due_date).date(), "amount": float(r.amount),
             "open_amount": float(r.open_amount), "days_overdue": int(r.days_overdue),
             "interest": float(interest.get(int(r.entry_id), 0.0)) if int(r.days_overdue) > 0 else 0.0}
            for r in items.itertuples(index=False)
        ]
        account = parts_of.get(person.customer_id, {"balance": 0.0, "open_invoices_amount": 0.0, "unapplied": 0.0})
        account = {k: round(float(v), 2) for k, v in account.items()}
        context = {
            "customer_name": person.customer_name, "customer_id": person.customer_id,
            "currency": person.currency, "contact_name": person.contact_name or "Sir or Madam",
            "invoices": rows, "total": round(sum(r["open_amount"] for r in rows), 2),
            "overdue_total": round(sum(r["open_amount"] for r in rows if r["days_overdue"] > 0), 2),
            "balance": account["balance"], "open_invoices_total": account["open_invoices_amount"],
            "unapplied": account["unapplied"],
            "balance_line": balance_line(account["balance"], account["open_invoices_amount"], account["unapplied"],
                                         str(person.currency)),
            "as_of": as_of.isoformat(), "note": note.strip(), "sender_name": sender_name,
        }
        if charges is not None:
            fee = float(stage_fee(charges[1])) if context["overdue_total"] > 0 else 0.0
            context.update(interest_rate=float(charges[0] or 0), fee=fee,
                           interest_total=round(sum(r["interest"] for r in rows), 2))
            context["total_with_charges"] = round(context["overdue_total"] + context["interest_total"] + fee, 2)
        rendered = compiled.render(context)
        subject, body = rendered.subject, rendered.text
        problem = None
        if not isinstance(person.email, str) or not person.email:
            problem = "no active contact with an email address"
        elif not rows:
            problem = SCOPE_WORDS[scope]
        drafts.append(Draft(person.customer_id, person.customer_name,
                            person.email if isinstance(person.email, str) else None,
                            None if pd.isna(person.contact_id) else int(person.contact_id),
                            subject, body, [int(e) for e in items["entry_id"]], problem,
                            rendered.html, rendered.version))
    missing = set(customer_ids) - set(people["customer_id"])
    drafts += [Draft(c, "", None, None, "", "", [], "no such customer") for c in sorted(missing)]
    if recheck_with is not None:
        with store.engine.connect() as conn:
            for d in drafts:
                if d.problem is None:
                    d.problem = recheck(conn, {"customer_id": d.customer_id, "entry_ids": json.dumps(d.entry_ids),
                                               "message_id": None}, recheck_with, as_of)
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


def queue_staff_message(
    conn: sa.Connection, actor: Actor, *, idempotency_key: str, to_address: str, subject: str, body: str,
    attachment_name: str | None = None, attachment: bytes | None = None, from_address: str,
) -> tuple[int, bool]:
    """Queue one message to a member of staff (no customer: `customer_id` NULL, v25), inside the
    caller's transaction, audited; returns (message_id, queued now). Idempotent: a key already in the
    outbox keeps its first message. The caller checks the actor may send what it carries (e.g.
    `reports.monthly_pack.require_pack`); delivery skips the customer re-check and writes no activity."""
    existing = conn.execute(sa.select(messages.c.message_id).where(messages.c.idempotency_key == idempotency_key)).first()
    if existing is not None:
        return int(existing.message_id), False
    row = {
        "idempotency_key": idempotency_key, "customer_id": None, "contact_id": None, "to_address": to_address,
        "subject": subject, "body": body, "template": None, "entry_ids": "[]", "attachment_name": attachment_name,
        "attachment": attachment, "status": "queued", "attempts": 0, "created_by": actor.username,
        "created_at": datetime.now(), "message_header_id": new_message_header_id(from_address),
    }
    message_id = int(conn.execute(messages.insert().values(**row).returning(messages.c.message_id)).scalar())
    audit.record(conn, actor, "message.queue", "message", message_id, new={
        k: row[k] for k in ("to_address", "subject", "idempotency_key", "attachment_name", "message_header_id")})
    return message_id, True


def queue_messages(
    store: Store, actor: Actor, customer_ids: Sequence[str], template: str, *, action_key: str,
    as_of: date, note: str = "", attach: str | None = None, config: OutreachConfig | None = None,
    only_entries: Mapping[str, Sequence[int]] | None = None, charges: tuple[float | None, float | None] | None = None,
) -> pd.DataFrame:
    """Queue one message per customer; returns customer_id, message_id, status, reason per customer.

    Each message lists the invoices `preview` lists (narrowed by `only_entries` when given), with
    the interest and fee of `charges` when given.

    Idempotent: a customer already queued under this action keeps its first message.
    Customers without a usable email contact or open invoices are not queued (reason given).
    """
    require(actor, "act_on_customers")
    if attach is not None and attach not in ATTACHMENT_KINDS:
        raise OutreachError(f"Attachment {attach!r} is not one of {', '.join(ATTACHMENT_KINDS)}.")
    if not action_key:
        raise OutreachError("An action key is required so a repeated request never queues twice.")
    customer_ids = list(dict.fromkeys(customer_ids))
    drafts = preview(store, customer_ids, template, as_of, note, sender_name=actor.name or actor.username,
                     only_entries=only_entries, charges=charges)
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
                "body_html": d.body_html, "template_version": d.template_version,
            }
            message_id = int(conn.execute(messages.insert().values(**row).returning(messages.c.message_id)).scalar())
            audit.record(conn, actor, "message.queue", "message", message_id, new={
                k: row[k] for k in ("customer_id", "to_address", "subject", "template", "idempotency_key",
                                    "attachment_name", "message_header_id")})
            results.append({"customer_id": d.customer_id, "message_id": message_id, "status": "queued",
                            "reason": None})
    return pd.DataFrame(results, columns=["customer_id", "message_id", "status", "reason"], dtype=object)
