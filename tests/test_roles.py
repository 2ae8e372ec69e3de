"""Roles: which pages each opens, which writes each may make; passwords stored hashed."""

from __future__ import annotations

import pytest

from analytics.access.roles import (
    PAGES,
    ROLES,
    SYSTEM,
    Actor,
    PermissionDenied,
    allowed_pages,
    home_page,
    require,
)
from analytics.access.users import UserError, add_user, check_password, credentials, list_users, set_password
from analytics.store.connection import Store


def test_every_role_opens_the_overview_and_page_files_exist() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for role in ROLES:
        assert allowed_pages(role)[0].key == "overview"
    assert all((root / p.path).exists() for p in PAGES)
    assert allowed_pages("nobody") == []


def test_collectors_land_on_their_worklist_everyone_else_on_the_overview() -> None:
    assert {role: home_page(role).key for role in ROLES} == {
        "admin": "overview", "cfo": "overview", "collector": "worklist", "analyst": "overview",
        "sales": "overview", "viewer": "overview", "department": "requests"}
    assert home_page("nobody") is None


def test_forbidden_user_change_raises_and_writes_nothing(store: Store) -> None:
    with pytest.raises(PermissionDenied, match="may not manage users"):
        add_user(store, Actor("cara", "collector"), "mallory", "Mallory", "admin", password="x" * 12)
    assert store.scalar("SELECT COUNT(*) FROM users") == 0
    assert store.scalar("SELECT COUNT(*) FROM audit_log") == 0


def test_passwords_are_stored_hashed_and_audited_without_them(store: Store) -> None:
    add_user(store, SYSTEM, "ana", "Ana", "collector", email="ana@example.com", password="correct horse")
    stored = store.scalar("SELECT password_hash FROM users WHERE username = 'ana'")
    assert stored.startswith("$2") and "correct horse" not in stored
    assert check_password("correct horse", stored) and not check_password("wrong horse", stored)
    audit_text = store.read("SELECT new_values FROM audit_log").to_string()
    assert "correct horse" not in audit_text and "$2" not in audit_text
    assert credentials(store)["usernames"]["ana"]["roles"] == ["collector"]
    assert list_users(store)[["username", "role", "can_sign_in"]].to_dict("records") == [
        {"username": "ana", "role": "collector", "can_sign_in": True}]


def test_user_rules(store: Store) -> None:
    with pytest.raises(UserError, match="Unknown role"):
        add_user(store, SYSTEM, "x", "X", "wizard")
    with pytest.raises(UserError, match="at least 8"):
        add_user(store, SYSTEM, "x", "X", "viewer", password="short")
    add_user(store, SYSTEM, "x", "X", "viewer")
    with pytest.raises(UserError, match="already exists"):
        add_user(store, SYSTEM, "x", "X", "viewer")
    with pytest.raises(PermissionDenied):
        set_password(store, Actor("y", "viewer"), "x", "another-password")
    set_password(store, Actor("x", "viewer"), "x", "my-own-password")  # own account is allowed


def test_require_names_the_refusal() -> None:
    with pytest.raises(PermissionDenied, match=r"sam \(Sales\) may not act on customers"):
        require(Actor("sam", "sales"), "act_on_customers")
    require(Actor("sam", "sales"), "add_notes")
