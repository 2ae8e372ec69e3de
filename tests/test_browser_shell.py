"""A person signs in with a real browser, sees the Overview, and signs out."""

from __future__ import annotations

from pathlib import Path

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


def test_the_browser_runs_at_the_priority_of_the_app_it_drives(page) -> None:
    """No Chromium thread runs above normal priority (conftest drops CAP_SYS_NICE; as root it takes nice -8)."""
    import psutil

    sign_in(page, "admin")
    chromium = [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]
    assert chromium
    nice = {}
    for process in chromium:
        for thread in process.threads():
            stat = Path(f"/proc/{process.pid}/task/{thread.id}/stat")
            if stat.exists():  # a thread may end between the listing and the read
                nice[thread.id] = int(stat.read_text().rsplit(")", 1)[1].split()[16])  # field 19: nice
    assert nice and min(nice.values()) >= 0, sorted(set(nice.values()))
