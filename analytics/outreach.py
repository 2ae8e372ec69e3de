"""Outreach: render a template per recipient, queue it in the outbox, re-check, deliver exactly once.

Flow and safety rules:
1. `preview` renders each customer's message (Jinja2 sandbox, StrictUndefined) without writing.
2. `queue_messages` writes one `messages` row per recipient, keyed by an idempotency key derived
   from the action (a key the page makes once per form) and the customer: queueing the same action
   twice queues nothing new. The statement attachment is built at this point.
3. `deliver` takes each queued message and, right before sending, re-checks it:
   - blocked when every invoice in it is paid or disputed by now (named in the reason);
   - blocked when the account is with a collection agency or written off;
   - blocked by the frequency cap: at most `max_emails_per_customer` email activities per customer
     in the last `frequency_window_days` days, whoever sent them (every team), plus messages
     being handed to the server right now.
   A message is claimed (status `sending`) before it leaves, so two deliveries never send it
   twice; on success it becomes `sent` and writes an `email` activity on the customer's timeline
   (and a dunning run for invoices whose due stage uses this template). A failed attempt leaves it
   `queued` with `last_error` and `attempts`; after `MAX_ATTEMPTS` it is `failed`. `retry_queued`
   delivers what is still queued or failed. A process that dies mid-send leaves `sending`: shown,
   never resent automatically (at most once beats twice).
Mode (`[outreach] mode`): "outbox" writes .eml files to `outbox_dir` (env ARDESK_OUTBOX), so a
fresh install never emails anyone; "smtp" delivers through `[smtp]` (env ARDESK_SMTP_USER /
ARDESK_SMTP_PASSWORD for credentials).
"""

from __future__ import annotations

import hashlib
import json
import os
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from analytics import audit
from analytics.ledger import CUSTOMER_OPEN_ITEMS_SQL, OPEN_ITEMS_SQL
from analytics.roles import Actor, require
from analytics.schema import activities, messages
from analytics.settings import CONFIG_DIR, load_settings
from analytics.statements import statement_items, statement_pdf, statement_xlsx
from analytics.store import Store

TEMPLATES_DIR = CONFIG_DIR / "templates"
MAX_ATTEMPTS = 5
ATTACHMENT_KINDS = ("pdf", "xlsx")
CONTACT_KINDS = ("email", "letter", "call")


class OutreachError(ValueError):
    """An outreach request that cannot be carried out, explained in plain words."""


@dataclass(frozen=True)
class OutreachConfig:
    mode: str = "outbox"
    outbox_dir: Path = Path("data/outbox")
    from_address: str = "collections@ardesk.example"
    max_emails_per_customer: int = 3
    frequency_window_days: int = 7
    smtp_host: str = "localhost"
    smtp_port: int = 25
    starttls: bool = False
    smtp_user: str | None = field(default=None, repr=False)
    smtp_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls) -> OutreachConfig:
        settings = load_settings()
        out, smtp = settings.section("outreach"), settings.section("smtp")
        outbox = os.environ.get("ARDESK_OUTBOX")
        return cls(
            mode=os.environ.get("ARDESK_OUTREACH_MODE") or out.get("mode", "outbox"),
            outbox_dir=Path(outbox) if outbox else settings.path("outreach", "outbox_dir"),
            from_address=out.get("from_address", cls.from_address),
            max_emails_per_customer=int(out.get("max_emails_per_customer", 3)),
            frequency_window_days=int(out.get("frequency_window_days", 7)),
            smtp_host=os.environ.get("ARDESK_SMTP_HOST") or smtp.get("host", "localhost"),
            smtp_port=int(os.environ.get("ARDESK_SMTP_PORT") or smtp.get("port", 25)),
            starttls=bool(smtp.get("starttls", False)),
            smtp_user=os.environ.get("ARDESK_SMTP_USER"),
            smtp_password=os.environ.get("ARDESK_SMTP_PASSWORD"),
        )


# -- templates --------------------------------------------------------------------------------

def list_templates() -> list[str]:
    """Template names (files `config/templates/<name>.j2`)."""
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.j2"))


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(loader=FileSystemLoader(TEMPLATES_DIR), undefined=StrictUndefined,
                                autoescape=False, keep_trailing_newline=True)


def render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of a template: its first line is `Subject: ...`, then a blank line, then the body."""
    if template not in list_templates():
        raise OutreachError(f"There is no template {template!r}; choose one of {', '.join(list_templates())}.")
    try:
        text = _environment().get_template(f"{template}.j2").render(**context)
    except TemplateError as exc:
        raise OutreachError(f"Template {template!r} could not be rendered: {exc}") from None
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise OutreachError(f"Template {template!r} must start with a 'Subject:' line.")
    return first.removeprefix("Subject:").strip(), body.lstrip("\n")


# -- recipients and drafts --------------------------------------------------------------------

def _ids_stmt(sql: str) -> sa.TextClause:
    return sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))


def _frame(conn: sa.Connection, stmt: sa.TextClause, params: dict[str, Any]) -> pd.DataFrame:
    result = conn.execute(stmt, params)
    frame = pd.DataFrame(result.mappings().all(), columns=list(result.keys()))
    for col in frame.columns:
        if frame[col].map(lambda v: type(v).__name__ == "Decimal").any():
            frame[col] = frame[col].astype(float)
    return frame


RECIPIENTS_SQL = """
SELECT c.customer_id, c.name AS customer_name, c.currency, c.status,
       ct.contact_id, ct.name AS contact_name, ct.email
FROM customers c
LEFT JOIN (
    SELECT contact_id, customer_id, name, email,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY
               CASE WHEN role = 'accounts_payable' THEN 0 ELSE 1 END,
               CASE WHEN is_primary THEN 0 ELSE 1 END, contact_id) AS rn
    FROM contacts WHERE active AND email LIKE '%_@_%'
) ct ON ct.customer_id = c.customer_id AND ct.rn = 1
WHERE c.customer_id IN :ids
ORDER BY c.customer_id
"""


def recipients(store: Store, customer_ids: Sequence[str]) -> pd.DataFrame:
    """Who each customer's message goes to: the active accounts-payable contact with an email,
    else the primary contact with one, else any contact with one (email None: nobody usable)."""
    if not customer_ids:
        return pd.DataFrame(columns=["customer_id", "customer_name", "currency", "status",
                                     "contact_id", "contact_name", "email"])
    with store.engine.connect() as conn:
        return _frame(conn, _ids_stmt(RECIPIENTS_SQL), {"ids": list(customer_ids)})


def _open_invoices(conn: sa.Connection, customer_ids: Sequence[str], as_of: date) -> pd.DataFrame:
    sql = f"""
    WITH items AS ({OPEN_ITEMS_SQL})
    SELECT customer_id, entry_id, document_number, posting_date, due_date, amount, open_amount,
           CASE WHEN days_past_due > 0 THEN days_past_due ELSE 0 END AS days_overdue
    FROM items WHERE open_amount > 0 AND customer_id IN :ids
    ORDER BY customer_id, due_date, document_number
    """  # noqa: S608 - composed from constants only
    params = {"as_of": as_of, "reporting": load_settings().reporting_currency, "ids": list(customer_ids)}
    return _frame(conn, _ids_stmt(sql), params)


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
        invoices = _open_invoices(conn, list(customer_ids), as_of) if len(customer_ids) else pd.DataFrame()
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


# -- queue ------------------------------------------------------------------------------------

def queue_messages(
    store: Store, actor: Actor, customer_ids: Sequence[str], template: str, *, action_key: str,
    as_of: date, note: str = "", attach: str | None = None,
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
            }
            message_id = int(conn.execute(messages.insert().values(**row).returning(messages.c.message_id)).scalar())
            audit.record(conn, actor, "message.queue", "message", message_id, new={
                k: row[k] for k in ("customer_id", "to_address", "subject", "template", "idempotency_key",
                                    "attachment_name")})
            results.append({"customer_id": d.customer_id, "message_id": message_id, "status": "queued",
                            "reason": None})
    return pd.DataFrame(results, columns=["customer_id", "message_id", "status", "reason"], dtype=object)


# -- deliver ----------------------------------------------------------------------------------

def _recheck(conn: sa.Connection, message: dict[str, Any], config: OutreachConfig, as_of: date) -> str | None:
    """Why this message must not go out now, or None when it may."""
    customer_id = message["customer_id"]
    status = conn.execute(sa.text("SELECT status FROM customers WHERE customer_id = :c"), {"c": customer_id}).scalar()
    if status in ("with_agency", "written_off"):
        return f"the account is {status.replace('_', ' ')}; it is no longer contacted by collections"
    entry_ids = json.loads(message["entry_ids"] or "[]")
    if entry_ids:
        sql = f"""
        WITH items AS ({CUSTOMER_OPEN_ITEMS_SQL})
        SELECT e.entry_id, e.document_number, COALESCE(i.open_amount, 0) AS open_amount,
               CASE WHEN EXISTS (SELECT 1 FROM activities a WHERE a.kind = 'dispute' AND a.status = 'open'
                                 AND a.customer_id = e.customer_id
                                 AND (a.entry_id = e.entry_id OR a.entry_id IS NULL))
                    THEN 1 ELSE 0 END AS disputed
        FROM ledger_entries e LEFT JOIN items i ON i.entry_id = e.entry_id
        WHERE e.entry_id IN :ids
        """  # noqa: S608 - composed from constants only
        state = _frame(conn, _ids_stmt(sql), {"as_of": as_of, "reporting": load_settings().reporting_currency,
                                              "ids": entry_ids, "customer_id": customer_id})
        closed = state[(state.open_amount <= 0) | (state.disputed == 1)]
        if len(closed) == len(entry_ids):
            named = ", ".join(
                f"{r.document_number} {'disputed' if r.disputed else 'paid'}"
                for r in closed.sort_values("document_number").itertuples(index=False))
            return f"every invoice in it is paid or disputed now ({named})"
    since = datetime.now() - timedelta(days=config.frequency_window_days)
    recent = conn.execute(sa.text(
        "SELECT COUNT(*) FROM activities WHERE customer_id = :c AND kind = 'email' AND occurred_at >= :since"
    ), {"c": customer_id, "since": since}).scalar() + conn.execute(sa.text(
        "SELECT COUNT(*) FROM messages WHERE customer_id = :c AND status = 'sending' AND message_id <> :m"
    ), {"c": customer_id, "m": message["message_id"]}).scalar()
    if recent >= config.max_emails_per_customer:
        last = conn.execute(sa.text(
            "SELECT author, occurred_at FROM activities WHERE customer_id = :c AND kind = 'email' "
            "ORDER BY occurred_at DESC LIMIT 1"), {"c": customer_id}).first()
        last_text = f"; last by {last.author} at {last.occurred_at:%Y-%m-%d %H:%M}" if last else ""
        return (f"frequency cap: {recent} emails to this customer in the last {config.frequency_window_days} "
                f"days (limit {config.max_emails_per_customer}){last_text}")
    return None


def _email(message: dict[str, Any], config: OutreachConfig) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = config.from_address
    mail["To"] = message["to_address"]
    mail["Subject"] = message["subject"]
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain=config.from_address.partition("@")[2] or "ardesk.local")
    mail["X-ARDesk-Key"] = message["idempotency_key"]
    mail.set_content(message["body"])
    if message.get("attachment") is not None:
        name = message["attachment_name"] or "statement.pdf"
        if name.endswith(".pdf"):
            maintype, subtype = "application", "pdf"
        else:
            maintype, subtype = "application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        mail.add_attachment(bytes(message["attachment"]), maintype=maintype, subtype=subtype, filename=name)
    return mail


class _Transport:
    """One SMTP connection per delivery batch (reopened after an error), or the outbox folder."""

    def __init__(self, config: OutreachConfig) -> None:
        self.config = config
        self.smtp: smtplib.SMTP | None = None

    def send(self, mail: EmailMessage, message_id: int) -> None:
        if self.config.mode == "outbox":
            folder = Path(self.config.outbox_dir)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{message_id:08d}.eml.tmp"
            tmp.write_bytes(bytes(mail))
            tmp.replace(folder / f"{message_id:08d}.eml")
            return
        if self.config.mode != "smtp":
            raise OutreachError(f"Unknown outreach mode {self.config.mode!r}; use 'outbox' or 'smtp'.")
        try:
            if self.smtp is None:
                smtp = smtplib.SMTP(self.config.smtp_host, self.config.smtp_port, timeout=15)
                if self.config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.config.smtp_user:
                    smtp.login(self.config.smtp_user, self.config.smtp_password or "")
                self.smtp = smtp
            self.smtp.send_message(mail)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except Exception:  # noqa: S110 - the connection is being dropped anyway
                pass
            self.smtp = None


def _department(conn: sa.Connection, actor: Actor) -> str:
    team = conn.execute(sa.text("SELECT team FROM users WHERE username = :u"), {"u": actor.username}).scalar()
    return team or "collections"


def deliver(
    store: Store, actor: Actor, message_ids: Sequence[int], *, config: OutreachConfig | None = None,
    as_of: date | None = None,
) -> pd.DataFrame:
    """Re-check and send each queued (or failed) message once; returns message_id, customer_id,
    status, reason. Messages already sent, blocked or cancelled are reported and left alone."""
    require(actor, "act_on_customers")
    config = config or OutreachConfig.from_settings()
    check_date = as_of or date.today()
    transport = _Transport(config)
    results: list[dict[str, Any]] = []
    try:
        for message_id in message_ids:
            results.append(_deliver_one(store, actor, int(message_id), config, check_date, transport))
    finally:
        transport.close()
    return pd.DataFrame(results, columns=["message_id", "customer_id", "status", "reason"], dtype=object)


def _deliver_one(
    store: Store, actor: Actor, message_id: int, config: OutreachConfig, check_date: date, transport: _Transport,
) -> dict[str, Any]:
    with store.write() as conn:
        row = conn.execute(sa.select(messages).where(messages.c.message_id == message_id)).mappings().first()
        if row is None:
            return {"message_id": message_id, "customer_id": None, "status": "missing", "reason": "no such message"}
        message = dict(row)
        result = {"message_id": message_id, "customer_id": message["customer_id"]}
        if message["status"] not in ("queued", "failed"):
            return {**result, "status": message["status"], "reason": f"already {message['status']}"}
        reason = _recheck(conn, message, config, check_date)
        if reason:
            conn.execute(messages.update().where(messages.c.message_id == message_id)
                         .values(status="blocked", last_error=reason))
            audit.record(conn, actor, "message.block", "message", message_id,
                         old={"status": message["status"]}, new={"status": "blocked"}, detail=reason)
            return {**result, "status": "blocked", "reason": reason}
        claimed = conn.execute(messages.update().where(
            messages.c.message_id == message_id, messages.c.status.in_(("queued", "failed"))
        ).values(status="sending", attempts=messages.c.attempts + 1)).rowcount
        if claimed != 1:
            return {**result, "status": "skipped", "reason": "taken by another delivery"}
    attempts = int(message["attempts"]) + 1
    try:
        transport.send(_email(message, config), message_id)
    except Exception as exc:  # any delivery error is recorded on the message, never lost
        error = f"{type(exc).__name__}: {exc}"[:1000]
        status = "failed" if attempts >= MAX_ATTEMPTS else "queued"
        with store.write() as conn:
            conn.execute(messages.update().where(messages.c.message_id == message_id)
                         .values(status=status, last_error=error))
            audit.record(conn, actor, "message.fail", "message", message_id, old={"status": "sending"},
                         new={"status": status, "attempts": attempts}, detail=error)
        return {**result, "status": status, "reason": error}
    now = datetime.now()
    with store.write() as conn:
        activity_id = int(conn.execute(activities.insert().values(
            customer_id=message["customer_id"], kind="email", occurred_at=now, author=actor.username,
            department=_department(conn, actor), subject=message["subject"], body=message["body"],
            outcome="sent", idempotency_key=f"email-{message['idempotency_key']}",
        ).returning(activities.c.activity_id)).scalar())
        conn.execute(messages.update().where(messages.c.message_id == message_id).values(
            status="sent", sent_at=now, last_error=None, activity_id=activity_id))
        from analytics.dunning_schedule import record_stage_runs

        runs = record_stage_runs(conn, message["customer_id"], json.loads(message["entry_ids"] or "[]"),
                                 message["template"], check_date)
        audit.record(conn, actor, "message.send", "message", message_id, old={"status": "sending"},
                     new={"status": "sent", "activity_id": activity_id, "to_address": message["to_address"],
                          "dunning_runs": runs})
    return {**result, "status": "sent", "reason": None}


def send_now(
    store: Store, actor: Actor, customer_ids: Sequence[str], template: str, *, action_key: str, as_of: date,
    note: str = "", attach: str | None = None, config: OutreachConfig | None = None,
) -> pd.DataFrame:
    """Queue (idempotently) and deliver in one step: what the Send buttons do.

    Returns one row per customer: customer_id, message_id, status, reason.
    """
    queued = queue_messages(store, actor, customer_ids, template, action_key=action_key, as_of=as_of,
                            note=note, attach=attach)
    ids = [int(m) for m in queued["message_id"].dropna()]
    sent = deliver(store, actor, ids, config=config)
    if sent.empty:
        return queued
    merged = queued.merge(sent[["message_id", "status", "reason"]], on="message_id", how="left",
                          suffixes=("_queue", ""))
    merged["status"] = merged["status"].fillna(merged["status_queue"])
    merged["reason"] = merged["reason"].where(merged["reason"].notna(), merged["reason_queue"])
    return merged[["customer_id", "message_id", "status", "reason"]]


def retry_queued(store: Store, actor: Actor, *, config: OutreachConfig | None = None,
                 as_of: date | None = None) -> pd.DataFrame:
    """Deliver every message still queued or failed, oldest first (each at most once per call)."""
    require(actor, "act_on_customers")
    ids = store.read("SELECT message_id FROM messages WHERE status IN ('queued', 'failed') ORDER BY message_id")
    return deliver(store, actor, [int(i) for i in ids["message_id"]], config=config, as_of=as_of)


def outbox(store: Store, customer_id: str | None = None, statuses: Sequence[str] | None = None,
           limit: int = 200) -> pd.DataFrame:
    """Messages newest first, with status, attempts and the last error (no bodies or attachments)."""
    where, params = ["1 = 1"], {"limit": limit}
    if customer_id:
        where.append("customer_id = :customer_id")
        params["customer_id"] = customer_id
    for i, s in enumerate(statuses or ()):
        params[f"s{i}"] = s
    if statuses:
        where.append("status IN (" + ", ".join(f":s{i}" for i in range(len(statuses))) + ")")
    sql = ("SELECT message_id, customer_id, to_address, subject, template, status, attempts, last_error, "  # noqa: S608
           "created_by, created_at, sent_at, attachment_name FROM messages WHERE " + " AND ".join(where)
           + " ORDER BY message_id DESC LIMIT :limit")
    return store.read(sql, params)


def last_contact(store: Store, customer_id: str) -> dict[str, Any] | None:
    """Who contacted the customer last (email, letter or call, any team) and when."""
    frame = store.read(
        "SELECT kind, author, department, occurred_at, subject FROM activities "
        "WHERE customer_id = :c AND kind IN ('email', 'letter', 'call') ORDER BY occurred_at DESC LIMIT 1",
        {"c": customer_id})
    return None if frame.empty else frame.iloc[0].to_dict()


def emails_in_window(store: Store, customer_id: str, config: OutreachConfig | None = None) -> int:
    """Email activities to the customer within the frequency window (what the cap counts)."""
    config = config or OutreachConfig.from_settings()
    since = datetime.now() - timedelta(days=config.frequency_window_days)
    return int(store.scalar(
        "SELECT COUNT(*) FROM activities WHERE customer_id = :c AND kind = 'email' AND occurred_at >= :since",
        {"c": customer_id, "since": since}))
