"""Delivery: claim each queued message, re-check it, hand it to the transport, and record what
happened, never sending a message twice.

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
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.portal_tokens import PORTAL_LINK_PLACEHOLDER, insert_link, link_url
from analytics.access.roles import Actor, require
from analytics.collections.dunning_schedule import record_stage_runs
from analytics.collections.outreach.config import OutreachConfig, OutreachError
from analytics.collections.outreach.policy import recheck
from analytics.collections.outreach.queue import new_message_header_id, queue_messages
from analytics.collections.outreach.transport import (
    UNCERTAIN_ADVICE,
    DeliveryUncertain,
    Transport,
    build_email,
)
from analytics.store.connection import Store
from analytics.store.schema import activities, messages

MAX_ATTEMPTS = 5


class ClaimLost(Exception):
    """The delivery's lease ran out before the content left: nothing was sent."""


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
    transport = Transport(config)
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
    store: Store, actor: Actor, message_id: int, config: OutreachConfig, check_date: date, transport: Transport,
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
        # the re-check is about a customer; a message to staff (the monthly pack) has none
        reason = None if message["customer_id"] is None else recheck(conn, message, config, check_date)
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
        outgoing = _with_portal_link(conn, actor, message)
    attempts = int(message["attempts"]) + 1
    handed_over: list[datetime] = []

    def handing_over() -> None:
        handed_over.append(_hand_over(store, message_id, claim, config))

    try:
        transport.send(build_email(outgoing, config), message_id, handing_over)
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


def _with_portal_link(conn: sa.Connection, actor: Actor, message: dict[str, Any]) -> dict[str, Any]:
    """The email as it goes out: where the stored message says `PORTAL_LINK_PLACEHOLDER` (a template's
    `{{ portal_link }}`), a new link for the customer, minted now (`access.portal_tokens`, audited
    without the token). Only the outgoing copy carries it; the stored message, its activity and the
    audit keep the placeholder, so the store never holds a token."""
    if PORTAL_LINK_PLACEHOLDER not in (message["body"] or "") + (message.get("body_html") or ""):
        return message
    link_id, path = insert_link(conn, message["customer_id"], actor.username)
    audit.record(conn, actor, "portal.link_mint", "customer", message["customer_id"],
                 new={"link_id": link_id, "message_id": message["message_id"]},
                 detail=f"portal link {link_id} for message {message['message_id']}")
    url = link_url(path)
    outgoing = {**message, "body": (message["body"] or "").replace(PORTAL_LINK_PLACEHOLDER, url)}
    if message.get("body_html"):
        outgoing["body_html"] = message["body_html"].replace(PORTAL_LINK_PLACEHOLDER, f'<a href="{url}">{url}</a>')
    return outgoing


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
    audit line (a message to staff: the audit line only); False when it no longer holds (nothing written)."""
    message_id = message["message_id"]
    if conn.execute(messages.update().where(*where)
                    .values(status="sent", sent_at=sent_at, last_error=None)).rowcount != 1:
        return False
    if message["customer_id"] is None:
        audit.record(conn, actor, action, "message", message_id, old={"status": old_status},
                     new={"status": "sent", "to_address": message["to_address"],
                          "message_header_id": message["message_header_id"], **(extra or {})}, detail=detail)
        return True
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
    only_entries: Mapping[str, Sequence[int]] | None = None, charges: tuple[float | None, float | None] | None = None,
) -> pd.DataFrame:
    """Queue (idempotently) and deliver in one step: what the Send buttons do. The re-check runs
    as of the same D as the preview (`queue.preview` with `recheck_with`), so the counts agree;
    `only_entries` narrows each message to those invoices (a bulk filter's matches); `charges`
    (annual interest rate, stage fee) shows them on the message (`queue.preview`).

    Returns one row per customer: customer_id, message_id, status, reason.
    """
    config = config or OutreachConfig.from_settings()
    queued = queue_messages(store, actor, customer_ids, template, action_key=action_key, as_of=as_of,
                            note=note, attach=attach, config=config, only_entries=only_entries, charges=charges)
    ids = [int(m) for m in queued["message_id"].dropna()]
    sent = deliver(store, actor, ids, config=config, as_of=as_of)
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
