"""Portal links and portal sessions: how a customer gets into the portal, and the only way a page
learns which customer it serves (`portal_customer`).

Rules:
- A link (`mint_link`, or a reminder's delivery: `access.portal_tokens`) is 32 random bytes,
  URL-safe, stored only as its SHA-256 hex digest, scoped to one customer, valid `[portal]
  link_days` days (default 25, 1 to 1000). Minting needs `act_on_customers` and is audited (the
  link's id and expiry, never the token). Old links keep working until they expire.
- `revoke_links` revokes every live link of the customer at once and ends the portal sessions they
  opened (`act_on_customers`, audited with the count).
- `redeem_link` exchanges a live link (not expired, not revoked) for a new portal session: another
  random token, stored hashed, expiring with the link. Audited as `portal:<customer id>`.
  An expired, revoked or unknown link gets one refusal, the same for all three.
- Rate limit: a client address with `MAX_FAILED_TRIES` (20) refused tries within `TRY_WINDOW`
  (10 minutes) is refused without looking at its token, until the oldest try leaves the window.
  The tries live in the store (`portal_link_tries`), so the limit holds across server processes
  sharing a PostgreSQL store; tries older than the window are deleted as new ones come.
- A portal session is valid while not ended, before its expiry, and while its link is not revoked.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from analytics.access import audit
from analytics.access.portal_tokens import insert_link, token_sha256
from analytics.access.roles import Actor, require
from analytics.portal.identity import PortalCustomer, portal_actor
from analytics.store.connection import Store
from analytics.store.schema import portal_link_tries, portal_links, portal_sessions

log = logging.getLogger("ardesk.portal")
MAX_FAILED_TRIES = 20
TRY_WINDOW = timedelta(minutes=10)
EXPIRED = "expired"  # expired, revoked or unknown: one answer, no detail about which
RATE_LIMITED = "rate_limited"
PORTAL_COOKIE = "ardesk_portal"  # names a portal session (HttpOnly, SameSite=Strict; set by server.py)
PORTAL_PATH = "/portal"  # where a redeemed link lands: no token in this URL


@dataclass(frozen=True)
class PortalSessionToken:
    """A redeemed link: the portal session's cookie value (never stored) and when it expires."""

    token: str
    customer_id: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkRefusal:
    """Why a link was not redeemed: `EXPIRED` (expired, revoked or unknown) or `RATE_LIMITED`."""

    reason: str


def mint_link(store: Store, actor: Actor, customer_id: str, days: int | None = None, *,
              now: datetime | None = None) -> str:
    """A new link for `customer_id`, valid `days` (default `[portal] link_days`); returns its path
    `/portal/t/<token>`, shown once: the store keeps only the token's hash."""
    require(actor, "act_on_customers")
    now = now or datetime.now()
    with store.write() as conn:
        link_id, path = insert_link(conn, customer_id, actor.username, days, now)
        expires_at = conn.execute(sa.select(portal_links.c.expires_at)
                                  .where(portal_links.c.link_id == link_id)).scalar()
        audit.record(conn, actor, "portal.link_mint", "customer", customer_id,
                     new={"link_id": link_id, "expires_at": expires_at}, detail=f"portal link {link_id}")
    return path


def revoke_links(store: Store, actor: Actor, customer_id: str, *, now: datetime | None = None) -> int:
    """Revoke every live link of `customer_id` and end the portal sessions they opened; returns how
    many links were revoked."""
    require(actor, "act_on_customers")
    now = now or datetime.now()
    with store.write() as conn:
        live = sa.and_(portal_links.c.customer_id == customer_id, portal_links.c.revoked_at.is_(None),
                       portal_links.c.expires_at > now)
        count = int(conn.execute(sa.select(sa.func.count()).select_from(portal_links).where(live)).fetchall()[0][0])
        conn.execute(portal_links.update().where(live).values(revoked_at=now))
        conn.execute(portal_sessions.update().where(portal_sessions.c.customer_id == customer_id,
                                                    portal_sessions.c.ended_at.is_(None)).values(ended_at=now))
        audit.record(conn, actor, "portal.link_revoke", "customer", customer_id, old={"live_links": count},
                     new={"live_links": 0}, detail=f"{count} portal link(s) revoked")
    return count


def redeem_link(store: Store, token: str, client: str, *, now: datetime | None = None
                ) -> PortalSessionToken | LinkRefusal:
    """Exchange a live link's token for a new portal session (see the module rules)."""
    now = now or datetime.now()
    client = (client or "unknown")[:64]
    with store.write() as conn:
        conn.execute(portal_link_tries.delete().where(portal_link_tries.c.tried_at <= now - TRY_WINDOW))
        tries = int(conn.execute(sa.select(sa.func.count()).select_from(portal_link_tries).where(
            portal_link_tries.c.client == client)).fetchall()[0][0])
        if tries >= MAX_FAILED_TRIES:
            log.warning("portal link refused: %s has %d refused tries within %s", client, tries, TRY_WINDOW)
            return LinkRefusal(RATE_LIMITED)
        link = None
        if isinstance(token, str) and 0 < len(token) <= 200:
            link = conn.execute(sa.select(portal_links.c.link_id, portal_links.c.customer_id,
                                          portal_links.c.expires_at).where(
                portal_links.c.token_sha256 == token_sha256(token), portal_links.c.revoked_at.is_(None),
                portal_links.c.expires_at > now)).mappings().first()
        if link is None:
            conn.execute(portal_link_tries.insert().values(client=client, tried_at=now))
            log.info("portal link refused for %s (expired, revoked or unknown)", client)
            return LinkRefusal(EXPIRED)
        session_token = secrets.token_urlsafe(32)
        conn.execute(portal_sessions.insert().values(
            session_sha256=token_sha256(session_token), customer_id=link["customer_id"], link_id=link["link_id"],
            created_at=now, expires_at=link["expires_at"]))
        who = PortalCustomer(link["customer_id"], int(link["link_id"]))
        audit.record(conn, portal_actor(who), "portal.session_open", "customer", link["customer_id"],
                     detail=f"portal link {link['link_id']}")
    return PortalSessionToken(session_token, link["customer_id"], link["expires_at"])


def portal_customer(store: Store, session_token: object, *, now: datetime | None = None) -> PortalCustomer | None:
    """The customer a live portal session belongs to, or None (no, ended, expired or revoked session).
    The only way a portal page gets a `PortalCustomer`."""
    if not isinstance(session_token, str) or not session_token or len(session_token) > 200:
        return None
    now = now or datetime.now()
    s, k = portal_sessions, portal_links
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(s.c.customer_id, s.c.link_id).select_from(
            s.join(k, k.c.link_id == s.c.link_id)).where(
            s.c.session_sha256 == token_sha256(session_token), s.c.ended_at.is_(None), s.c.expires_at > now,
            k.c.revoked_at.is_(None))).mappings().first()
    return None if row is None else PortalCustomer(str(row["customer_id"]), int(row["link_id"]))


def end_portal_session(store: Store, session_token: object, *, now: datetime | None = None) -> bool:
    """End the portal session the token names (the customer leaves); False when none was live."""
    who = portal_customer(store, session_token, now=now)
    if who is None:
        return False
    with store.write() as conn:
        conn.execute(portal_sessions.update().where(
            portal_sessions.c.session_sha256 == token_sha256(str(session_token)),
            portal_sessions.c.ended_at.is_(None)).values(ended_at=now or datetime.now()))
        audit.record(conn, portal_actor(who), "portal.session_end", "customer", who.customer_id,
                     detail=f"portal link {who.link_id}")
    return True


def live_links(store: Store, customer_id: str, *, now: datetime | None = None) -> int:
    """How many of the customer's links are neither expired nor revoked (the Customer 360 says so)."""
    return int(store.scalar(
        "SELECT COUNT(*) FROM portal_links WHERE customer_id = :c AND revoked_at IS NULL AND expires_at > :now",
        {"c": customer_id, "now": now or datetime.now()}))
