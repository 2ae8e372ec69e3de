"""Sign-in sessions kept in the store, so signing out (here or everywhere) really ends them.

A session starts when the sign-in form's password check succeeds (`open_session`). The browser
never sees the session id: it gets a one-time ticket (valid `TICKET_LIFETIME`, single use) that
the server's `/auth/session` route exchanges (`redeem_ticket`) for a random cookie token, set
HttpOnly by the server. The store keeps only SHA-256 hashes of the ticket and the token, so
neither can be read back from the store, the audit or a backup.

Rules, checked on every page load and rerun (`check_session`), reloads included, since the
last-seen time lives here and not in a process:
- the session exists, was not ended (sign-out, sign out everywhere, an earlier failed check);
- it is younger than its absolute limit (`expires_at`, fixed at sign-in) and `session_max_hours`;
- it was used within `idle_minutes` (last-seen moves at most every `TOUCH_EVERY`, a burst of
  reruns writes once, and never waits behind another write: a busy store skips the touch);
- the account still exists, is active, and its password was not reset nor the account disabled
  since the session started (`sign_in.session_check`).
A session that fails a check is ended with the reason, so a copied cookie stays useless.

Audited: the start (`session.open`), every end (`sign_in.sign_out` when the user signs out,
`session.end` otherwise, `session.end_all` for sign out everywhere). Not audited: redeeming the
ticket and the last-seen touch, the session's own bookkeeping on page loads (an audit line per
page load would flood the log and move `data_version` on every click). No ticket, token
or hash is ever written to the audit; a session is named by its first 8 id characters.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.access.sign_in import EXPIRED, SessionCheck, SignInRules, session_check
from analytics.access.users import UserError, get_user
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.schema import sessions

TICKET_LIFETIME = timedelta(seconds=60)
TOUCH_EVERY = timedelta(seconds=5)
ENDED = "This session has ended. Sign in again."


def fingerprint(secret: str) -> str:
    """The SHA-256 hex digest the store keeps instead of a ticket or token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def session_lifetime(rules: SignInRules) -> timedelta:
    """The absolute limit: `session_max_hours`, or the cookie lifetime when that limit is off."""
    days = float(load_settings().section("auth").get("cookie_expiry_days", 1))
    return rules.max_session or timedelta(days=days)


@dataclass(frozen=True)
class Ticket:
    """What the sign-in form hands the browser: the session (server-side) and its one-time ticket."""

    session_id: str
    ticket: str


@dataclass(frozen=True)
class CookieToken:
    """The cookie value for a redeemed ticket, and when the session (so the cookie) expires."""

    session_id: str
    token: str
    expires_at: datetime


def _ref(session_id: str) -> str:
    return f"session {session_id[:8]}"


def _actor(conn: sa.Connection, username: str) -> Actor:
    row = get_user(conn, username)
    return Actor(username, row["role"] if row else "unknown", row["name"] if row else "")


def open_session(store: Store, username: str, now: datetime | None = None,
                 rules: SignInRules | None = None) -> Ticket:
    """Start a session for `username`, whose password was just checked (`attempt_sign_in`)."""
    now = now or datetime.now()
    rules = rules or SignInRules.from_settings()
    session_id, ticket = secrets.token_hex(16), secrets.token_urlsafe(32)
    with store.write() as conn:
        conn.execute(sessions.insert().values(
            session_id=session_id, username=username, ticket_hash=fingerprint(ticket),
            ticket_expires_at=now + TICKET_LIFETIME, created_at=now, last_seen_at=now,
            expires_at=now + session_lifetime(rules)))
        audit.record(conn, _actor(conn, username), "session.open", "user", username, detail=_ref(session_id))
    return Ticket(session_id, ticket)


def redeem_ticket(store: Store, ticket: str, now: datetime | None = None) -> CookieToken | None:
    """Exchange a one-time ticket for the session's cookie token; None if unknown, used or expired."""
    now = now or datetime.now()
    token = secrets.token_urlsafe(32)
    with store.write() as conn:
        row = conn.execute(sa.select(sessions.c.session_id, sessions.c.expires_at).where(
            sessions.c.ticket_hash == fingerprint(ticket), sessions.c.ticket_expires_at >= now,
            sessions.c.ended_at.is_(None), sessions.c.expires_at > now)).mappings().first()
        if row is None:
            return None
        conn.execute(sessions.update().where(sessions.c.session_id == row["session_id"]).values(
            ticket_hash=None, ticket_expires_at=None, token_hash=fingerprint(token), last_seen_at=now))
    return CookieToken(row["session_id"], token, row["expires_at"])


def session_for_token(store: Store, token: object) -> str | None:
    """The session a cookie token belongs to (ended or not), or None (no token, or not a string)."""
    if not isinstance(token, str) or not token:
        return None
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sessions.c.session_id).where(
            sessions.c.token_hash == fingerprint(token))).scalar()


def check_session(store: Store, session_id: str, now: datetime | None = None,
                  rules: SignInRules | None = None) -> SessionCheck:
    """Whether the session may go on (see the module rules); ends it, with the reason, when not."""
    now = now or datetime.now()
    rules = rules or SignInRules.from_settings()
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.session_id == session_id)).mappings().first()
    if row is None or row["ended_at"] is not None:
        return SessionCheck(False, ENDED, reason="ended")
    check = session_check(store, row["username"], row["created_at"], row["last_seen_at"], now, rules)
    if check.ok and now >= row["expires_at"]:
        check = SessionCheck(False, EXPIRED, reason="expired")
    if not check.ok:
        _end(store, session_id, check.reason, "session.end", now)
        return check
    every = min(TOUCH_EVERY, rules.idle / 10) if rules.idle else TOUCH_EVERY
    if now - row["last_seen_at"] >= every:
        with store.write_if_free(wait_s=0.2) as conn:
            if conn is not None:
                conn.execute(sessions.update().where(sessions.c.session_id == session_id,
                                                     sessions.c.last_seen_at < now).values(last_seen_at=now))
    return check


def sign_out(store: Store, session_id: str, now: datetime | None = None) -> bool:
    """The user signs this session out; False when it had already ended."""
    return _end(store, session_id, "signed out", "sign_in.sign_out", now or datetime.now())


def _end(store: Store, session_id: str, reason: str, action: str, now: datetime) -> bool:
    with store.write() as conn:
        username = conn.execute(sa.select(sessions.c.username).where(
            sessions.c.session_id == session_id, sessions.c.ended_at.is_(None))).scalar()
        if username is None:
            return False
        conn.execute(sessions.update().where(sessions.c.session_id == session_id).values(
            ended_at=now, end_reason=reason, ticket_hash=None, ticket_expires_at=None))
        audit.record(conn, _actor(conn, username), action, "user", username, detail=f"{_ref(session_id)}: {reason}")
    return True


def end_all_sessions(store: Store, actor: Actor, username: str, now: datetime | None = None) -> int:
    """Sign `username` out everywhere (the user themselves, or an admin); returns how many ended."""
    if actor.username != username:
        require(actor, "manage_users")
    now = now or datetime.now()
    with store.write() as conn:
        if get_user(conn, username) is None:
            raise UserError(f"There is no user {username}.")
        live = sa.and_(sessions.c.username == username, sessions.c.ended_at.is_(None))
        ended = int(conn.execute(sa.select(sa.func.count()).select_from(sessions).where(live)).fetchall()[0][0])
        conn.execute(sessions.update().where(live).values(
            ended_at=now, end_reason="signed out everywhere", ticket_hash=None, ticket_expires_at=None))
        audit.record(conn, actor, "session.end_all", "user", username, old={"sessions": ended},
                     new={"sessions": 0}, detail="signed out everywhere")
    return ended


def open_sessions(store: Store, username: str, now: datetime | None = None) -> int:
    """How many of the account's sessions have not ended nor passed their absolute limit."""
    now = now or datetime.now()
    return int(store.scalar(
        "SELECT COUNT(*) FROM sessions WHERE username = :u AND ended_at IS NULL AND expires_at > :now",
        {"u": username, "now": now}))
