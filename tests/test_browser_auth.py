"""Sign-in in a real browser: refusal message, role navigation, sign-out, deep links, cookie re-login,
and sessions kept in the store: a copied cookie dies with sign-out, a reload past the idle limit
signs out.

Runs its own small server (accounts only, no ledger) so failed sign-ins here cannot lock an
account another browser test uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect

from analytics.access.roles import SYSTEM, allowed_pages
from analytics.access.users import add_user
from analytics.migrations import connect
from tests.conftest import (
    DEMO_PASSWORD,
    choose_option,
    refuse_csp_violations,
    screenshot,
    serve_app,
    session_cookie,
    submit_sign_in,
    wait_for_session_cookie,
)

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("auth_server")
    db = workdir / "ardesk.duckdb"
    s = connect(str(db))
    for role in ("admin", "cfo", "collector"):
        add_user(s, SYSTEM, role, f"{role.title()} Person", role, password=DEMO_PASSWORD)
    add_user(s, SYSTEM, "leaver", "Lee Leaver", "collector", password=DEMO_PASSWORD)
    add_user(s, SYSTEM, "changer", "Cam Changer", "viewer", password=DEMO_PASSWORD)
    add_user(s, SYSTEM, "roamer", "Ro Amer", "sales", password=DEMO_PASSWORD)
    s.close()
    with serve_app(db, workdir) as url:
        yield url


@pytest.fixture
def auth_page(browser, auth_server: str):
    ctx = browser.new_context(base_url=auth_server, viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(45_000)  # the machine is shared; the first script run alone can take 8 s
    violations = refuse_csp_violations(pg)
    yield pg
    ctx.close()
    assert violations == []


def _open_sign_in(page, username: str, password: str = DEMO_PASSWORD) -> str:
    page.goto("/")
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    return submit_sign_in(page, username, password)


def _sign_in(page, username: str) -> None:
    outcome = _open_sign_in(page, username)
    assert outcome == "signed in", outcome
    expect(page.get_by_text("Signed in as")).to_be_visible()


def _nav_links(page) -> list[str]:
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav).to_be_visible()
    # Each link reads "<icon name>\n\n<title>" (the icon font's ligature text); keep the title.
    return sorted(t.strip().splitlines()[-1] for t in nav.get_by_role("link").all_inner_texts())


def _expected_links(role: str) -> list[str]:
    return sorted(p.title for p in allowed_pages(role))


def test_wrong_password_is_refused_then_the_right_one_signs_in_and_signs_out(auth_page) -> None:
    page = auth_page
    _open_sign_in(page, "cfo", "not-the-password")
    expect(page.get_by_text("Username or password is incorrect.")).to_be_visible()
    assert session_cookie(page) is None
    screenshot(page, "auth_wrong_password")

    _sign_in(page, "cfo")
    assert len(_expected_links("cfo")) >= 2  # with one page Streamlit hides the navigation
    assert _nav_links(page) == _expected_links("cfo")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.reload()  # the cookie signs the session in again
    expect(page.get_by_text("Signed in as")).to_be_visible()

    page.get_by_role("button", name="Logout").click()
    wait_for_session_cookie(page, present=False)
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_have_count(0)


def test_navigation_matches_the_admin_role_and_pages_open(auth_page) -> None:
    page = auth_page
    _sign_in(page, "admin")
    assert _nav_links(page) == _expected_links("admin")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d+ line\(s\)"))).to_be_visible()  # the grid itself is a canvas
    expect(page.get_by_role("button", name="Download the audit log (CSV)")).to_be_enabled()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Users and assignments").click()
    expect(page.get_by_role("heading", name="Users and assignments")).to_be_visible()
    screenshot(page, "auth_admin_users")


def test_a_deep_link_to_a_forbidden_page_says_why_and_links_the_roles_pages(auth_page) -> None:
    page = auth_page
    _sign_in(page, "cfo")
    page.goto("/admin")  # admins only: the same URL, and a sentence instead of the page
    expect(page.get_by_text("Signed in as")).to_be_visible()
    expect(page.get_by_text("Your role (CFO / controller) may not open the Users and assignments page.")).to_be_visible()
    expect(page.get_by_role("heading", name="Users and assignments")).to_have_count(0)
    page.get_by_test_id("stMain").get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.goto("/audit")  # allowed: the deep link is honoured
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    screenshot(page, "auth_deeplink_cfo")


def test_an_account_disabled_by_an_admin_is_signed_out_on_its_next_load(browser, auth_server: str) -> None:
    contexts = [browser.new_context(base_url=auth_server, viewport={"width": 1400, "height": 900}) for _ in range(2)]
    try:
        leaver, admin = (ctx.new_page() for ctx in contexts)
        for pg in (leaver, admin):
            pg.set_default_timeout(45_000)
        _sign_in(leaver, "leaver")
        _sign_in(admin, "admin")
        admin.get_by_test_id("stSidebarNav").get_by_role("link", name="Users and assignments").click()
        expect(admin.get_by_role("heading", name="Change an account")).to_be_visible()
        choose_option(admin.get_by_test_id("stSelectbox").filter(has_text="Account"), "leaver", exact=False)
        admin.get_by_role("button", name="Disable account").click()
        expect(admin.get_by_text("leaver is disabled and is signed out on their next page load.")).to_be_visible()

        cookies = leaver.context.cookies()
        leaver.reload()  # the cookie still names the session, but the account is disabled
        expect(leaver.get_by_text("Your account has been disabled. Ask an administrator to enable it.")).to_be_visible()
        expect(leaver.get_by_role("button", name="Login")).to_be_visible()
        screenshot(leaver, "auth_disabled_signed_out")
        _expect_signed_out_with(browser, auth_server, cookies)  # the session ended for every copy of the cookie
    finally:
        for ctx in contexts:
            ctx.close()


def test_a_user_changes_their_password_and_signs_in_with_the_new_one(auth_page) -> None:
    page = auth_page
    _sign_in(page, "changer")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="My account").click()
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    page.get_by_role("textbox", name="Current password").fill(DEMO_PASSWORD)
    page.get_by_role("textbox", name="New password (at least 8 characters)").fill("changed-password-9")
    page.get_by_role("textbox", name="New password again").fill("changed-password-9")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Password changed.")).to_be_visible()
    screenshot(page, "account_password_changed")
    page.reload()  # the old cookie predates the change: signed out
    expect(page.get_by_text("Your password was changed since you signed in. Sign in again.")).to_be_visible()
    submit_sign_in(page, "changer", "changed-password-9")
    expect(page.get_by_text("Signed in as")).to_be_visible()


@contextmanager
def _fresh_browser_with(browser, server: str, cookies: list[dict]):
    """A fresh browser holding only `cookies` (copied from another one), on the app's first page."""
    ctx = browser.new_context(base_url=server, viewport={"width": 1400, "height": 900})
    try:
        ctx.add_cookies(cookies)
        page = ctx.new_page()
        page.set_default_timeout(45_000)
        page.goto("/")
        yield page
    finally:
        ctx.close()


def _expect_signed_out_with(browser, server: str, cookies: list[dict]) -> None:
    """The copied cookies get the sign-in form."""
    with _fresh_browser_with(browser, server, cookies) as page:
        expect(page.get_by_role("button", name="Login")).to_be_visible()
        expect(page.get_by_text("This session has ended. Sign in again.")).to_be_visible()
        expect(page.get_by_text("Signed in as")).to_have_count(0)


def _expect_signed_in_with(browser, server: str, cookies: list[dict]) -> None:
    with _fresh_browser_with(browser, server, cookies) as page:
        expect(page.get_by_text("Signed in as Cfo Person")).to_be_visible()


def test_the_cookie_is_http_only_and_a_copy_of_it_dies_with_sign_out(browser, auth_page, auth_server: str) -> None:
    page = auth_page
    _sign_in(page, "cfo")
    cookie = next(c for c in page.context.cookies() if c["value"] == session_cookie(page))
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Strict", False)  # plain http
    assert cookie["value"] not in page.evaluate("document.cookie")  # page scripts cannot read it
    copied = page.context.cookies()
    _expect_signed_in_with(browser, auth_server, copied)  # a copy works while the session is open

    page.get_by_role("button", name="Logout").click()
    wait_for_session_cookie(page, present=False)
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    _expect_signed_out_with(browser, auth_server, copied)


def test_the_cookie_is_secure_behind_an_https_proxy(browser, auth_server: str) -> None:
    ctx = browser.new_context(base_url=auth_server, viewport={"width": 1400, "height": 900},
                              extra_http_headers={"X-Forwarded-Proto": "https"})
    try:
        page = ctx.new_page()
        page.set_default_timeout(45_000)
        _sign_in(page, "collector")
        assert [c["secure"] for c in ctx.cookies() if c["value"] == session_cookie(page)] == [True]
    finally:
        ctx.close()


def test_sign_out_everywhere_ends_the_sessions_of_other_browsers(browser, auth_page, auth_server: str) -> None:
    page = auth_page
    _sign_in(page, "roamer")
    other = browser.new_context(base_url=auth_server, viewport={"width": 1400, "height": 900})
    try:
        elsewhere = other.new_page()
        elsewhere.set_default_timeout(45_000)
        _sign_in(elsewhere, "roamer")
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="My account").click()
        expect(page.get_by_text("2 open sessions")).to_be_visible()
        page.get_by_role("button", name="Sign out everywhere").click()
        wait_for_session_cookie(page, present=False)
        expect(page.get_by_role("button", name="Login")).to_be_visible()
        elsewhere.reload()
        expect(elsewhere.get_by_text("This session has ended. Sign in again.")).to_be_visible()
        expect(elsewhere.get_by_role("button", name="Login")).to_be_visible()
    finally:
        other.close()


def test_the_one_time_ticket_works_once_and_only_from_this_site(auth_page) -> None:
    """The sign-in hands the browser a ticket for /auth/session; sent from another site, or a second
    time, it sets no cookie."""
    page = auth_page
    tickets: list[str] = []

    def hold(route) -> None:  # keep the ticket for the requests below instead of following it
        tickets.append(route.request.url)
        route.abort()

    page.route("**/auth/session?*", hold)
    page.goto("/")
    page.get_by_role("textbox", name="Username").fill("cfo")
    page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Login").click()
    for _ in range(450):
        if tickets:
            break
        page.wait_for_timeout(100)
    assert len(tickets) == 1 and "ticket=" in tickets[0]
    assert session_cookie(page) is None
    request = page.context.request
    cross = request.get(tickets[0], max_redirects=0, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status == 303 and "set-cookie" not in cross.headers
    used = request.get(tickets[0], max_redirects=0)
    assert used.status == 303 and used.headers["location"] == "/"
    assert "HttpOnly" in used.headers["set-cookie"] and "SameSite=strict" in used.headers["set-cookie"]
    again = request.get(tickets[0], max_redirects=0)
    assert again.status == 303 and "set-cookie" not in again.headers


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose idle limit is 12 seconds (settings.toml with `idle_minutes = 0.2`)."""
    workdir = tmp_path_factory.mktemp("idle_server")
    db = workdir / "ardesk.duckdb"
    s = connect(str(db))
    add_user(s, SYSTEM, "cfo", "Cfo Person", "cfo", password=DEMO_PASSWORD)
    s.close()
    settings = workdir / "settings.toml"
    text = (ROOT / "config" / "settings.toml").read_text()
    settings.write_text(re.sub(r"(?m)^idle_minutes = .*$", f"idle_minutes = {IDLE_SECONDS / 60}", text))
    with serve_app(db, workdir, ARDESK_SETTINGS=str(settings)) as url:
        yield url


IDLE_SECONDS = 12


@pytest.mark.slow
def test_a_reload_after_the_idle_limit_signs_out(browser, idle_server: str) -> None:
    ctx = browser.new_context(base_url=idle_server, viewport={"width": 1400, "height": 900})
    try:
        page = ctx.new_page()
        page.set_default_timeout(45_000)
        _sign_in(page, "cfo")
        page.wait_for_timeout((IDLE_SECONDS + 2) * 1000)  # idle: no click, no reload
        page.reload()
        expect(page.get_by_text("You were signed out after a period of inactivity. Sign in again.")).to_be_visible()
        expect(page.get_by_role("button", name="Login")).to_be_visible()
        expect(page.get_by_text("Signed in as")).to_have_count(0)
    finally:
        ctx.close()
