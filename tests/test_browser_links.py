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


@pytest.mark.slow
def test_every_page_url_is_the_same_for_every_role_and_a_refused_one_says_why(browser, app_server: str) -> None:
    """The issue's case: `/worklist` (the collector's home) and `/overview` open at their own URLs;
    "/" shows the role's home page; a page the role may not open says so in words, with the
    role's pages; the sidebar lists only the role's pages; never Streamlit's "Page not found"."""
    from analytics.access.roles import PAGES, ROLE_LABELS, allowed_pages

    for username, role in (("ana.collector", "collector"), ("gina.sales", "sales")):
        ctx = browser.new_context(base_url=app_server, viewport={"width": 1400, "height": 900})
        try:
            page = ctx.new_page()
            sign_in(page, username)
            allowed = allowed_pages(role)
            home = "Worklist" if role == "collector" else "Overview"
            expect(page.get_by_role("heading", name=home, exact=True)).to_be_visible()  # at "/"
            nav = page.get_by_test_id("stSidebarNav")
            expect(nav.get_by_role("link")).to_have_count(len(allowed))
            assert [link.inner_text().split("\n")[-1].strip() for link in nav.get_by_role("link").all()] == [
                p.title for p in allowed]
            for spec in PAGES if role == "sales" else [p for p in PAGES if p.key in ("worklist", "overview", "audit")]:
                page.goto(f"/{spec.key}")
                expect(page.get_by_text("Signed in as")).to_be_visible()
                if spec in allowed:
                    expect(page.get_by_role("heading", name=spec.title, exact=True)).to_be_visible()
                else:
                    expect(page.get_by_text(f"Your role ({ROLE_LABELS[role]}) may not open the {spec.title} page. "
                                            f"Your pages: {', '.join(p.title for p in allowed)}.")).to_be_visible()
                    main = page.get_by_test_id("stMain")
                    expect(main.get_by_role("link", name="Customer 360")).to_be_visible()
                    if spec.key == "audit":
                        screenshot(page, f"refused_page_{role}")
                assert page.url.split("?")[0].endswith(f"/{spec.key}"), page.url  # a dashboard adds its filters
                expect(page.get_by_text("Page not found")).to_have_count(0)
        finally:
            ctx.close()
