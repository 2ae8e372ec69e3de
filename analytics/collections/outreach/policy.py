"""The re-check right before a message is sent (the package docstring, step 3), and the same
re-check the preview runs, so the preview's "sendable" count is what the send does:
blocked when every invoice in it is paid or disputed by now (or paused by a promise to pay:
`collections.holds`, with what is known now), when the account is with a collection
agency or written off, or by the frequency cap, which counts every team's emails and the messages
that may have gone out in the window. A possibly-sent message counts: at most once beats twice."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from analytics.collections.holds import disputed_sql, dunning_hold_sql
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.recipients import ids_statement, read_frame
from analytics.ledger.open_items import CUSTOMER_OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.schema import messages


def frequency_cap_count(conn: sa.Connection, customer_id: str, config: OutreachConfig, now: datetime,
                        exclude_message_id: int | None = None) -> int:
    """What the frequency cap counts for a customer at `now` (the rule: package docstring, step 3).

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


def recheck(conn: sa.Connection, message: dict[str, Any], config: OutreachConfig, as_of: date) -> str | None:
    """Why this message must not go out now, or None when it may (`message`: customer_id, entry_ids
    as JSON, message_id or None for a draft)."""
    customer_id = message["customer_id"]
    status = conn.execute(sa.text("SELECT status FROM customers WHERE customer_id = :c"), {"c": customer_id}).scalar()
    if status in ("with_agency", "written_off"):
        return f"the account is {status.replace('_', ' ')}; it is no longer contacted by collections"
    entry_ids = json.loads(message["entry_ids"] or "[]")
    if entry_ids:
        sql = f"""
        WITH items AS ({CUSTOMER_OPEN_ITEMS_SQL})
        SELECT e.entry_id, e.document_number, COALESCE(i.open_amount, 0) AS open_amount,
               CASE WHEN {disputed_sql("e.entry_id", "e.customer_id", known_now=True)} THEN 1 ELSE 0 END AS disputed,
               CASE WHEN {dunning_hold_sql("e.entry_id", "e.customer_id", known_now=True)} THEN 1 ELSE 0 END
                 AS held
        FROM ledger_entries e LEFT JOIN items i ON i.entry_id = e.entry_id
        WHERE e.entry_id IN :ids
        """  # noqa: S608 - composed from constants only
        state = read_frame(conn, ids_statement(sql), {"as_of": as_of, "reporting": load_settings().reporting_currency,
                                              "ids": entry_ids, "customer_id": customer_id})
        closed = state[(state.open_amount <= 0) | (state.held == 1)]
        if len(closed) == len(entry_ids):
            named = ", ".join(
                f"{r.document_number} {'paid' if r.open_amount <= 0 else 'disputed' if r.disputed else 'promised'}"
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
