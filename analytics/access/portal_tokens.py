"""Customer portal link tokens: made here, below the collections layer, so a reminder's delivery
can mint the link it carries (`collections.outreach.delivery`) and `analytics.portal.links` (which
checks the role and audits) can mint one on demand, with the same rule.

Rule: a token is `secrets.token_urlsafe(32)` (32 random bytes); the store keeps only its SHA-256 hex
digest (`portal_links.token_sha256`), so no token can be read back from the store, the audit or a
backup. A link is scoped to one customer and valid `[portal] link_days` days (default 25, 1 to 1000)
unless revoked. The link's path is `/portal/t/<token>`; the full URL starts with `[app] base_url`
(default `http://localhost:8501`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from analytics.settings import load_settings
from analytics.store.ids import reserve_ids
from analytics.store.schema import PORTAL_LINK_IDS, portal_links

LINK_DAYS_DEFAULT = 25
LINK_DAYS_RANGE = (1, 1000)
LINK_PREFIX = "/portal/t/"
# What a stored message says where its portal link goes: the link is made when the message is sent,
# and only the outgoing email carries it (the store never holds a token).
PORTAL_LINK_PLACEHOLDER = "(a personal portal link, made when sent)"


class PortalLinkError(ValueError):
    """A portal link cannot be made as asked (the reason is in the message)."""


def token_sha256(token: str) -> str:
    """The SHA-256 hex digest the store keeps instead of a link or portal-session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def link_days(days: int | None = None) -> int:
    """`days`, else `[portal] link_days`, else 25; refused outside 1 to 1000."""
    if days is None:
        days = load_settings().section("portal").get("link_days", LINK_DAYS_DEFAULT)
    try:
        value = int(days)
    except (TypeError, ValueError):
        raise PortalLinkError(f"A portal link's validity must be a whole number of days, not {days!r}.") from None
    low, high = LINK_DAYS_RANGE
    if not low <= value <= high:
        raise PortalLinkError(f"A portal link is valid {low} to {high} days; {value} is outside that.")
    return value


def base_url() -> str:
    """Where the app is reached from outside: `[app] base_url`, else `http://localhost:8501`."""
    return str(load_settings().section("app").get("base_url") or "http://localhost:8501").rstrip("/")


def link_url(path: str) -> str:
    """The full URL of a link path (`/portal/t/<token>`)."""
    return base_url() + path


def insert_link(conn: sa.Connection, customer_id: str, created_by: str, days: int | None = None,
                now: datetime | None = None) -> tuple[int, str]:
    """Store a new link for `customer_id` inside the caller's transaction; returns (link_id, path).
    The caller checks the role and audits (never with the path: it holds the token)."""
    now = now or datetime.now()
    valid_days = link_days(days)
    exists = conn.execute(sa.text("SELECT 1 FROM customers WHERE customer_id = :c"), {"c": customer_id}).fetchall()
    if not exists:
        raise PortalLinkError(f"There is no customer {customer_id}.")
    token = secrets.token_urlsafe(32)
    link_id = reserve_ids(conn, PORTAL_LINK_IDS, 1)
    conn.execute(portal_links.insert().values(
        link_id=link_id, customer_id=customer_id, token_sha256=token_sha256(token), created_at=now,
        created_by=created_by, expires_at=now + timedelta(days=valid_days)))
    return link_id, LINK_PREFIX + token
