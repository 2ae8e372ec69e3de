"""Sign-in rules: lock-out after repeated failures, and whether a running session is still valid.

The state lives in the store (`users.failed_logins`, `users.locked_until`, `users.last_login_at`),
so a lock-out survives restarts and is shared by every session and process. Time is a parameter
(`now`) so the rules are testable without waiting.

Lock-out rule: the `max_failed_logins`-th consecutive failure locks the account for
`lockout_minutes`. While locked, every attempt is refused, even with the right password. When the
lock has expired the count starts over. A successful sign-in resets the count.

Session rule, checked on every page load: the account must still exist and be active; a session
(or cookie) issued before the account's password was reset or the account was disabled is void;
a session idle longer than `idle_minutes`, or older than `session_max_hours`, is void.
Passwords are never recorded; audit lines say who tried, when, and the counter before and after.
An unknown username is never recorded either (it is often a password typed into the wrong field):
such attempts are audited as `UNKNOWN_USER`, without the typed text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import bcrypt
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor
from analytics.access.users import check_password, get_user
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.schema import users

INCORRECT = "Username or password is incorrect."
EXPIRED = "Your session has expired. Sign in again."
# Who an attempt with an unknown username is recorded as: never the typed text, which may be a
# password typed into the wrong field. add_user refuses parentheses, so no account has this name.
UNKNOWN_USER = Actor("(unknown user)", "unknown")
# Audit actions that void every session issued before them (see `session_check`).
SESSION_VOIDING_ACTIONS = ("user.reset_password", "user.disable")


@cache
def _dummy_hash() -> str:
    # Compared against for unknown users, at the default cost, so they take as long as known ones.
    return bcrypt.hashpw(b"not-a-password", bcrypt.gensalt()).decode()


@dataclass(frozen=True)
class SignInRules:
    max_failed_logins: int = 5
    lockout: timedelta = timedelta(minutes=15)
    idle: timedelta | None = timedelta(minutes=60)  # None: no idle limit
    max_session: timedelta | None = timedelta(hours=12)  # None: only the cookie expiry applies

    @classmethod
    def from_settings(cls) -> SignInRules:
        """`[auth]` in settings.toml; `idle_minutes`/`session_max_hours` = 0 switches a limit off."""
        auth = load_settings().section("auth")
        idle = float(auth.get("idle_minutes", 60))
        max_hours = float(auth.get("session_max_hours", 12))
        return cls(
            max_failed_logins=int(auth.get("max_failed_logins", 5)),
            lockout=timedelta(minutes=float(auth.get("lockout_minutes", 15))),
            idle=timedelta(minutes=idle) if idle > 0 else None,
            max_session=timedelta(hours=max_hours) if max_hours > 0 else None,
        )


@dataclass(frozen=True)
class SignInResult:
    """The outcome of one attempt. `message` is what the sign-in form shows when refused."""

    ok: bool
    username: str
    message: str = ""
    name: str = ""
    role: str = ""
    locked_until: datetime | None = None


def _when(until: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return f"{until:%H:%M} (in {minutes} minute{'s' if minutes != 1 else ''})"


def locked_message(username: str, until: datetime, now: datetime) -> str:
    return (f"Too many failed sign-ins: {username} is locked until {_when(until, now)}. "
            "Try again then, or ask an administrator to reset the password.")


def _actor(username: str, row: dict | None) -> Actor:
    return Actor(username[:64], row["role"] if row else "unknown", row["name"] if row else "")


def _is_locked(row: dict, now: datetime) -> bool:
    return row["locked_until"] is not None and row["locked_until"] > now


def attempt_sign_in(
    store: Store, username: str, password: str, now: datetime | None = None, rules: SignInRules | None = None,
) -> SignInResult:
    """Check one sign-in against the lock-out rule and the stored bcrypt hash, and record it.

    The bcrypt check runs outside the write lock (it is deliberately slow); the counter update
    re-reads the row under the lock, so concurrent failures from several sessions all count.
    """
    now = now or datetime.now()
    rules = rules or SignInRules.from_settings()
    username = (username or "").strip().lower()
    if not username or not password:
        return SignInResult(False, username, "Enter a username and a password.")
    with store.engine.connect() as conn:
        row = get_user(conn, username)
    if row is not None and _is_locked(row, now):
        with store.write() as conn:
            audit.record(conn, _actor(username, row), "sign_in.refused", "user", username,
                         detail=f"locked until {row['locked_until']:%Y-%m-%d %H:%M:%S}")
        return SignInResult(False, username, locked_message(username, row["locked_until"], now),
                            locked_until=row["locked_until"])
    known = row is not None and row["password_hash"] is not None
    matches = check_password(password, row["password_hash"] if known else _dummy_hash()) and known
    if matches and not row["active"]:
        with store.write() as conn:
            audit.record(conn, _actor(username, row), "sign_in.refused", "user", username,
                         detail="account disabled")
        return SignInResult(False, username, "This account is disabled. Ask an administrator to enable it.")
    with store.write() as conn:
        if row is not None and conn.dialect.name == "postgresql":  # another process's failure waits, then counts
            conn.execute(sa.select(users.c.username).where(users.c.username == username).with_for_update()).fetchall()
        current = get_user(conn, username) if row is not None else None
        if current is None:
            audit.record(conn, UNKNOWN_USER, "sign_in.failed", "user", None, detail="unknown user")
            return SignInResult(False, username, INCORRECT)
        if _is_locked(current, now):  # another session locked it while we were checking
            return SignInResult(False, username, locked_message(username, current["locked_until"], now),
                                locked_until=current["locked_until"])
        expired = current["locked_until"] is not None  # a lock that has run out: count afresh
        before = 0 if expired else int(current["failed_logins"])
        actor = _actor(username, current)
        if matches:
            conn.execute(users.update().where(users.c.username == username).values(
                failed_logins=0, locked_until=None, last_login_at=now))
            audit.record(conn, actor, "sign_in.ok", "user", username,
                         old={"failed_logins": int(current["failed_logins"])}, new={"failed_logins": 0})
            return SignInResult(True, username, name=current["name"], role=current["role"])
        after = before + 1
        locked_until = now + rules.lockout if after >= rules.max_failed_logins else None
        conn.execute(users.update().where(users.c.username == username).values(
            failed_logins=after, locked_until=locked_until))
        audit.record(conn, actor, "sign_in.failed", "user", username,
                     old={"failed_logins": before}, new={"failed_logins": after}, detail="wrong password")
        if locked_until is None:
            left = rules.max_failed_logins - after
            hint = f" {left} attempt{'s' if left != 1 else ''} left before a lock-out." if left <= 2 else ""
            return SignInResult(False, username, INCORRECT + hint)
        audit.record(conn, actor, "sign_in.locked", "user", username,
                     old={"locked_until": None}, new={"locked_until": locked_until},
                     detail=f"{after} failed sign-ins in a row")
        return SignInResult(False, username, locked_message(username, locked_until, now),
                            locked_until=locked_until)


@dataclass(frozen=True)
class SessionCheck:
    """Whether a signed-in session may go on: the account's current name and role when it may,
    else the message for the sign-in form and a short reason for the session's record."""

    ok: bool
    message: str = ""
    name: str = ""
    role: str = ""
    username: str = ""
    reason: str = ""


def session_check(
    store: Store, username: str, issued_at: datetime, last_seen: datetime | None = None,
    now: datetime | None = None, rules: SignInRules | None = None,
) -> SessionCheck:
    """Validate a session (or the cookie it came from) against the store, on every page load.

    `issued_at`: when the password was checked (form) or the cookie was issued. One primary-key
    read and one indexed-size aggregate over the account's own audit lines.
    """
    now = now or datetime.now()
    rules = rules or SignInRules.from_settings()
    with store.engine.connect() as conn:
        user = conn.execute(sa.text(
            "SELECT u.name, u.role, u.active, u.password_hash IS NOT NULL AS can_sign_in, "
            "(SELECT MAX(a.logged_at) FROM audit_log a WHERE a.entity = 'user' AND a.entity_id = u.username "
            " AND a.action IN :voiding) AS voided_at "
            "FROM users u WHERE u.username = :u"
        ).bindparams(sa.bindparam("voiding", expanding=True)),
            {"u": username, "voiding": list(SESSION_VOIDING_ACTIONS)}).mappings().first()
    if user is None or not user["can_sign_in"]:
        return SessionCheck(False, "Your account no longer exists. Sign in with another account.",
                            reason="account removed")
    if not user["active"]:
        return SessionCheck(False, "Your account has been disabled. Ask an administrator to enable it.",
                            reason="account disabled")
    if user["voided_at"] is not None and user["voided_at"] > issued_at:
        return SessionCheck(False, "Your password was changed since you signed in. Sign in again.",
                            reason="password changed")
    if rules.max_session is not None and now - issued_at > rules.max_session:
        return SessionCheck(False, EXPIRED, reason="expired")
    if rules.idle is not None and last_seen is not None and now - last_seen > rules.idle:
        return SessionCheck(False, "You were signed out after a period of inactivity. Sign in again.",
                            reason="idle")
    return SessionCheck(True, name=str(user["name"]), role=str(user["role"]), username=username)
