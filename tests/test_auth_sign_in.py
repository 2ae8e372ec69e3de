"""Sign-in rules: the lock-out engages, refuses even the right password, expires; sessions end."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from analytics.access.roles import SYSTEM
from analytics.access.sign_in import INCORRECT, SignInRules, attempt_sign_in, session_check
from analytics.access.users import add_user, set_active, set_password, set_role, users_version
from analytics.store.connection import Store

RULES = SignInRules(max_failed_logins=3, lockout=timedelta(minutes=15), idle=timedelta(minutes=30),
                    max_session=timedelta(hours=8))
T0 = datetime(2026, 11, 2, 9, 0)
PASSWORD = "correct horse battery"



@pytest.fixture(autouse=True)
def _cheap_bcrypt(cheap_bcrypt: None) -> None:
    """Every test here hashes passwords at the cheap cost."""


@pytest.fixture
def ana(store: Store) -> Store:
    add_user(store, SYSTEM, "ana", "Ana Alves", "collector", password=PASSWORD)
    return store


def _state(store: Store) -> dict:
    row = store.read("SELECT failed_logins, locked_until, last_login_at FROM users WHERE username = 'ana'")
    return {k: (None if v != v else v) for k, v in row.iloc[0].to_dict().items()}  # NaT -> None


def _sign_in_audit(store: Store) -> list[dict]:
    frame = store.read("SELECT actor, action, entity_id, old_values, new_values, detail FROM audit_log "
                       "WHERE action LIKE 'sign_in.%' ORDER BY audit_id")
    return [{k: (None if v is None or v != v else v) for k, v in r.items()} for r in frame.to_dict("records")]


def test_lock_out_engages_refuses_the_right_password_and_expires(ana: Store) -> None:
    first = attempt_sign_in(ana, "ana", "wrong one", T0, RULES)
    assert (first.ok, first.message) == (False, INCORRECT + " 2 attempts left before a lock-out.")
    assert attempt_sign_in(ana, "ana", "wrong two", T0 + timedelta(minutes=1), RULES).message == (
        INCORRECT + " 1 attempt left before a lock-out.")
    third = attempt_sign_in(ana, "ana", "wrong three", T0 + timedelta(minutes=2), RULES)
    assert third.locked_until == datetime(2026, 11, 2, 9, 17)
    assert third.message.startswith("Too many failed sign-ins: ana is locked until 09:17 (in 15 minutes).")
    assert _state(ana) == {"failed_logins": 3, "locked_until": datetime(2026, 11, 2, 9, 17), "last_login_at": None}

    # Locked: the right password is refused too, and the message says when to retry.
    refused = attempt_sign_in(ana, "ana", PASSWORD, T0 + timedelta(minutes=10), RULES)
    assert not refused.ok and "locked until 09:17 (in 7 minutes)" in refused.message
    assert _state(ana)["failed_logins"] == 3

    # Expired: the right password signs in and resets the counter.
    ok = attempt_sign_in(ana, "ANA ", PASSWORD, T0 + timedelta(minutes=17), RULES)
    assert (ok.ok, ok.username, ok.name, ok.role) == (True, "ana", "Ana Alves", "collector")
    assert _state(ana) == {"failed_logins": 0, "locked_until": None,
                           "last_login_at": datetime(2026, 11, 2, 9, 17)}

    assert _sign_in_audit(ana) == [
        {"actor": "ana", "action": "sign_in.failed", "entity_id": "ana", "old_values": '{"failed_logins": 0}',
         "new_values": '{"failed_logins": 1}', "detail": "wrong password"},
        {"actor": "ana", "action": "sign_in.failed", "entity_id": "ana", "old_values": '{"failed_logins": 1}',
         "new_values": '{"failed_logins": 2}', "detail": "wrong password"},
        {"actor": "ana", "action": "sign_in.failed", "entity_id": "ana", "old_values": '{"failed_logins": 2}',
         "new_values": '{"failed_logins": 3}', "detail": "wrong password"},
        {"actor": "ana", "action": "sign_in.locked", "entity_id": "ana", "old_values": '{"locked_until": null}',
         "new_values": '{"locked_until": "2026-11-02T09:17:00"}', "detail": "3 failed sign-ins in a row"},
        {"actor": "ana", "action": "sign_in.refused", "entity_id": "ana", "old_values": None, "new_values": None,
         "detail": "locked until 2026-11-02 09:17:00"},
        {"actor": "ana", "action": "sign_in.ok", "entity_id": "ana", "old_values": '{"failed_logins": 3}',
         "new_values": '{"failed_logins": 0}', "detail": None},
    ]
    audit_text = ana.read("SELECT * FROM audit_log").to_csv()
    assert "wrong one" not in audit_text and PASSWORD not in audit_text


def test_after_an_expired_lock_the_count_starts_over(ana: Store) -> None:
    for minute in range(3):
        attempt_sign_in(ana, "ana", "nope-nope", T0 + timedelta(minutes=minute), RULES)
    after_expiry = attempt_sign_in(ana, "ana", "nope-nope", T0 + timedelta(minutes=30), RULES)
    assert after_expiry.locked_until is None
    assert _state(ana) == {"failed_logins": 1, "locked_until": None, "last_login_at": None}


def test_a_success_resets_the_count_before_a_lock(ana: Store) -> None:
    attempt_sign_in(ana, "ana", "nope-nope", T0, RULES)
    attempt_sign_in(ana, "ana", "nope-nope", T0, RULES)
    assert attempt_sign_in(ana, "ana", PASSWORD, T0, RULES).ok
    attempt_sign_in(ana, "ana", "nope-nope", T0, RULES)
    assert _state(ana)["failed_logins"] == 1 and _state(ana)["locked_until"] is None


def test_the_lock_out_is_in_the_store_so_a_restart_keeps_it(ana: Store) -> None:
    for _ in range(3):
        attempt_sign_in(ana, "ana", "nope-nope", T0, RULES)
    from analytics.migrations import connect

    reopened = connect(ana.url)  # what a restarted app (or another process) sees
    try:
        assert not attempt_sign_in(reopened, "ana", PASSWORD, T0 + timedelta(minutes=5), RULES).ok
    finally:
        reopened.close()


def test_unknown_users_empty_fields_and_disabled_accounts(ana: Store) -> None:
    assert attempt_sign_in(ana, "nobody", "whatever-1", T0, RULES).message == INCORRECT
    assert attempt_sign_in(ana, "", "", T0, RULES).message == "Enter a username and a password."
    set_active(ana, SYSTEM, "ana", False)
    assert attempt_sign_in(ana, "ana", "nope-nope", T0, RULES).message.startswith(INCORRECT)
    disabled = attempt_sign_in(ana, "ana", PASSWORD, T0, RULES)
    assert (disabled.ok, disabled.message) == (False, "This account is disabled. Ask an administrator to enable it.")
    assert [r["action"] for r in _sign_in_audit(ana)] == ["sign_in.failed", "sign_in.failed", "sign_in.refused"]
    # The unknown name (often a password typed into the wrong field) is not recorded, not even as the actor.
    assert {k: _sign_in_audit(ana)[0][k] for k in ("actor", "entity_id", "detail")} == {
        "actor": "(unknown user)", "entity_id": None, "detail": "unknown user"}
    assert "nobody" not in ana.read("SELECT * FROM audit_log").to_csv()


def test_session_check_ends_sessions_of_disabled_reset_idle_and_old_logins(ana: Store) -> None:
    issued = datetime.now() - timedelta(minutes=5)
    now = datetime.now()
    assert session_check(ana, "ana", issued, None, now, RULES).ok
    assert session_check(ana, "ana", issued, now - timedelta(minutes=29), now, RULES).ok
    idle = session_check(ana, "ana", issued, now - timedelta(minutes=31), now, RULES)
    assert (idle.ok, idle.message) == (False, "You were signed out after a period of inactivity. Sign in again.")
    old = session_check(ana, "ana", now - timedelta(hours=9), None, now, RULES)
    assert (old.ok, old.message) == (False, "Your session has expired. Sign in again.")

    set_role(ana, SYSTEM, "ana", "analyst")  # a re-role keeps the session, with the new role
    assert session_check(ana, "ana", issued, None, now, RULES).role == "analyst"

    set_password(ana, SYSTEM, "ana", "a brand new password")
    reset = session_check(ana, "ana", issued, None, datetime.now(), RULES)
    assert (reset.ok, reset.message) == (False, "Your password was changed since you signed in. Sign in again.")
    assert session_check(ana, "ana", datetime.now(), None, datetime.now(), RULES).ok  # signed in again

    set_active(ana, SYSTEM, "ana", False)
    gone = session_check(ana, "ana", datetime.now(), None, datetime.now(), RULES)
    assert (gone.ok, gone.message) == (False, "Your account has been disabled. Ask an administrator to enable it.")
    assert not session_check(ana, "nobody", issued, None, now, RULES).ok


def test_users_version_moves_with_account_changes_only(ana: Store) -> None:
    v0 = users_version(ana)
    attempt_sign_in(ana, "ana", PASSWORD, T0, RULES)  # sign-ins do not rebuild the credentials
    assert users_version(ana) == v0
    set_role(ana, SYSTEM, "ana", "viewer")
    v1 = users_version(ana)
    assert v1 > v0
    set_role(ana, SYSTEM, "ana", "viewer")  # no change, no audit line, same version
    assert users_version(ana) == v1
    assert json.loads(ana.scalar("SELECT new_values FROM audit_log WHERE action = 'user.set_role'")) == {"role": "viewer"}


def test_rules_come_from_settings() -> None:
    rules = SignInRules.from_settings()
    from analytics.settings import load_settings

    auth = load_settings().section("auth")
    assert rules.max_failed_logins == auth["max_failed_logins"]
    assert rules.lockout == timedelta(minutes=auth["lockout_minutes"])
