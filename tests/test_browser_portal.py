"""The customer portal in a real browser: a reminder in the outbox carries a portal link; chromium
opens it from another site (as from an email), lands on /portal without the token, and sees its own
invoices only; a staff URL says it is not available in the portal.

Until helper PB's `analytics.portal.account` is merged, the server process gets
`tests.portal_fake_account` in its place (a `sitecustomize` on its PYTHONPATH, test-only)."""

from __future__ import annotations

import csv
import email
import io
import os
import re
import shutil
from email.policy import default as default_policy
from pathlib import Path

import pytest

from analytics.access.roles import Actor
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.delivery import send_now
from analytics.collections.outreach.queue import preview
from analytics.collections.worklist import default_as_of
from analytics.migrations import connect
from tests.conftest import ROOT, refuse_csp_violations, screenshot, serve_app, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LINK = re.compile(r"https?://[^/\s]+(/portal/t/[A-Za-z0-9_-]{43})")


def _reminder_in_the_outbox(db: Path, outbox: Path) -> tuple[str, set[str], str]:
    """Send a friendly reminder to the first demo customer it can go to; (customer, its open
    invoices' numbers, the email's plain text)."""
    store = connect(str(db))
    try:
        as_of = default_as_of(store)
        ids = store.read("SELECT customer_id FROM customers ORDER BY customer_id LIMIT 60")["customer_id"].tolist()
        customer = next(d.customer_id for d in preview(store, ids, "reminder_friendly", as_of) if d.problem is None)
        sent = send_now(store, Actor("ana.collector", "collector", "Ana"), [customer], "reminder_friendly",
                        action_key="portal-browser", as_of=as_of, config=OutreachConfig(mode="outbox", outbox_dir=outbox))
        assert sent["status"].tolist() == ["sent"], sent.to_dict("records")
        invoices = set(store.read("SELECT document_number FROM ledger_entries WHERE customer_id = :c "
                                  "AND entry_type = 'invoice'", {"c": customer})["document_number"])
    finally:
        store.close()
    (eml,) = outbox.glob("*.eml")
    mail = email.message_from_bytes(eml.read_bytes(), policy=default_policy)
    return customer, invoices, mail.get_body(preferencelist=("plain",)).get_content()


def _server_env(tmp_path: Path) -> dict[str, str]:
    """The stand-in account module for the server process while PB's is missing (test-only)."""
    if (ROOT / "analytics" / "portal" / "account.py").exists():  # PB's module, merged
        return {}
    site = tmp_path / "fake_site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from tests import portal_fake_account\nportal_fake_account.install_if_missing()\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), str(ROOT), os.environ.get("PYTHONPATH")]))}


def test_a_reminders_portal_link_opens_the_customers_own_invoices_only(
        browser, demo_store_file: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    db = tmp_path / "ardesk.duckdb"
    shutil.copy(demo_store_file, db)
    customer, invoices, text = _reminder_in_the_outbox(db, tmp_path / "outbox")
    (path,) = LINK.findall(text)  # the link is in the email sent, never in the store
    token = path.rsplit("/", 1)[1]
    with serve_app(db, tmp_path, ARDESK_OUTBOX=str(tmp_path / "outbox"), **_server_env(tmp_path)) as url:
        context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            violations = refuse_csp_violations(page)
            fetch_site: list[str] = []
            page.on("request", lambda r: fetch_site.append(r.all_headers().get("sec-fetch-site", ""))
                    if "/portal/t/" in r.url else None)
            # another site's page (an email client: localhost is another site than 127.0.0.1) links to it
            page.goto(url.replace("127.0.0.1", "localhost") + "/_stcore/health")
            page.set_content(f'<a id="mail-link" href="{url}{path}">Your account</a>')
            page.click("#mail-link")
            expect(page.get_by_role("heading", name="Your account")).to_be_visible()
            assert page.url == f"{url}/portal" and token not in page.url
            assert fetch_site == ["cross-site"]  # the Strict cookie still reached the websocket after it
            wait_idle(page)
            expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)  # no list of the app's pages
            screenshot(page, "portal_invoices")
            with page.expect_download() as download:
                page.get_by_role("button", name="Invoice list (CSV)").click()
            rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
            assert rows and {r["Invoice"] for r in rows} <= invoices  # its own invoices only
            assert not any(token in r for r in (page.content(), *(c["value"] for c in context.cookies())))
            # a staff URL opened by the portal session
            page.goto("/worklist")
            expect(page.get_by_text("This page is not available in the portal.")).to_be_visible()
            expect(page.get_by_role("button", name="Login")).to_have_count(0)
            page.goto("/portal")
            page.get_by_role("button", name="Leave the portal").click()
            expect(page.get_by_text("Your portal session has ended.")).to_be_visible()
            expect(page.get_by_role("button", name="Login")).to_have_count(0)
            assert violations == []
        finally:
            context.close()
    assert token not in (tmp_path / "streamlit.log").read_text()  # the server's log, access lines included
    store = connect(str(db))
    try:
        assert store.read("SELECT actor, action FROM audit_log WHERE action LIKE 'portal.%' ORDER BY audit_id"
                          ).values.tolist() == [["ana.collector", "portal.link_mint"],
                                                [f"portal:{customer}", "portal.session_open"],
                                                [f"portal:{customer}", "portal.session_end"]]
        assert store.scalar("SELECT COUNT(*) FROM messages WHERE POSITION(:t IN body) > 0", {"t": token}) == 0
    finally:
        store.close()
