"""Sessions kept in the store: one-time tickets, hashed tokens, every check against the store,
sign-out (here and everywhere) that really ends a session, and nothing secret in the audit."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.access.sessions import (
    ENDED,
    TICKET_LIFETIME,
    check_session,
    end_all_sessions,
    fingerprint,
    open_session,
    open_sessions,
    redeem_ticket,
    session_for_token,
    sign_out,
)
from analytics.access.sign_in import SignInRules
from analytics.access.users import add_user, set_active, set_password
from analytics.migrations import connect
from analytics.store.connection import Store

RULES = SignInRules(idle=timedelta(minutes=30), max_session=timedelta(hours=8))
T0 = datetime(2026, 11, 2, 9, 0)


@pytest.fixture(autouse=True)
def _cheap_bcrypt(cheap_bcrypt: None) -> None:
    """Every test here hashes passwords at the cheap cost."""



@pytest.fixture
def team(store: Store) -> Store:
    for username, role in (("ana", "collector"), ("bo", "collector"), ("root", "admin")):
        add_user(store, SYSTEM, username, username.title(), role, password="password-123")
    return store


def _signed_in(store: Store, username: str, now: datetime = T0) -> tuple[str, str]:
    """A sign-in as the form and the browser make it: (session id, cookie token)."""
    ticket = open_session(store, username, now, RULES)
    cookie = redeem_ticket(store, ticket.ticket, now + timedelta(seconds=1))
    assert cookie is not None and cookie.session_id == ticket.session_id
    return cookie.session_id, cookie.token


def test_a_ticket_is_good_once_for_a_minute_and_the_store_keeps_only_hashes(team: Store) -> None:
    late = open_session(team, "ana", T0, RULES)
    assert redeem_ticket(team, late.ticket, T0 + TICKET_LIFETIME + timedelta(seconds=1)) is None

    ticket = open_session(team, "ana", T0, RULES)
    assert session_for_token(team, ticket.ticket) is None  # a ticket is not a cookie
    cookie = redeem_ticket(team, ticket.ticket, T0 + timedelta(seconds=5))
    assert cookie is not None and cookie.expires_at == T0 + RULES.max_session
    assert redeem_ticket(team, ticket.ticket, T0 + timedelta(seconds=6)) is None  # used
    assert redeem_ticket(team, cookie.token, T0 + timedelta(seconds=6)) is None  # a cookie is not a ticket
    assert session_for_token(team, cookie.token) == ticket.session_id

    everything = "".join(team.read(f"SELECT * FROM {t}").to_csv()  # noqa: S608
                         for t in ("sessions", "audit_log", "users"))
    for secret in (ticket.ticket, late.ticket, cookie.token):
        assert secret not in everything
    assert fingerprint(cookie.token) in everything  # the hash, in sessions only
    assert fingerprint(cookie.token) not in team.read("SELECT * FROM audit_log").to_csv()


def test_every_check_reads_the_store_so_idling_ends_the_session_even_across_a_restart(team: Store) -> None:
    session_id, _ = _signed_in(team, "ana")
    assert check_session(team, session_id, T0 + timedelta(minutes=29), RULES).ok  # used: last seen moves
    assert check_session(team, session_id, T0 + timedelta(minutes=58), RULES).ok

    restarted = connect(team.url)  # a reload after a restart: nothing about the session in memory
    try:
        idle = check_session(restarted, session_id, T0 + timedelta(minutes=89), RULES)
    finally:
        restarted.close()
    assert (idle.ok, idle.reason) == (False, "idle")
    assert idle.message == "You were signed out after a period of inactivity. Sign in again."
    again = check_session(team, session_id, T0 + timedelta(minutes=90), RULES)
    assert (again.ok, again.message) == (False, ENDED)  # ended, not merely idle: coming back does not help
    assert team.read("SELECT end_reason FROM sessions").end_reason.tolist() == ["idle"]


def test_the_absolute_limit_ends_even_a_busy_session(team: Store) -> None:
    session_id, _ = _signed_in(team, "ana")
    for minutes in range(20, 8 * 60, 20):
        assert check_session(team, session_id, T0 + timedelta(minutes=minutes), RULES).ok
    expired = check_session(team, session_id, T0 + timedelta(hours=8, minutes=1), RULES)
    assert (expired.ok, expired.reason) == (False, "expired")


def test_a_password_reset_or_a_disable_ends_sessions_that_started_before(team: Store) -> None:
    ana, _ = _signed_in(team, "ana", datetime.now() - timedelta(minutes=1))
    bo, _ = _signed_in(team, "bo", datetime.now() - timedelta(minutes=1))
    set_password(team, SYSTEM, "ana", "a-new-password")
    set_active(team, SYSTEM, "bo", False)
    checks = {who: check_session(team, sid, datetime.now(), RULES) for who, sid in (("ana", ana), ("bo", bo))}
    assert {who: (c.ok, c.reason) for who, c in checks.items()} == {
        "ana": (False, "password changed"), "bo": (False, "account disabled")}
    assert check_session(team, open_session(team, "ana", datetime.now(), RULES).session_id, rules=RULES).ok


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(team: Store) -> None:
    session_id, token = _signed_in(team, "ana")
    assert check_session(team, session_for_token(team, token), T0 + timedelta(minutes=1), RULES).ok
    assert sign_out(team, session_id, T0 + timedelta(minutes=2))
    assert not sign_out(team, session_id, T0 + timedelta(minutes=3))  # already ended: nothing to do
    copied = check_session(team, session_for_token(team, token), T0 + timedelta(minutes=3), RULES)
    assert (copied.ok, copied.message) == (False, ENDED)
    audit = team.read("SELECT actor, action, entity_id, detail FROM audit_log WHERE action NOT LIKE 'user.%' "
                      "ORDER BY audit_id").to_dict("records")
    assert audit == [
        {"actor": "ana", "action": "session.open", "entity_id": "ana", "detail": f"session {session_id[:8]}"},
        {"actor": "ana", "action": "sign_in.sign_out", "entity_id": "ana",
         "detail": f"session {session_id[:8]}: signed out"}]


def test_sign_out_everywhere_is_for_the_user_or_an_admin(team: Store) -> None:
    now = datetime.now()
    ana = [_signed_in(team, "ana", now)[0] for _ in range(3)]
    bo, _ = _signed_in(team, "bo", now)
    assert open_sessions(team, "ana", now) == 3
    with pytest.raises(PermissionDenied):
        end_all_sessions(team, Actor("bo", "collector"), "ana")
    assert end_all_sessions(team, Actor("ana", "collector"), "ana", now) == 3
    assert [check_session(team, sid, now, RULES).ok for sid in ana] == [False] * 3
    assert check_session(team, bo, now, RULES).ok  # another account's session goes on
    assert end_all_sessions(team, Actor("root", "admin"), "bo", now) == 1
    assert open_sessions(team, "bo", now) == 0
    assert team.read("SELECT actor, old_values FROM audit_log WHERE action = 'session.end_all' "
                     "ORDER BY audit_id").to_dict("records") == [
        {"actor": "ana", "old_values": '{"sessions": 3}'}, {"actor": "root", "old_values": '{"sessions": 1}'}]


def test_a_busy_store_skips_the_last_seen_touch_instead_of_waiting(team: Store) -> None:
    session_id, _ = _signed_in(team, "ana")
    holding, release = threading.Event(), threading.Event()

    def long_write() -> None:  # an import holding the write lock
        with team.write():
            holding.set()
            release.wait()

    writer = threading.Thread(target=long_write)
    writer.start()
    try:
        holding.wait()
        assert check_session(team, session_id, T0 + timedelta(minutes=10), RULES).ok
        assert team.scalar("SELECT last_seen_at FROM sessions") == T0 + timedelta(seconds=1)  # not touched
    finally:
        release.set()
        writer.join()
    assert check_session(team, session_id, T0 + timedelta(minutes=11), RULES).ok
    assert team.scalar("SELECT last_seen_at FROM sessions") == T0 + timedelta(minutes=11)
