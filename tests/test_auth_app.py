"""The app's sign-in, navigation per role, session checks and admin pages, through AppTest."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.access.roles import PAGES, ROLE_LABELS, ROLES, SYSTEM, allowed_pages, home_page
from analytics.access.sessions import open_session
from analytics.access.users import add_user, set_active, set_password, set_role
from analytics.migrations import connect
from analytics.settings import load_settings
from analytics.store.connection import bulk_insert
from tests.conftest import APPTEST_TIMEOUT_S, displayed

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PASSWORD = "test-password-1"


@pytest.fixture(scope="module")
def team_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one account per role (username = role), plus collector bo, and four customers.

    Built once (bcrypt is slow on purpose); each test gets its own copy.
    """
    path = tmp_path_factory.mktemp("team") / "team.duckdb"
    s = connect(str(path))
    for role in ROLES:
        add_user(s, SYSTEM, role, f"{role.title()} Person", role, password=PASSWORD)
    add_user(s, SYSTEM, "bo", "Bo Collector", "collector", password=PASSWORD)
    frame = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"], "name": ["Acme", "Beta", "Core", "Dyn"],
                          "segment": ["enterprise", "enterprise", "small business", "public sector"],
                          "country": ["DE", "FR", "DE", "NL"], "currency": "EUR", "created_at": datetime(2026, 1, 1)})
    with s.write() as conn:
        bulk_insert(conn, "customers", frame)
    s.close()
    return path


@pytest.fixture
def team_db(team_template: Path, tmp_path: Path, app_env) -> Path:
    path = tmp_path / "team.duckdb"
    shutil.copy(team_template, path)
    app_env(path)
    return path


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT_S)


def _signed_in(username: str, role: str) -> AppTest:
    """An AppTest signed in as `username` (whose role in the store is `role`): a session opened in the
    store as the sign-in form opens it. AppTest cannot send cookies, so the session id is seeded."""
    s = connect(os.environ["ARDESK_DB"])
    try:
        assert s.scalar("SELECT role FROM users WHERE username = :u", {"u": username}) == role
        session_id = open_session(s, username).session_id
    finally:
        s.close()
    at = _app()
    at.session_state["_session_id"] = session_id
    return at.run()


def _who(at: AppTest) -> str | None:
    """The username the app drew as signed in, or None when it drew the sign-in form."""
    return at.session_state["actor"].username if "actor" in at.session_state else None


SESSION_KEYS = ("_session_id",)


def _next_load(at: AppTest) -> AppTest:
    """The same session's next page load, in a fresh AppTest.

    Re-running one AppTest after it finished on a page whose url path equals its file name makes
    AppTest run that file as a `pages/` directory page, skipping app.py (the real server does not).
    """
    nxt = _app()
    for key in SESSION_KEYS:
        if key in at.session_state:
            nxt.session_state[key] = at.session_state[key]
    return nxt.run()


def _submit(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def _registered(at: AppTest) -> list[str]:
    return sorted(info["script_path"] for info in at._registered_pages.values())


def test_wrong_password_is_refused_and_the_right_one_signs_in(team_db: Path) -> None:
    at = _app().run()
    assert [t.label for t in at.text_input] == ["Username", "Password"] and at.button[0].label == "Login"
    _submit(at, "cfo", "not-the-password")
    assert [displayed(e.value) for e in at.error] == ["Username or password is incorrect."]
    assert _who(at) is None
    _submit(at, "CFO", PASSWORD)
    assert _who(at) == "cfo"  # the same click drew the signed-in app
    assert not at.exception
    assert "Signed in as **Cfo Person** (CFO / controller)" in [c.value for c in at.sidebar.caption]
    # every page, and the cfo's home page (the Overview) once more, unlisted, at "/"
    assert _registered(at) == sorted([str(ROOT / "pages/overview.py"), *(str(ROOT / p.path) for p in PAGES)])
    assert at.title[0].value == "Overview"  # the cfo's home page
    s = connect(str(team_db))
    try:
        assert s.read("SELECT action FROM audit_log WHERE action LIKE 'sign_in.%' ORDER BY audit_id").action.tolist() == [
            "sign_in.failed", "sign_in.ok"]
    finally:
        s.close()


def test_lock_out_through_the_form_refuses_the_right_password(team_db: Path) -> None:
    limit = int(load_settings().section("auth")["max_failed_logins"])
    at = _app().run()
    for _ in range(limit):
        _submit(at, "viewer", "wrong-password")
    assert displayed(at.error[0].value).startswith("Too many failed sign-ins: viewer is locked until ")
    _submit(at, "viewer", PASSWORD)
    assert _who(at) is None
    assert displayed(at.error[0].value).startswith("Too many failed sign-ins: viewer is locked until ")
    assert "Try again then" in displayed(at.error[0].value)


@pytest.mark.parametrize("role", ROLES)
def test_every_page_has_one_url_for_every_role_and_a_refused_one_says_why(team_db: Path, role: str) -> None:
    """Every page is registered for every role under its own url path; a page the role may not open
    names the role, the page and the role's pages (linked), and draws nothing of the page."""
    allowed = allowed_pages(role)
    at = _signed_in(role, role)
    assert {info["url_pathname"] for info in at._registered_pages.values()} == {"", *(p.key for p in PAGES)}
    assert at.title[0].value == home_page(role).title  # "/" shows the role's home page
    for spec in PAGES:  # a fresh session per page, as a link opened in a new tab
        at = _signed_in(role, role)
        at.switch_page(spec.path).run()
        assert not at.exception, (spec.key, at.exception)
        if spec in allowed:
            assert at.title[0].value == spec.title
            assert not [w for w in at.warning if "may not open" in w.value]
        else:
            assert not at.title, spec.key  # nothing of the page
            assert [w.value for w in at.warning] == [
                f"Your role ({ROLE_LABELS[role]}) may not open the {spec.title} page. "
                f"Your pages: {', '.join(p.title for p in allowed)}."]
            links = at.get("page_link")
            assert [link.proto.label for link in links] == [p.title for p in allowed]


def test_a_page_rechecks_the_role_when_it_loads(team_db: Path) -> None:
    from analytics.access.roles import Actor

    for page, role, title in (("pages/admin.py", "cfo", "Users and assignments"), ("pages/audit.py", "collector",
                                                                                   "Audit log")):
        at = AppTest.from_file(str(ROOT / page), default_timeout=APPTEST_TIMEOUT_S)
        at.session_state["actor"] = Actor(role, role)
        at.run()
        assert at.warning[0].value.startswith(f"Your role ({ROLE_LABELS[role]}) may not open the {title} page.")
        assert not at.title  # stopped before anything was shown


def test_a_disabled_user_is_signed_out_on_the_next_load(team_db: Path) -> None:
    at = _signed_in("bo", "collector")
    assert at.sidebar.caption[0].value.startswith("Signed in as")
    s = connect(str(team_db))
    try:
        set_active(s, SYSTEM, "bo", False)
    finally:
        s.close()
    at = _next_load(at)
    assert _who(at) is None
    assert [displayed(w.value) for w in at.warning] == ["Your account has been disabled. Ask an administrator to enable it."]
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    _submit(at, "bo", PASSWORD)
    assert [displayed(e.value) for e in at.error] == ["This account is disabled. Ask an administrator to enable it."]


def test_a_password_reset_ends_sessions_that_started_before_it(team_db: Path) -> None:
    at = _signed_in("bo", "collector")
    s = connect(str(team_db))
    try:
        set_password(s, SYSTEM, "bo", "brand-new-password")
    finally:
        s.close()
    at = _next_load(at)
    assert [displayed(w.value) for w in at.warning] == ["Your password was changed since you signed in. Sign in again."]
    _submit(at, "bo", "brand-new-password")
    assert _who(at) == "bo"
    assert not _next_load(at).warning


def test_credentials_refresh_after_account_changes(team_db: Path) -> None:
    at = _signed_in("bo", "collector")  # builds and caches the credentials
    s = connect(str(team_db))
    try:
        add_user(s, SYSTEM, "newbie", "New Person", "analyst", password=PASSWORD)
        set_role(s, SYSTEM, "bo", "analyst")
    finally:
        s.close()
    at = _next_load(at)  # the re-roled session gets the new role's pages on its next load
    assert (at.session_state["actor"].role, at.title[0].value) == ("analyst", "Overview")  # no more Worklist
    at.switch_page("pages/worklist.py").run()
    assert at.warning[0].value.startswith("Your role (Analyst) may not open the Worklist page.")
    fresh = _submit(_app().run(), "newbie", PASSWORD)  # the new account can sign in at once
    assert _who(fresh) == "newbie" and not fresh.error


def test_admin_page_adds_disables_and_assigns(team_db: Path) -> None:
    at = _signed_in("admin", "admin")
    at.switch_page("pages/admin.py").run()
    assert at.title[0].value == "Users and assignments" and not at.exception
    form = {t.label: t for t in at.text_input}
    form["Username"].input("Zoe")
    form["Full name"].input("Zoe Z")
    form["Password"].input("zoe-password")
    next(b for b in at.button if b.label == "Add account").click().run()
    assert [m.value for m in at.success] == ["Added zoe (Administrator)."] or [m.value for m in at.success] == [
        f"Added zoe ({at.selectbox[-1].value})."]
    at.selectbox(key="admin_user").select("bo").run()
    next(b for b in at.button if b.label == "Disable account").click().run()
    assert [m.value for m in at.success] == ["bo is disabled and is signed out on their next page load."]
    at.selectbox(key="assign_collector").select("collector").run()
    at.text_input(key="assign_search").input("acme").run()
    at.multiselect(key="assign_picked").select("C1").run()
    next(b for b in at.button if b.label == "Assign chosen customers").click().run()
    assert [m.value for m in at.success] == ["1 customer(s) assigned to collector."]
    s = connect(str(team_db))
    try:
        assert s.read("SELECT username, active FROM users WHERE username IN ('zoe', 'bo') ORDER BY 1").to_dict(
            "records") == [{"username": "bo", "active": False}, {"username": "zoe", "active": True}]
        assert s.scalar("SELECT collector FROM customers WHERE customer_id = 'C1'") == "collector"
        assert s.read("SELECT actor, action FROM audit_log WHERE actor = 'admin' AND action NOT LIKE 'session.%' "
                      "ORDER BY audit_id").action.tolist() == ["user.add", "user.disable", "customer.assign"]
    finally:
        s.close()


def test_audit_page_filters_the_log(team_db: Path) -> None:
    at = _signed_in("cfo", "cfo")
    at.switch_page("pages/audit.py").run()
    assert at.title[0].value == "Audit log" and not at.exception
    assert len(at.dataframe[0].value) == len(ROLES) + 2  # the user.add lines, and the cfo's session.open
    at.multiselect(key="audit_actors").select("system").run()
    at.text_input(key="audit_text").input("bo collector").run()
    assert at.dataframe[0].value[["action", "entity_id"]].to_dict("records") == [
        {"action": "user.add", "entity_id": "bo"}]
    # in words: the change field by field, no raw JSON, no "None"
    line = at.dataframe[0].value.iloc[0]
    assert "role: collector" in line["changes"].split("\n")
    assert not any(str(v).startswith("{") or str(v) in ("None", "nan") for v in line.to_numpy())
    assert at.get("download_button")[0].proto.label == "Download the audit log (CSV)"


def test_a_user_changes_their_own_password_on_my_account(team_db: Path) -> None:
    at = _signed_in("bo", "collector")
    at.switch_page("pages/account.py").run()
    assert at.title[0].value == "My account" and not at.exception
    current, new, repeat = at.text_input
    current.input("not-my-password")
    new.input("bo-new-password-2")
    repeat.input("bo-new-password-2")
    at.button[-1].click().run()
    assert [displayed(e.value) for e in at.error] == ["The current password is not right; nothing was changed."]
    current, new, repeat = at.text_input
    current.input(PASSWORD)
    new.input("bo-new-password-2")
    repeat.input("bo-new-password-2")
    at.button[-1].click().run()
    assert at.success[0].value.startswith("Password changed.")
    at = _next_load(at)  # the change voids the session it was made in, like any other
    assert [displayed(w.value) for w in at.warning] == ["Your password was changed since you signed in. Sign in again."]
    _submit(at, "bo", PASSWORD)
    assert [displayed(e.value) for e in at.error] == ["Username or password is incorrect."]
    _submit(at, "bo", "bo-new-password-2")
    assert _who(at) == "bo"



def _everywhere(db: Path, text: str) -> list[str]:
    """Where `text` occurs in the store: the raw file and its WAL (before and after the last close
    checkpoints the WAL into the file, where DuckDB may compress it), and every column of every table."""
    from pages.session import _open_store

    def raw(when: str) -> list[str]:
        return [f"{path.name} {when}" for path in (db, db.with_name(db.name + ".wal"))
                if path.exists() and text.encode() in path.read_bytes()]

    found = raw("open")
    _open_store().close()  # the app's store (this process's AppTest)
    s = connect(str(db))
    try:
        tables = s.read("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").table_name
        found += [t for t in tables if text.lower() in s.read(f"SELECT * FROM {t}").to_csv().lower()]  # noqa: S608
    finally:
        s.close()
    return found + raw("closed")


def test_a_password_typed_as_the_username_never_reaches_the_store(team_db: Path) -> None:
    typed = "Tr0ub4dor&3-Horse-Battery"  # a password, typed into the username field by mistake
    at = _submit(_app().run(), typed, "the-real-password-1")
    assert [displayed(e.value) for e in at.error] == ["Username or password is incorrect."]
    assert _who(at) is None
    assert _everywhere(team_db, typed) == []
    s = connect(str(team_db))
    try:  # the attempt is still audited, as an unknown user
        assert s.read("SELECT actor, action, entity_id, detail FROM audit_log WHERE action LIKE 'sign_in.%'").to_dict(
            "records") == [{"actor": "(unknown user)", "action": "sign_in.failed", "entity_id": None,
                            "detail": "unknown user"}]
    finally:
        s.close()


def test_logout_and_an_admins_sign_out_everywhere_end_sessions_in_the_store(team_db: Path) -> None:
    bo = _signed_in("bo", "collector")
    admin = _signed_in("admin", "admin")
    admin.switch_page("pages/admin.py").run()
    admin.selectbox(key="admin_user").select("bo").run()
    next(b for b in admin.button if b.label == "Sign out everywhere").click().run()
    assert [m.value for m in admin.success] == ["bo is signed out everywhere."]
    bo = _next_load(bo)
    assert _who(bo) is None and [displayed(w.value) for w in bo.warning] == ["This session has ended. Sign in again."]

    admin = _next_load(admin)
    assert _who(admin) == "admin"
    session_id = admin.session_state["_session_id"]
    next(b for b in admin.sidebar.button if b.label == "Logout").click().run()
    assert "_session_id" not in admin.session_state
    replayed = _app()  # a copy of the signed-out session (as a copied cookie would name it)
    replayed.session_state["_session_id"] = session_id
    replayed.run()
    assert _who(replayed) is None and [displayed(w.value) for w in replayed.warning] == ["This session has ended. Sign in again."]
    s = connect(str(team_db))
    try:
        assert s.read("SELECT username, end_reason FROM sessions ORDER BY created_at").to_dict("records") == [
            {"username": "bo", "end_reason": "signed out everywhere"}, {"username": "admin", "end_reason": "signed out"}]
    finally:
        s.close()
