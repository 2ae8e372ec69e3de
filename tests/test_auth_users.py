"""Account changes, customer assignments, the audit log: permissions, values before/after, CLI."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access.audit import audit_choices, search_audit
from analytics.access.roles import ROLES, SYSTEM, Actor, PermissionDenied
from analytics.access.users import (
    UserError,
    add_user,
    change_own_password,
    check_password,
    set_active,
    set_password,
    set_role,
    unlock_user,
)
from analytics.cli.main import main
from analytics.collections.assignments import (
    AssignmentError,
    assign_customers,
    assignment_preview,
    collector_load,
)
from analytics.store.connection import Store, bulk_insert

ROOT = Path(__file__).resolve().parent.parent
ADMIN = Actor("root", "admin", "Root")


def _customers(store: Store, rows: list[tuple[str, str, str, str | None]]) -> None:
    frame = pd.DataFrame(rows, columns=["customer_id", "segment", "country", "collector"])
    frame["name"] = "Customer " + frame.customer_id
    frame["currency"] = "EUR"
    frame["created_at"] = datetime(2026, 1, 1)
    with store.write() as conn:
        bulk_insert(conn, "customers", frame)



@pytest.fixture(autouse=True)
def _cheap_bcrypt(cheap_bcrypt: None) -> None:
    """Every test here hashes passwords at the cheap cost."""


@pytest.fixture
def team(store: Store) -> Store:
    add_user(store, SYSTEM, "root", "Root", "admin", password="root-password")
    add_user(store, SYSTEM, "ana", "Ana", "collector", password="ana-password")
    add_user(store, SYSTEM, "bo", "Bo", "collector", password="bo-password")
    add_user(store, SYSTEM, "cy", "Cy", "analyst", password="cy-password")
    _customers(store, [("C1", "enterprise", "DE", None), ("C2", "enterprise", "FR", "ana"),
                       ("C3", "small business", "DE", "ana"), ("C4", "small business", "FR", "bo")])
    return store


def _counts(store: Store) -> dict[str, int]:
    return {t: int(store.scalar(f"SELECT COUNT(*) FROM {t}")) for t in ("users", "audit_log", "customers", "activities")}


def _snapshot(store: Store) -> tuple:
    return (_counts(store), store.read("SELECT * FROM users ORDER BY username").to_csv(),
            store.read("SELECT customer_id, collector FROM customers ORDER BY customer_id").to_csv())


WRITES = {
    "add_user": lambda s, a: add_user(s, a, "eve", "Eve", "admin", password="eve-password"),
    "set_password": lambda s, a: set_password(s, a, "ana", "stolen-password"),
    "set_active": lambda s, a: set_active(s, a, "ana", False),
    "set_role": lambda s, a: set_role(s, a, "ana", "admin"),
    "unlock_user": lambda s, a: unlock_user(s, a, "ana"),
    "assign_customers": lambda s, a: assign_customers(s, a, "bo", segment="enterprise"),
    "assign_customers_by_id": lambda s, a: assign_customers(s, a, "bo", customer_ids=["C1"]),
}


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_every_write_is_refused_for_non_admins_and_writes_nothing(team: Store, role: str) -> None:
    with team.write() as conn:  # give ana a lock-out so unlock_user would have work to do
        conn.execute(sa.text("UPDATE users SET failed_logins = 5 WHERE username = 'ana'"))
    before = _snapshot(team)
    for name, write in WRITES.items():
        with pytest.raises(PermissionDenied, match=f"mallory \\({'.*'}\\) may not"):
            write(team, Actor("mallory", role))
        assert _snapshot(team) == before, name


def test_admin_changes_are_audited_with_before_and_after(team: Store) -> None:
    assert set_role(team, ADMIN, "cy", "viewer") is True
    assert set_active(team, ADMIN, "cy", False) is True
    assert set_active(team, ADMIN, "cy", False) is False  # already disabled: nothing recorded
    assert set_active(team, ADMIN, "cy", True) is True
    with team.write() as conn:
        conn.execute(sa.text("UPDATE users SET failed_logins = 5, locked_until = :t WHERE username = 'cy'"),
                     {"t": datetime(2026, 11, 2, 9, 15)})
    assert unlock_user(team, ADMIN, "cy") is True and unlock_user(team, ADMIN, "cy") is False
    lines = search_audit(team, entities=["user"], actors=["root"])
    assert [(r.action, r.entity_id, r.old_values, r.new_values) for r in lines.iloc[::-1].itertuples()] == [
        ("user.set_role", "cy", '{"role": "analyst"}', '{"role": "viewer"}'),
        ("user.disable", "cy", '{"active": true}', '{"active": false}'),
        ("user.enable", "cy", '{"active": false}', '{"active": true}'),
        ("user.unlock", "cy", '{"failed_logins": 5, "locked_until": "2026-11-02T09:15:00"}',
         '{"failed_logins": 0, "locked_until": null}'),
    ]


def test_the_last_active_admin_cannot_be_disabled_or_demoted(team: Store) -> None:
    with pytest.raises(UserError, match="root is the last active admin"):
        set_active(team, ADMIN, "root", False)
    with pytest.raises(UserError, match="root is the last active admin"):
        set_role(team, ADMIN, "root", "viewer")
    set_role(team, ADMIN, "cy", "admin")
    assert set_active(team, ADMIN, "root", False) is True
    with pytest.raises(UserError, match="There is no user zed"):
        set_role(team, ADMIN, "zed", "viewer")
    with pytest.raises(UserError, match="Unknown role"):
        set_role(team, ADMIN, "cy", "wizard")


def test_passwords_are_bcrypt_hashes_never_clear_text(team: Store) -> None:
    set_password(team, ADMIN, "bo", "a-new-secret-1")
    hashes = team.read("SELECT username, password_hash FROM users").set_index("username").password_hash
    assert all(re.fullmatch(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}", h) for h in hashes)
    assert check_password("a-new-secret-1", hashes["bo"]) and not check_password("bo-password", hashes["bo"])
    everything = team.read("SELECT * FROM audit_log").to_csv() + team.read("SELECT * FROM users").to_csv()
    assert "a-new-secret-1" not in everything and "bo-password" not in everything


def test_assign_by_segment_country_and_ids_records_each_customer_before_and_after(team: Store) -> None:
    assert assign_customers(team, ADMIN, "bo", segment="enterprise") == 2
    assert assign_customers(team, ADMIN, "bo", segment="enterprise") == 0  # a repeat changes nothing
    assert assign_customers(team, ADMIN, "ana", country="fr", segment="small business") == 1
    assert assign_customers(team, ADMIN, None, customer_ids=["C3"]) == 1
    assert team.read("SELECT customer_id, collector FROM customers ORDER BY customer_id").fillna("-").to_dict(
        "records") == [{"customer_id": "C1", "collector": "bo"}, {"customer_id": "C2", "collector": "bo"},
                       {"customer_id": "C3", "collector": "-"}, {"customer_id": "C4", "collector": "ana"}]
    lines = search_audit(team, actions=["customer.assign"]).iloc[::-1]
    assert [(r.entity_id, json.loads(r.old_values), json.loads(r.new_values), r.detail)
            for r in lines.itertuples()] == [
        ("C1", {"collector": None}, {"collector": "bo"}, "assigned by segment=enterprise"),
        ("C2", {"collector": "ana"}, {"collector": "bo"}, "assigned by segment=enterprise"),
        ("C4", {"collector": "bo"}, {"collector": "ana"}, "assigned by segment=small business, country=fr"),
        ("C3", {"collector": "ana"}, {"collector": None}, "assigned by chosen customers"),
    ]
    timeline = team.read("SELECT customer_id, kind, author, target FROM activities ORDER BY activity_id")
    assert timeline.fillna("").to_dict("records") == [
        {"customer_id": "C1", "kind": "reassignment", "author": "root", "target": "bo"},
        {"customer_id": "C2", "kind": "reassignment", "author": "root", "target": "bo"},
        {"customer_id": "C4", "kind": "reassignment", "author": "root", "target": "ana"},
        {"customer_id": "C3", "kind": "reassignment", "author": "root", "target": ""}]
    assert collector_load(team).to_dict("records") == [
        {"collector": "bo", "name": "Bo", "customers": 2}, {"collector": "ana", "name": "Ana", "customers": 1}]


def test_assignment_refusals(team: Store) -> None:
    before = _snapshot(team)
    with pytest.raises(AssignmentError, match="Choose customers, a segment or a country"):
        assign_customers(team, ADMIN, "bo")
    with pytest.raises(AssignmentError, match="cy is not an active collector"):
        assign_customers(team, ADMIN, "cy", segment="enterprise")
    with pytest.raises(AssignmentError, match="There is no user zed"):
        assign_customers(team, ADMIN, "zed", segment="enterprise")
    assert assign_customers(team, ADMIN, "bo", customer_ids=[]) == 0
    assert _snapshot(team) == before


def test_bulk_assignment_of_thousands_is_one_set_based_step(store: Store) -> None:
    add_user(store, SYSTEM, "ana", "Ana", "collector")
    n = 6000
    _customers(store, [(f"K{i:05d}", "mid-market" if i % 3 else "enterprise", "NL", "old" if i % 2 else None)
                       for i in range(n)])
    expected = sum(1 for i in range(n) if i % 3)
    assert assignment_preview(store, segment="mid-market").fillna("-").to_dict("records") == [
        {"collector": "-", "customers": sum(1 for i in range(n) if i % 3 and not i % 2)},
        {"collector": "old", "customers": sum(1 for i in range(n) if i % 3 and i % 2)}]
    assert assign_customers(store, SYSTEM, "ana", segment="mid-market", country="NL") == expected
    assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'customer.assign'") == expected
    assert store.scalar("SELECT COUNT(*) FROM customers WHERE collector = 'ana'") == expected
    assert store.scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'customer.assign' AND old_values = '{\"collector\": \"old\"}'"
    ) == sum(1 for i in range(n) if i % 3 and i % 2)


def test_audit_search_filters_and_choices(team: Store) -> None:
    assign_customers(team, ADMIN, "bo", customer_ids=["C1"])
    set_role(team, ADMIN, "cy", "viewer")
    assert search_audit(team, actors=["root"])[["action", "entity_id"]].to_dict("records") == [
        {"action": "user.set_role", "entity_id": "cy"}, {"action": "customer.assign", "entity_id": "C1"}]
    assert search_audit(team, text="VIEWER").action.tolist() == ["user.set_role"]
    assert search_audit(team, entities=["customer"], actions=["customer.assign", "user.add"]).entity_id.tolist() == ["C1"]
    today = date.today()
    assert len(search_audit(team, start=today, end=today)) == 6
    assert search_audit(team, end=today - timedelta(days=1)).empty
    assert len(search_audit(team, limit=2)) == 2
    assert audit_choices(team) == {"actor": ["root", "system"], "action": ["customer.assign", "user.add", "user.set_role"],
                                   "entity": ["customer", "user"]}


def test_nothing_in_the_app_can_edit_or_delete_the_audit_log() -> None:
    pattern = re.compile(
        r"(UPDATE\s+audit_log|DELETE\s+FROM\s+audit_log|TRUNCATE\s+(TABLE\s+)?audit_log|DROP\s+TABLE\s+(IF\s+EXISTS\s+)?audit_log"
        r"|audit_log\s*\.\s*(update|delete)\s*\()",
        re.IGNORECASE,
    )
    sources = [*ROOT.joinpath("analytics").rglob("*.py"), *ROOT.joinpath("pages").rglob("*.py"), ROOT / "app.py"]
    assert len(sources) >= 10
    offenders = [str(p.relative_to(ROOT)) for p in sources if pattern.search(p.read_text())]
    assert offenders == []
    assert pattern.search("conn.execute(audit_log.update().values(detail='x'))")  # the scan does catch them


def _cli(db: Path, *args: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--db", str(db), "users", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_users_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    db = tmp_path / "cli.duckdb"

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        return _cli(db, *args, stdin=stdin, monkeypatch=monkeypatch, capsys=capsys)

    assert run("add", "Root", "--role", "admin", "--name", "Root", stdin="root-password\n")[:2] == (0, "Added Root (admin).\n")
    assert run("add", "ana", "--role", "collector", "--name", "Ana", stdin="ana-password\n")[0] == 0
    assert run("set-role", "ana", "analyst")[1] == "ana is now analyst.\n"
    assert run("disable", "ana")[1] == "ana is disabled.\n"
    assert run("disable", "ana")[1] == "ana is disabled already; nothing changed.\n"
    assert run("enable", "ana")[1] == "ana is enabled.\n"
    assert run("reset-password", "ana", stdin="another-password\n")[1] == "Password of ana changed.\n"
    assert run("disable", "root") == (2, "", "ardesk: root is the last active admin; enable or add another admin first.\n")
    assert run("set-role", "zed", "viewer")[2] == "ardesk: There is no user zed.\n"
    code, out, _ = run("list", "--format", "json")
    assert code == 0 and [(u["username"], u["role"], u["active"]) for u in json.loads(out)] == [
        ("root", "admin", True), ("ana", "analyst", True)]
    from analytics.migrations import connect

    s = connect(str(db))
    try:
        assert search_audit(s).action.tolist()[::-1] == [
            "user.add", "user.add", "user.set_role", "user.disable", "user.enable", "user.reset_password"]
        assert check_password("another-password", s.scalar("SELECT password_hash FROM users WHERE username='ana'"))
    finally:
        s.close()


def test_changing_your_own_password_needs_the_current_one(store: Store) -> None:
    add_user(store, SYSTEM, "ann", "Ann", "collector", password="first-password-1")
    ann = Actor("ann", "collector", "Ann")
    audit_lines = store.scalar("SELECT COUNT(*) FROM audit_log")
    with pytest.raises(UserError, match="current password is not right"):
        change_own_password(store, ann, "wrong-password", "second-password-2")
    with pytest.raises(UserError, match="same as the current one"):
        change_own_password(store, ann, "first-password-1", "first-password-1")
    with pytest.raises(UserError, match="at least 8 characters"):
        change_own_password(store, ann, "first-password-1", "short")
    assert store.scalar("SELECT COUNT(*) FROM audit_log") == audit_lines  # nothing written
    change_own_password(store, ann, "first-password-1", "second-password-2")
    hashed = store.scalar("SELECT password_hash FROM users WHERE username = 'ann'")
    assert check_password("second-password-2", hashed) and not check_password("first-password-1", hashed)
    line = store.read("SELECT actor, action, entity_id, old_values, new_values, detail FROM audit_log "
                      "ORDER BY audit_id DESC LIMIT 1").iloc[0]
    assert (line.actor, line.action, line.entity_id) == ("ann", "user.reset_password", "ann")
    assert "password-2" not in f"{line.old_values}{line.new_values}{line.detail}"

