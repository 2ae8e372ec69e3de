"""A person signs in with a real browser, sees the Overview, and signs out."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import screenshot, sign_in, wait_for_session_cookie

pytestmark = pytest.mark.browser


def test_sign_in_see_overview_sign_out(page) -> None:
    sign_in(page, "admin")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    screenshot(page, "overview")

    page.get_by_role("button", name="Logout").click()
    wait_for_session_cookie(page, present=False)
    expect(page.get_by_role("button", name="Login")).to_be_visible()


def test_every_page_renders_under_the_content_security_policy(page) -> None:
    """The `page` fixture fails the test on any Content-Security-Policy violation in the console."""
    from analytics.access.roles import allowed_pages

    sign_in(page, "admin")
    nav = page.get_by_test_id("stSidebarNav")
    for spec in allowed_pages("admin"):
        nav.get_by_role("link", name=spec.title, exact=True).click()
        expect(page.get_by_role("heading", name=spec.title, exact=True)).to_be_visible()
        expect(page.get_by_test_id("stException")).to_have_count(0)
    page.reload()  # the cookie signs the reloaded page in, still under the policy
    expect(page.get_by_text("Signed in as")).to_be_visible()
