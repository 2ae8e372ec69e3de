"""Sign-in in a real browser: refusal message, role navigation, sign-out, deep links, cookie re-login.

Runs its own small server (accounts only, no ledger) so failed sign-ins here cannot lock an
account another browser test uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from analytics.roles import SYSTEM, allowed_pages
from analytics.store import connect
from analytics.users import add_user
from tests.conftest import DEMO_PASSWORD, screenshot, serve_app, submit_sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("auth_server")
    db = workdir / "ardesk.duckdb"
    s = connect(str(db))
    for role in ("admin", "cfo", "collector"):
        add_user(s, SYSTEM, role, f"{role.title()} Person", role, password=DEMO_PASSWORD)
    add_user(s, SYSTEM, "leaver", "Lee Leaver", "collector", password=DEMO_PASSWORD)
    add_user(s, SYSTEM, "changer", "Cam Changer", "viewer", password=DEMO_PASSWORD)
    s.close()
    with serve_app(db, workdir, ARDESK_COOKIE_KEY="test-cookie-key-0123456789abcdef") as url:
        yield url


@pytest.fixture
def auth_page(browser, auth_server: str):
    ctx = browser.new_context(base_url=auth_server, viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(45_000)  # the machine is shared; the first script run alone can take 8 s
    yield pg
    ctx.close()


def _open_sign_in(page, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/")
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    submit_sign_in(page, username, password)


def _sign_in(page, username: str) -> None:
    _open_sign_in(page, username)
    page.wait_for_function("document.cookie.includes('ardesk_auth=')")
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
    assert "ardesk_auth=" not in page.evaluate("document.cookie")
    screenshot(page, "auth_wrong_password")

    _sign_in(page, "cfo")
    assert len(_expected_links("cfo")) >= 2  # with one page Streamlit hides the navigation
    assert _nav_links(page) == _expected_links("cfo")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.reload()  # the cookie signs the session in again
    expect(page.get_by_text("Signed in as")).to_be_visible()

    page.get_by_role("button", name="Logout").click()
    page.wait_for_function("!document.cookie.includes('ardesk_auth=')")
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
    expect(page.get_by_role("button", name="Export CSV")).to_be_enabled()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Users and assignments").click()
    expect(page.get_by_role("heading", name="Users and assignments")).to_be_visible()
    screenshot(page, "auth_admin_users")


def test_a_deep_link_to_a_forbidden_page_lands_on_an_allowed_one(auth_page) -> None:
    page = auth_page
    _sign_in(page, "cfo")
    page.goto("/admin")  # admins only
    expect(page.get_by_text("Signed in as")).to_be_visible()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("heading", name="Users and assignments")).to_have_count(0)
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
        admin.get_by_test_id("stSelectbox").filter(has_text="Account").click()
        admin.get_by_role("option", name="leaver").click()
        admin.get_by_role("button", name="Disable account").click()
        expect(admin.get_by_text("leaver is disabled and is signed out on their next page load.")).to_be_visible()

        leaver.reload()  # the cookie is still valid, but the account is not
        expect(leaver.get_by_text("Your account can no longer sign in. Ask an administrator.")).to_be_visible()
        expect(leaver.get_by_role("button", name="Login")).to_be_visible()
        leaver.wait_for_function("!document.cookie.includes('ardesk_auth=')")
        screenshot(leaver, "auth_disabled_signed_out")
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

