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
