"""People who sign in: accounts, bcrypt password hashes, roles. Every change is audited.

Passwords are never stored or logged in clear; only bcrypt hashes reach the store.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime

import bcrypt
import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import ROLES, SYSTEM, Actor, require
from analytics.store.connection import Store
from analytics.store.schema import users

MIN_PASSWORD_LENGTH = 8
DEMO_SIGN_INS = ("admin", "cfo", "collector", "analyst", "sales", "viewer", "department")


class UserError(ValueError):
    """A user change that cannot be made, explained in plain words."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def check_password(password: str, password_hash: str | None) -> bool:
    return bool(password_hash) and bcrypt.checkpw(password.encode(), password_hash.encode())


def list_users(store: Store) -> pd.DataFrame:
    """All accounts, without password hashes."""
    return store.read(
        "SELECT username, name, email, role, team, active, password_hash IS NOT NULL AS can_sign_in, "
        "failed_logins, locked_until, last_login_at, created_at FROM users ORDER BY role, username"
    )


def get_user(conn: sa.Connection, username: str) -> dict | None:
    row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
    return dict(row) if row else None


def add_user(
    store: Store, actor: Actor, username: str, name: str, role: str,
    email: str | None = None, password: str | None = None, team: str | None = None,
) -> None:
    """Create an account (admins only). Without a password it cannot sign in until one is set."""
    require(actor, "manage_users")
    username = (username or "").strip().lower()  # the sign-in form matches usernames in lower case
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    if not username or not username.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise UserError("A username uses letters, digits, dots, dashes and underscores only.")
    row = {
        "username": username, "name": name, "email": email, "role": role, "team": team,
        "password_hash": hash_password(password) if password else None,
        "active": True, "failed_logins": 0, "created_at": datetime.now(),
    }
    with store.write() as conn:
        if get_user(conn, username):
            raise UserError(f"The user {username} already exists.")
        conn.execute(users.insert().values(**row))
        shown = {k: v for k, v in row.items() if k != "password_hash"}
        audit.record(conn, actor, "user.add", "user", username, new=shown)


def set_password(store: Store, actor: Actor, username: str, password: str) -> None:
    """Set or reset a password (admins, or the user for their own account); clears a lock-out."""
    if actor.username != username:
        require(actor, "manage_users")
    new_hash = hash_password(password)
    with store.write() as conn:
        username = _require_user(conn, username)["username"]
        conn.execute(users.update().where(users.c.username == username).values(
            password_hash=new_hash, failed_logins=0, locked_until=None))
        audit.record(conn, actor, "user.reset_password", "user", username, detail="password changed")


def change_own_password(store: Store, actor: Actor, current_password: str, new_password: str) -> None:
    """A signed-in user changes their own password: the current one must match, the new one must
    meet the length rule and differ from it. Audited like a reset (no password in the log), which
    voids every session and cookie issued before it, this one included."""
    with store.engine.connect() as conn:
        row = get_user(conn, actor.username)
    if row is None or not check_password(current_password or "", row["password_hash"]):
        raise UserError("The current password is not right; nothing was changed.")
    if new_password == current_password:
        raise UserError("The new password is the same as the current one; choose another.")
    set_password(store, actor, actor.username, new_password)


def _require_user(conn: sa.Connection, username: str) -> dict:
    row = get_user(conn, username) or get_user(conn, username.strip().lower())
    if not row:
        raise UserError(f"There is no user {username}.")
    return row


def actor_for(store: Store, username: str) -> Actor:
    """The user `username` as an actor (their current role and name), for work done in their name
    outside a sign-in (`ardesk ... --as USER`, a queued inbox job); the command line's `system` is
    itself. `UserError` unless the account exists and is active. It checks who, not what: each
    write still checks the role's permission in the engine (`roles.require`)."""
    if username == SYSTEM.username:
        return SYSTEM
    with store.engine.connect() as conn:
        row = get_user(conn, username) if isinstance(username, str) and username else None
    if row is None:
        raise UserError(f"{username!r} is not a user of this store; `ardesk users list` shows who there is.")
    if not row["active"]:
        raise UserError(f"The account of {row['username']} is disabled; an admin can enable it "
                        "(`ardesk users enable USER`).")
    return Actor(str(row["username"]), str(row["role"]), str(row["name"] or ""))


def _other_active_admins(conn: sa.Connection, username: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(users).where(
        users.c.role == "admin", users.c.active, users.c.username != username)).scalar())


def set_active(store: Store, actor: Actor, username: str, active: bool) -> bool:
    """Disable or enable an account (admins only); returns False when it already was.

    A disabled account cannot sign in and its open sessions end on their next page load. The
    last active admin cannot be disabled, so someone can always manage users.
    """
    require(actor, "manage_users")
    with store.write() as conn:
        row = _require_user(conn, username)
        username = row["username"]
        if bool(row["active"]) == active:
            return False
        if not active and row["role"] == "admin" and not _other_active_admins(conn, username):
            raise UserError(f"{username} is the last active admin; enable or add another admin first.")
        conn.execute(users.update().where(users.c.username == username).values(active=active))
        audit.record(conn, actor, "user.enable" if active else "user.disable", "user", username,
                     old={"active": bool(row["active"])}, new={"active": active})
    return True


def set_role(store: Store, actor: Actor, username: str, role: str) -> bool:
    """Give an account another role (admins only); returns False when it already had it."""
    require(actor, "manage_users")
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    with store.write() as conn:
        row = _require_user(conn, username)
        username = row["username"]
        if row["role"] == role:
            return False
        if row["role"] == "admin" and row["active"] and not _other_active_admins(conn, username):
            raise UserError(f"{username} is the last active admin; make another user admin first.")
        conn.execute(users.update().where(users.c.username == username).values(role=role))
        audit.record(conn, actor, "user.set_role", "user", username, old={"role": row["role"]}, new={"role": role})
    return True


def unlock_user(store: Store, actor: Actor, username: str) -> bool:
    """Clear a lock-out and the failed sign-in count (admins only); False when there was none."""
    require(actor, "manage_users")
    with store.write() as conn:
        row = _require_user(conn, username)
        username = row["username"]
        if not row["failed_logins"] and row["locked_until"] is None:
            return False
        conn.execute(users.update().where(users.c.username == username).values(failed_logins=0, locked_until=None))
        audit.record(conn, actor, "user.unlock", "user", username,
                     old={"failed_logins": row["failed_logins"], "locked_until": row["locked_until"]},
                     new={"failed_logins": 0, "locked_until": None})
    return True


def users_version(store: Store) -> int:
    """Changes whenever an account changes (every change is audited as `user.*`).

    The app keys its cached sign-in credentials on it, so an added, disabled, re-roled or
    re-passworded user takes effect on the next page load.
    """
    return int(store.scalar("SELECT COALESCE(MAX(audit_id), 0) FROM audit_log WHERE action LIKE 'user.%'"))


def credentials(store: Store) -> dict:
    """Active accounts that can sign in, in streamlit-authenticator's credentials format."""
    frame = store.read(
        "SELECT username, name, email, role, password_hash FROM users "
        "WHERE active AND password_hash IS NOT NULL"
    )
    return {"usernames": {
        r.username: {
            "name": r.name, "email": r.email or "", "password": r.password_hash,
            "roles": [r.role], "failed_login_attempts": 0, "logged_in": False,
        }
        for r in frame.itertuples(index=False)
    }}


def ensure_sign_ins(store: Store, password: str | None = None) -> dict[str, str]:
    """On a store where nobody can sign in, give one account per role a password.

    Uses demo collectors and sales reps when they exist, else creates `collector`/`sales`; other
    departments get one account per team (the demo's legal and logistics staff), else `department`
    in logistics.
    Passwords are random and returned once for the terminal, unless `password` or
    ARDESK_DEMO_PASSWORD sets them (tests, benchmarks and CI). Returns {} when someone can
    already sign in.
    """
    if store.scalar("SELECT COUNT(*) FROM users WHERE password_hash IS NOT NULL"):
        return {}
    fixed = password or os.environ.get("ARDESK_DEMO_PASSWORD")
    created: dict[str, str] = {}
    existing = store.read("SELECT username, role, team FROM users WHERE active ORDER BY username")
    for role in DEMO_SIGN_INS:
        same_role = existing[existing.role == role]
        if role == "department":
            same_role = same_role.drop_duplicates("team")
        for username in same_role.username.astype(str).tolist()[:None if role == "department" else 1]:
            created[username] = fixed or secrets.token_urlsafe(9)
            set_password(store, SYSTEM, username, created[username])
        if same_role.empty:
            password = fixed or secrets.token_urlsafe(9)
            add_user(store, SYSTEM, role, f"Demo {role}", role, email=f"{role}@ardesk.example",
                     password=password, team="logistics" if role == "department" else None)
            created[role] = password
    return created
