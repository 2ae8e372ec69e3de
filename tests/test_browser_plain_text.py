"""In chromium: planted markdown, links and HTML read literally on every page that shows them, and no
browser fetches anything they point at (a loopback HTTP server counts the requests)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.conftest import DEMO_PASSWORD, screenshot, serve_app, sign_in, wait_idle
from tests.hostile_text import ADMIN, CFO, COLLECTOR, HOSTILE_CUSTOMER, build_hostile_store, hostile

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class RequestCounter:
    """An HTTP server on a free loopback port that records the path of every request it gets."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Record(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook
                seen.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def counter() -> Iterator[RequestCounter]:
    c = RequestCounter()
    yield c
    c.close()


@pytest.fixture(scope="module")
def hostile_app(counter: RequestCounter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("hostile")
    db = workdir / "ardesk.duckdb"
    build_hostile_store(db, counter.port, DEMO_PASSWORD)
    with serve_app(db, workdir, ARDESK_OUTBOX=str(workdir / "outbox"), ARDESK_OUTREACH_MODE="outbox") as url:
        yield url


def _signed_in(browser, url: str, username: str):
    ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    sign_in(page, username)
    return ctx, page


def _open(page, path: str, heading: str) -> None:
    page.goto(path)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    wait_idle(page)


def test_user_text_reads_literally_and_fetches_nothing(browser, hostile_app: str, counter: RequestCounter) -> None:
    def literal(tag: str, length: int | None = None):
        return page.get_by_text(hostile(tag, counter.port)[:length]).first

    # -- a collector: their worklist, the customer's 360 (every tab), a bulk send, a bad link
    ctx, page = _signed_in(browser, hostile_app, COLLECTOR)
    _open(page, "/worklist", "Worklist")
    expect(literal("EVILname")).to_be_visible()  # its task, upcoming: a line of the Tasks section
    expect(literal("EVILtask")).to_be_visible()
    _open(page, f"/customer?customer={HOSTILE_CUSTOMER}", "Customer 360")
    expect(page.get_by_role("heading", name=f"{hostile('EVILname', counter.port)} ({HOSTILE_CUSTOMER})")).to_be_visible()
    for tag, length in (("EVILnote", 60), ("EVILdispute", None), ("EVILtask", None)):
        expect(literal(tag, length)).to_be_visible()  # the timeline
    page.get_by_role("tab", name="Outreach").click()
    expect(page.get_by_text(re.compile(r"Friendly reminder: \d open invoices? for "
                                       + re.escape(hostile("EVILname", counter.port))))).to_be_visible()
    page.get_by_role("tab", name="Follow-up").click()
    expect(page.get_by_text(re.compile(r"Open task, due \d{4}-\d{2}-\d{2}: "  # in the header, with its Done
                                       + re.escape(hostile("EVILtask", counter.port))))).to_be_visible()
    screenshot(page, "plain_text_customer_follow_up")
    _open(page, "/bulk", "Bulk outreach")
    page.get_by_text("Select all").click()
    page.get_by_test_id("stSelectbox").filter(has_text="Preview the message for").locator("input").click()
    page.keyboard.type(HOSTILE_CUSTOMER)
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"({hostile('EVILname', counter.port)})")).to_be_visible()  # To: ... (name)
    wait_idle(page)
    _open(page, f"/customer?customer={quote(hostile('EVILurl', counter.port))}", "Customer 360")
    expect(literal("EVILurl")).to_be_visible()
    screenshot(page, "plain_text_reflected_link")
    ctx.close()

    # -- the CFO: dashboards with their top lists, a filter link, the team, the audit log
    ctx, page = _signed_in(browser, hostile_app, CFO)
    for path, heading in (("/overview", "Overview"), ("/aging", "Aging"), ("/team", "Team"), ("/audit", "Audit log")):
        _open(page, path, heading)
    _open(page, f"/aging?collector={quote(hostile('EVILfilter', counter.port))}", "Aging")
    expect(literal("EVILfilter")).to_be_visible()
    screenshot(page, "plain_text_filter_link")
    ctx.close()

    # -- an admin: the 360, the team's worklist, users, audit, imports
    ctx, page = _signed_in(browser, hostile_app, ADMIN)
    _open(page, f"/customer?customer={HOSTILE_CUSTOMER}", "Customer 360")
    expect(literal("EVILnote", 60)).to_be_visible()
    _open(page, "/admin", "Users and assignments")
    page.get_by_role("tab", name="Assign customers").click()
    wait_idle(page)
    for path, heading in (("/worklist", "Worklist"), ("/audit", "Audit log"), ("/imports", "Imports")):
        _open(page, path, heading)
    ctx.close()

    assert counter.paths == [], f"the browser fetched what user text pointed at: {sorted(set(counter.paths))}"
