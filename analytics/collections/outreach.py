"""Outreach: render a template per recipient, queue it in the outbox, re-check, deliver at most once.

Flow and safety rules:
1. `preview` renders each customer's message (Jinja2 sandbox, StrictUndefined) without writing.
2. `queue_messages` writes one `messages` row per recipient, keyed by an idempotency key derived
   from the action (a key the page makes once per form) and the customer: queueing the same action
   twice queues nothing new. The statement attachment and the RFC 5322 Message-ID are made at this
   point and stored, so every attempt and a resend carry the same Message-ID.
3. `deliver` takes each queued message and, right before sending, re-checks it:
   - blocked when every invoice in it is paid or disputed by now (named in the reason);
   - blocked when the account is with a collection agency or written off;
   - blocked by the frequency cap (`frequency_cap_count`): at most `max_emails_per_customer`
     emails per customer in the last `frequency_window_days` days, whoever sent them (every team's
     email activities), plus this customer's messages that may have gone out in the window without
     an activity yet: uncertain ones handed over inside it, and ones being handed over right now
     (a live lease). A possibly-sent message counts: at most once beats twice, and so does the cap.

Delivery states (`messages.status`) and who moves them:

    queued/failed --claim--> sending --content handed over, server said 250--> sent
    sending --refused or failed before the content left, or 4xx/5xx after it--> queued (failed after
        MAX_ATTEMPTS); the server said it did not take it, so a retry is safe
    sending --content handed over, then no final reply (dropped, timed out)--> uncertain
    sending, lease ran out, content never started --recovery--> queued ("interrupted before sending")
    sending, lease ran out, content had started (or an older version's claim) --recovery--> uncertain
    uncertain --a person: mark sent--> sent;  uncertain --a person: send again--> queued, delivered
    uncertain (by recovery) --the same delivery then gets its 250--> sent

- The claim sets `claimed_by` (host:pid:nonce of one delivery run) and `lease_until` (now +
  `[outreach] lease_seconds`). Right before the first byte of the content goes out (after the
  server's 354 reply to DATA), the delivery commits `data_started_at` and extends its lease, and
  only if it still holds a live claim; otherwise it sends nothing. So a delivery that dies leaves a
  durable answer to "may it have left?": no `data_started_at` means it cannot have.
- Recovery (`recover_interrupted`: at the start of every delivery, in `retry_queued`, and in the
  app's inbox watcher loop) settles `sending` rows whose lease ran out, by that rule. Every
  outcome of a claim (sent, failed, uncertain, recovered) writes one audit line; the claim and the
  hand-over mark are part of it (the line carries them), not lines of their own.
- Every state change after the claim is conditional on the claim (`claimed_by`, status), so a
  delivery that lost its lease can never overwrite what another delivery or a person decided.
- `uncertain` is never retried automatically; the outbox and the customer's panel show it with the
  reason, and a person chooses `mark_sent` (writes the email activity, as a delivery would) or
  `send_again` (same Message-ID, so a mail client may de-duplicate), both audited.
- Leases compare with this machine's clock: deliveries sharing a PostgreSQL store across hosts
  need synchronised clocks (NTP), and a lease far longer than the SMTP timeout (defaults 300 s, 15 s).

A sent message writes an `email` activity on the customer's timeline (and a dunning run for
invoices whose due stage uses this template). `retry_queued` recovers, then delivers what is still
queued or failed.
Mode (`[outreach] mode`): "outbox" writes .eml files to `outbox_dir` (env ARDESK_OUTBOX), so a
fresh install never emails anyone; "smtp" delivers through `[smtp]` (env ARDESK_SMTP_USER /
ARDESK_SMTP_PASSWORD for credentials).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import smtplib
import socket
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.collections.dunning_schedule import record_stage_runs
from analytics.collections.statements import statement_items, statement_pdf, statement_xlsx
from analytics.ledger.open_items import CUSTOMER_OPEN_ITEMS_SQL, OPEN_ITEMS_SQL
from analytics.settings import CONFIG_DIR, load_settings
from analytics.store.connection import Store
from analytics.store.schema import activities, messages

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
    lease_seconds: float = 300  # how long a delivery holds its claim before recovery may settle it
    smtp_host: str = "localhost"
    smtp_port: int = 25
    starttls: bool = False
    smtp_timeout: float = 15  # seconds to wait for each server reply
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
            lease_seconds=_positive(out, "outreach", "lease_seconds", cls.lease_seconds),
            smtp_host=os.environ.get("ARDESK_SMTP_HOST") or smtp.get("host", "localhost"),
            smtp_port=int(os.environ.get("ARDESK_SMTP_PORT") or smtp.get("port", 25)),
            starttls=bool(smtp.get("starttls", False)),
            smtp_timeout=_positive(smtp, "smtp", "timeout_seconds", cls.smtp_timeout),
            smtp_user=os.environ.get("ARDESK_SMTP_USER"),
            smtp_password=os.environ.get("ARDESK_SMTP_PASSWORD"),
        )


def _positive(section: dict[str, Any], name: str, key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise OutreachError(f"[{name}] {key} must be a number of seconds above 0, not {value!r}.")
    return float(value)


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


# -- queue ------------------------------------------------------------------------------------

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


# -- deliver ----------------------------------------------------------------------------------

UNCERTAIN_ADVICE = "it may have reached the customer: mark it sent, or send it again (same Message-ID)"


class DeliveryUncertain(Exception):
    """The content went to the server and no final reply came back: it may have been delivered."""


class ClaimLost(Exception):
    """The delivery's lease ran out before the content left: nothing was sent."""


def frequency_cap_count(conn: sa.Connection, customer_id: str, config: OutreachConfig, now: datetime,
                        exclude_message_id: int | None = None) -> int:
    """What the frequency cap counts for a customer at `now` (the rule: module docstring, step 3).

    Email activities of every team in the window, plus messages that may have gone out in it with no
    activity yet: uncertain or being handed over since the window began (an uncertain message from
    before v7, with no hand-over time, counts from when it was queued), and messages claimed for
    delivery right now (a live lease). Orphaned claims whose lease ran out do not count.
    """
    since = now - timedelta(days=config.frequency_window_days)
    emails = conn.execute(sa.text(
        "SELECT COUNT(*) FROM activities WHERE customer_id = :c AND kind = 'email' AND occurred_at >= :since"
    ), {"c": customer_id, "since": since}).scalar()
    m = messages.c
    maybe_out = sa.select(sa.func.count()).select_from(messages).where(
        m.customer_id == customer_id,
        sa.or_(sa.and_(m.status == "uncertain", sa.func.coalesce(m.data_started_at, m.created_at) >= since),
               sa.and_(m.status == "sending", m.data_started_at >= since),
               sa.and_(m.status == "sending", m.lease_until >= now)))
    if exclude_message_id is not None:
        maybe_out = maybe_out.where(m.message_id != exclude_message_id)
    return int(emails) + int(conn.execute(maybe_out).scalar())


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
    recent = frequency_cap_count(conn, customer_id, config, datetime.now(), exclude_message_id=message["message_id"])
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
    mail["Message-ID"] = message["message_header_id"]
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


def _dot_stuffed(content: bytes) -> bytes:
    """The DATA payload: lines starting with a dot doubled, CRLF-terminated, then the lone dot."""
    payload = re.sub(rb"(?m)^\.", b"..", content)
    return payload + (b"" if payload.endswith(b"\r\n") else b"\r\n") + b".\r\n"


class _Transport:
    """One SMTP connection per delivery batch (dropped after an error), or the outbox folder.

    `send` calls `handing_over()` right before the first byte of the content leaves: in SMTP after
    the server's 354 reply to DATA (nothing before that can deliver a message), in outbox mode
    before the file is written. An error before that point, and a 4xx/5xx reply after it, are
    definite failures (the server did not take it); losing the connection or the final reply after
    it raises `DeliveryUncertain`.
    """

    def __init__(self, config: OutreachConfig) -> None:
        self.config = config
        self.smtp: smtplib.SMTP | None = None

    def send(self, mail: EmailMessage, message_id: int, handing_over: Callable[[], None]) -> None:
        if self.config.mode == "outbox":
            handing_over()
            folder = Path(self.config.outbox_dir)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{message_id:08d}.eml.tmp"
            tmp.write_bytes(bytes(mail))
            tmp.replace(folder / f"{message_id:08d}.eml")  # atomic: the file is there whole, or not at all
            return
        if self.config.mode != "smtp":
            raise OutreachError(f"Unknown outreach mode {self.config.mode!r}; use 'outbox' or 'smtp'.")
        try:
            self._send_smtp(mail, handing_over)
        except BaseException:
            self._drop()
            raise

    def _connection(self) -> smtplib.SMTP:
        if self.smtp is None:
            smtp = smtplib.SMTP(self.config.smtp_host, self.config.smtp_port, timeout=self.config.smtp_timeout)
            if self.config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.config.smtp_user:
                smtp.login(self.config.smtp_user, self.config.smtp_password or "")
            self.smtp = smtp
        return self.smtp

    def _send_smtp(self, mail: EmailMessage, handing_over: Callable[[], None]) -> None:
        # smtplib's send_message does MAIL, RCPT, DATA and the content in one call, so a drop after
        # the content could not be told from a refusal before it; the steps are driven one by one.
        smtp = self._connection()
        smtp.ehlo_or_helo_if_needed()
        sender = getaddresses([str(mail["From"])])[0][1]
        recipient = getaddresses([str(mail["To"])])[0][1]
        policy, options = email_policy.SMTP, []
        if not (sender + recipient).isascii():
            if not smtp.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError(
                    "the address needs internationalised email (SMTPUTF8), which the server does not offer")
            policy, options = email_policy.SMTPUTF8, ["SMTPUTF8", "BODY=8BITMIME"]
        content = mail.as_bytes(policy=policy)
        if smtp.has_extn("size"):
            options.append(f"size={len(content)}")
        code, reply = smtp.mail(sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        handing_over()
        try:
            smtp.send(_dot_stuffed(content))
            code, reply = smtp.getreply()
        except OSError as exc:  # smtplib's errors are OSErrors too: a dropped connection, a timeout
            raise DeliveryUncertain(
                f"the server received the message but never confirmed it ({type(exc).__name__}: {exc}); "
                f"{UNCERTAIN_ADVICE}") from exc
        if code != 250:  # an answer after the content is a refusal: the server did not take it
            raise smtplib.SMTPDataError(code, reply)

    def _drop(self) -> None:
        # After an error the session is in an unknown state; mid-DATA even QUIT would be read as
        # content, so the socket is just closed (the server discards an unterminated message).
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

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


def _held_by(message_id: int, claim: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The message is still `sending` under this delivery's claim."""
    return (messages.c.message_id == message_id, messages.c.status == "sending", messages.c.claimed_by == claim)


def _status_now(conn: sa.Connection, message_id: int) -> str:
    return str(conn.execute(sa.select(messages.c.status).where(messages.c.message_id == message_id)).scalar())


def recover_interrupted(store: Store, actor: Actor, *, now: datetime | None = None) -> pd.DataFrame:
    """Settle `sending` messages whose delivery lease ran out: back to `queued` when none of the
    content had left (no `data_started_at`; `failed` after MAX_ATTEMPTS), else `uncertain` (also a
    claim made by a version that kept no lease). Returns message_id, customer_id, status, reason."""
    require(actor, "act_on_customers")
    now = now or datetime.now()
    m = messages.c
    expired = sa.or_(m.lease_until.is_(None), m.lease_until < now)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(m.message_id, m.customer_id, m.claimed_by, m.lease_until, m.data_started_at,
                                      m.attempts).where(m.status == "sending", expired)
                            .order_by(m.message_id)).mappings().all()
    results: list[dict[str, Any]] = []
    for r in rows:
        held = [m.message_id == r["message_id"], m.status == "sending", expired,
                m.claimed_by.is_not_distinct_from(r["claimed_by"])]
        if r["lease_until"] is not None and r["data_started_at"] is None:
            status = "failed" if int(r["attempts"]) >= MAX_ATTEMPTS else "queued"
            reason = (f"delivery interrupted before sending: the claim of {r['claimed_by']} ran out at "
                      f"{r['lease_until']:%Y-%m-%d %H:%M:%S} before any of the message left; nothing was sent")
            held.append(m.data_started_at.is_(None))
        elif r["data_started_at"] is not None:
            status = "uncertain"
            reason = (f"delivery interrupted while the message was being handed to the server (by "
                      f"{r['claimed_by']}, from {r['data_started_at']:%Y-%m-%d %H:%M:%S}); {UNCERTAIN_ADVICE}")
        else:
            status = "uncertain"
            reason = ("delivery interrupted under an earlier AR Desk version, which did not record whether the "
                      f"message left; {UNCERTAIN_ADVICE}")
        with store.write() as conn:
            if conn.execute(messages.update().where(*held).values(status=status, last_error=reason)).rowcount:
                audit.record(conn, actor, "message.recover", "message", r["message_id"],
                             old={"status": "sending", "claimed_by": r["claimed_by"],
                                  "lease_until": r["lease_until"], "data_started_at": r["data_started_at"]},
                             new={"status": status}, detail=reason)
                results.append({"message_id": int(r["message_id"]), "customer_id": r["customer_id"],
                                "status": status, "reason": reason})
    return pd.DataFrame(results, columns=["message_id", "customer_id", "status", "reason"], dtype=object)


def deliver(
    store: Store, actor: Actor, message_ids: Sequence[int], *, config: OutreachConfig | None = None,
    as_of: date | None = None,
) -> pd.DataFrame:
    """Re-check and send each queued (or failed) message once; returns message_id, customer_id,
    status, reason. Interrupted deliveries are settled first (`recover_interrupted`). Messages
    sent, blocked, cancelled, uncertain or being sent by another delivery are reported and left alone."""
    require(actor, "act_on_customers")
    config = config or OutreachConfig.from_settings()
    check_date = as_of or date.today()
    recover_interrupted(store, actor)
    claim = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:120]  # this delivery run
    transport = _Transport(config)
    results: list[dict[str, Any]] = []
    try:
        for message_id in message_ids:
            results.append(_deliver_one(store, actor, int(message_id), config, check_date, transport, claim))
    finally:
        transport.close()
    return pd.DataFrame(results, columns=["message_id", "customer_id", "status", "reason"], dtype=object)


def _why_left_alone(message: dict[str, Any]) -> str:
    if message["status"] == "uncertain":
        return f"not retried automatically: {UNCERTAIN_ADVICE}"
    if message["status"] == "sending" and message["lease_until"] is not None:
        return f"being delivered by {message['claimed_by']} (claim held until {message['lease_until']:%H:%M:%S})"
    return f"already {message['status']}"


def _deliver_one(
    store: Store, actor: Actor, message_id: int, config: OutreachConfig, check_date: date, transport: _Transport,
    claim: str,
) -> dict[str, Any]:
    with store.write() as conn:
        row = conn.execute(sa.select(messages).where(messages.c.message_id == message_id)).mappings().first()
        if row is None:
            return {"message_id": message_id, "customer_id": None, "status": "missing", "reason": "no such message"}
        message = dict(row)
        result = {"message_id": message_id, "customer_id": message["customer_id"]}
        if message["status"] not in ("queued", "failed"):
            return {**result, "status": message["status"], "reason": _why_left_alone(message)}
        reason = _recheck(conn, message, config, check_date)
        if reason:
            conn.execute(messages.update().where(messages.c.message_id == message_id)
                         .values(status="blocked", last_error=reason))
            audit.record(conn, actor, "message.block", "message", message_id,
                         old={"status": message["status"]}, new={"status": "blocked"}, detail=reason)
            return {**result, "status": "blocked", "reason": reason}
        message["message_header_id"] = message["message_header_id"] or new_message_header_id(config.from_address)
        claimed = conn.execute(messages.update().where(
            messages.c.message_id == message_id, messages.c.status.in_(("queued", "failed"))
        ).values(status="sending", attempts=messages.c.attempts + 1, claimed_by=claim,
                 lease_until=datetime.now() + timedelta(seconds=config.lease_seconds), data_started_at=None,
                 message_header_id=message["message_header_id"])).rowcount
        if claimed != 1:
            return {**result, "status": "skipped", "reason": "taken by another delivery"}
    attempts = int(message["attempts"]) + 1
    handed_over: list[datetime] = []

    def handing_over() -> None:
        handed_over.append(_hand_over(store, message_id, claim, config))

    try:
        transport.send(_email(message, config), message_id, handing_over)
    except DeliveryUncertain as exc:
        return {**result, **_settle_uncertain(store, actor, message_id, claim, handed_over, str(exc))}
    except Exception as exc:  # any other error is definite (nothing was taken): recorded on the message
        error = f"{type(exc).__name__}: {exc}"[:1000]
        status = "failed" if attempts >= MAX_ATTEMPTS else "queued"
        with store.write() as conn:
            if conn.execute(messages.update().where(*_held_by(message_id, claim))
                            .values(status=status, last_error=error, data_started_at=None)).rowcount:
                audit.record(conn, actor, "message.fail", "message", message_id, old={"status": "sending"},
                             new={"status": status, "attempts": attempts, "claimed_by": claim}, detail=error)
            else:  # the claim ran out meanwhile: recovery (or another delivery) settled it
                status = _status_now(conn, message_id)
        return {**result, "status": status, "reason": error}
    with store.write() as conn:
        where = (messages.c.message_id == message_id, messages.c.claimed_by == claim,
                 messages.c.status.in_(("sending", "uncertain")))  # a reply that came after recovery
        if _record_sent(conn, actor, message, datetime.now(), check_date, where=where, old_status="sending",
                        action="message.send", extra={"claimed_by": claim, "data_started_at": handed_over[0]}):
            return {**result, "status": "sent", "reason": None}
        reason = ("the server confirmed it after the claim had run out and it had been settled otherwise; "
                  "it may have gone out twice")
        audit.record(conn, actor, "message.late_confirmation", "message", message_id,
                     new={"status": _status_now(conn, message_id), "claimed_by": claim}, detail=reason)
    return {**result, "status": "sent", "reason": reason}


def _hand_over(store: Store, message_id: int, claim: str, config: OutreachConfig) -> datetime:
    """Commit that the content starts to leave now, extending the lease, while the claim is live;
    raise `ClaimLost` (nothing sent) when it is not."""
    now = datetime.now()
    with store.write() as conn:
        marked = conn.execute(messages.update().where(*_held_by(message_id, claim), messages.c.lease_until >= now)
                              .values(data_started_at=now,
                                      lease_until=now + timedelta(seconds=config.lease_seconds))).rowcount
    if marked != 1:
        raise ClaimLost("the delivery's claim ran out before the message was handed to the server; nothing was sent")
    return now


def _settle_uncertain(store: Store, actor: Actor, message_id: int, claim: str, handed_over: list[datetime],
                      reason: str) -> dict[str, Any]:
    with store.write() as conn:
        if conn.execute(messages.update().where(*_held_by(message_id, claim))
                        .values(status="uncertain", last_error=reason)).rowcount:
            audit.record(conn, actor, "message.uncertain", "message", message_id, old={"status": "sending"},
                         new={"status": "uncertain", "claimed_by": claim,
                              "data_started_at": handed_over[0] if handed_over else None}, detail=reason)
            return {"status": "uncertain", "reason": reason}
        return {"status": _status_now(conn, message_id), "reason": reason}


def _record_sent(
    conn: sa.Connection, actor: Actor, message: dict[str, Any], sent_at: datetime, check_date: date, *,
    where: tuple[sa.ColumnElement[bool], ...], old_status: str, action: str, extra: dict[str, Any] | None = None,
    detail: str | None = None,
) -> bool:
    """Mark the message sent (when `where` still holds) with its email activity, dunning runs and
    audit line; False when it no longer holds (nothing written)."""
    message_id = message["message_id"]
    if conn.execute(messages.update().where(*where)
                    .values(status="sent", sent_at=sent_at, last_error=None)).rowcount != 1:
        return False
    activity_id = int(conn.execute(activities.insert().values(
        customer_id=message["customer_id"], kind="email", occurred_at=sent_at, author=actor.username,
        department=_department(conn, actor), subject=message["subject"], body=message["body"],
        outcome="sent", idempotency_key=f"email-{message['idempotency_key']}",
    ).returning(activities.c.activity_id)).scalar())
    conn.execute(messages.update().where(messages.c.message_id == message_id).values(activity_id=activity_id))
    runs = record_stage_runs(conn, message["customer_id"], json.loads(message["entry_ids"] or "[]"),
                             message["template"], check_date)
    audit.record(conn, actor, action, "message", message_id, old={"status": old_status},
                 new={"status": "sent", "activity_id": activity_id, "to_address": message["to_address"],
                      "message_header_id": message["message_header_id"], "dunning_runs": runs, **(extra or {})},
                 detail=detail)
    return True


def _uncertain_message(conn: sa.Connection, message_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(messages).where(messages.c.message_id == message_id)).mappings().first()
    if row is None:
        raise OutreachError(f"There is no message {message_id}.")
    if row["status"] != "uncertain":
        raise OutreachError(f"Message {message_id} is {row['status']}, not uncertain: there is nothing to decide.")
    return dict(row)


def mark_sent(store: Store, actor: Actor, message_id: int) -> dict[str, Any]:
    """A person's decision that an uncertain message did arrive: it becomes `sent` (as of when it
    was handed over) with its email activity and dunning runs, like a confirmed delivery."""
    require(actor, "act_on_customers")
    with store.write() as conn:
        message = _uncertain_message(conn, message_id)
        sent_at = message["data_started_at"] or datetime.now()
        where = (messages.c.message_id == message_id, messages.c.status == "uncertain")
        _record_sent(conn, actor, message, sent_at, sent_at.date(), where=where, old_status="uncertain",
                     action="message.mark_sent", detail=f"marked sent by {actor.username}; was: {message['last_error']}")
    return {"message_id": message_id, "customer_id": message["customer_id"], "status": "sent", "reason": None}


def send_again(store: Store, actor: Actor, message_id: int, *, config: OutreachConfig | None = None,
               as_of: date | None = None) -> dict[str, Any]:
    """A person's decision that an uncertain message must go again: re-queued with the same
    Message-ID (a mail client may then de-duplicate) and delivered now, re-checked like any other."""
    require(actor, "act_on_customers")
    with store.write() as conn:
        message = _uncertain_message(conn, message_id)
        conn.execute(messages.update().where(messages.c.message_id == message_id, messages.c.status == "uncertain")
                     .values(status="queued", claimed_by=None, lease_until=None, data_started_at=None,
                             last_error=None))
        audit.record(conn, actor, "message.send_again", "message", message_id,
                     old={"status": "uncertain", "data_started_at": message["data_started_at"]},
                     new={"status": "queued", "message_header_id": message["message_header_id"]},
                     detail=f"sent again by {actor.username}; was: {message['last_error']}")
    return deliver(store, actor, [message_id], config=config, as_of=as_of).iloc[0].to_dict()


def send_now(
    store: Store, actor: Actor, customer_ids: Sequence[str], template: str, *, action_key: str, as_of: date,
    note: str = "", attach: str | None = None, config: OutreachConfig | None = None,
) -> pd.DataFrame:
    """Queue (idempotently) and deliver in one step: what the Send buttons do.

    Returns one row per customer: customer_id, message_id, status, reason.
    """
    config = config or OutreachConfig.from_settings()
    queued = queue_messages(store, actor, customer_ids, template, action_key=action_key, as_of=as_of,
                            note=note, attach=attach, config=config)
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
    """Settle interrupted deliveries, then deliver every message still queued or failed, oldest first
    (each at most once per call). One row per message touched: message_id, customer_id, status,
    reason, recovered (why recovery settled it first, or None)."""
    require(actor, "act_on_customers")
    recovered = recover_interrupted(store, actor)
    ids = store.read("SELECT message_id FROM messages WHERE status IN ('queued', 'failed') ORDER BY message_id")
    sent = deliver(store, actor, [int(i) for i in ids["message_id"]], config=config, as_of=as_of)
    why = dict(zip(recovered["message_id"], recovered["reason"], strict=True))
    rows = [{**r, "recovered": why.get(r["message_id"])} for r in sent.to_dict("records")]
    rows += [{**r, "recovered": r["reason"]} for r in recovered.to_dict("records") if r["status"] == "uncertain"]
    return pd.DataFrame(sorted(rows, key=lambda r: r["message_id"]),
                        columns=["message_id", "customer_id", "status", "reason", "recovered"], dtype=object)


def outbox(store: Store, customer_id: str | None = None, statuses: Sequence[str] | None = None,
           limit: int = 200) -> pd.DataFrame:
    """Messages newest first, with status, attempts, the last error (for an uncertain message: why
    it may have gone out) and the delivery claim; no bodies or attachments."""
    where, params = ["1 = 1"], {"limit": limit}
    if customer_id:
        where.append("customer_id = :customer_id")
        params["customer_id"] = customer_id
    for i, s in enumerate(statuses or ()):
        params[f"s{i}"] = s
    if statuses:
        where.append("status IN (" + ", ".join(f":s{i}" for i in range(len(statuses))) + ")")
    sql = ("SELECT message_id, customer_id, to_address, subject, template, status, attempts, last_error, "  # noqa: S608
           "created_by, created_at, sent_at, attachment_name, message_header_id, claimed_by, lease_until, "
           "data_started_at FROM messages WHERE " + " AND ".join(where) + " ORDER BY message_id DESC LIMIT :limit")
    return store.read(sql, params)


def last_contact(store: Store, customer_id: str) -> dict[str, Any] | None:
    """Who contacted the customer last (email, letter or call, any team) and when."""
    frame = store.read(
        "SELECT kind, author, department, occurred_at, subject FROM activities "
        "WHERE customer_id = :c AND kind IN ('email', 'letter', 'call') ORDER BY occurred_at DESC LIMIT 1",
        {"c": customer_id})
    return None if frame.empty else frame.iloc[0].to_dict()


def emails_in_window(store: Store, customer_id: str, config: OutreachConfig | None = None) -> int:
    """What the frequency cap counts for the customer now (`frequency_cap_count`)."""
    config = config or OutreachConfig.from_settings()
    with store.engine.connect() as conn:
        return frequency_cap_count(conn, customer_id, config, datetime.now())
