"""The first session on a freshly started server signs in with ONE click, on / and on a deep link.

Streamlit runs a main script that has a `pages/` folder beside it as a legacy multipage app until
some run calls `st.navigation`, so the first session's first run drew the form under another page
hash (other widget ids) than its later runs, and its first submission was dropped; `app.py` now
draws under the main script's hash in that run too. Each test starts its own server, so its
session really is the first one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from analytics.access.roles import SYSTEM
from analytics.access.users import add_user
from tests.conftest import DEMO_PASSWORD, new_store, serve_app, submit_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[str]:
    db = tmp_path / "ardesk.duckdb"
    s = new_store(db)
    add_user(s, SYSTEM, "cfo", "Cee Effo", "cfo", password=DEMO_PASSWORD)
    s.close()
    with serve_app(db, tmp_path) as url:
        yield url


@pytest.mark.parametrize(("path", "heading"), [("/", "Overview"), ("/aging?segment=enterprise", "Aging")])
def test_the_first_session_signs_in_with_one_click(browser, fresh_server: str, path: str, heading: str) -> None:
    ctx = browser.new_context(base_url=fresh_server, viewport={"width": 1400, "height": 900})
    try:
        page = ctx.new_page()
        page.set_default_timeout(45_000)  # the process's first run imports everything
        page.goto(path)
        expect(page.get_by_role("button", name="Login")).to_be_visible()
        assert submit_sign_in(page, "cfo", DEMO_PASSWORD) == "signed in"
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        if "?" in path:
            assert "segment=enterprise" in page.url, page.url
    finally:
        ctx.close()
