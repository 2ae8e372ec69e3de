"""What the outbox and a customer's panel show: messages with their delivery state (no bodies or
attachments), who contacted the customer last, and what the frequency cap counts now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.policy import frequency_cap_count
from analytics.store.connection import Store

CONTACT_KINDS = ("email", "letter", "call")


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
