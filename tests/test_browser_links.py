"""A dashboard link sent to a colleague who is signed out: sign in first, then the linked view."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import DEMO_PASSWORD, screenshot, wait_idle

pytestmark = pytest.mark.browser

def test_signed_out_link_signs_in_then_opens_the_linked_view(page) -> None:
    page.goto("/aging?segment=enterprise")
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    wait_idle(page)
    page.get_by_role("textbox", name="Username").fill("cfo")
    page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Login").click()
    page.wait_for_function("document.cookie.includes('ardesk_auth=')")
    expect(page.get_by_role("heading", name="Aging", exact=True)).to_be_visible()
    wait_idle(page, quiet_ms=1500)
    expect(page.get_by_role("heading", name="Aging", exact=True)).to_be_visible()
    assert "segment=enterprise" in page.url, page.url
    screenshot(page, "deeplink_signed_out")
