"""A dashboard link sent to a colleague who is signed out: sign in first, then the linked view."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_signed_out_link_signs_in_then_opens_the_linked_view(page) -> None:
    sign_in(page, "cfo", path="/aging?segment=enterprise")
    expect(page.get_by_role("heading", name="Aging", exact=True)).to_be_visible()
    assert "segment=enterprise" in page.url, page.url
    screenshot(page, "deeplink_signed_out")


def test_signed_out_link_works_after_other_sessions_signed_in(browser, app_server: str) -> None:
    """Once any session has run the app's navigation, Streamlit resolves paths against it: the
    signed-out shell registers every page path, so the link shows the sign-in form (no "page not
    found") and opens after sign-in."""
    other = browser.new_context(base_url=app_server)
    sign_in(other.new_page(), "admin")
    ctx = browser.new_context(base_url=app_server, viewport={"width": 1400, "height": 900})
    try:
        page = ctx.new_page()
        sign_in(page, "cfo", path="/dso?segment=enterprise")
        expect(page.get_by_role("heading", name="DSO & cash", exact=True)).to_be_visible()
        assert "segment=enterprise" in page.url, page.url
    finally:
        ctx.close()
        other.close()
