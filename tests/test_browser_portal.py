"""The customer portal in a real browser, end to end on a small hand-made store dated around today:
a reminder in the outbox carries a portal link; chromium opens it from another site (as from an
email), lands on /portal without the token, sees its own invoices only, downloads the statement (a
PDF of that customer), disputes one invoice and promises to pay another; the collector, signed in in
a second browser context, sees both on the Customer 360 timeline and the worklist; after the app
stops, the next reminder leaves the disputed invoice out (always) and the promised one out through
the promised date (it is back on the date + 1 day)."""

from __future__ import annotations

import csv
import email
import io
import re
import zlib
from datetime import date, timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest

from analytics.access.roles import SYSTEM, Actor
from analytics.access.users import set_password
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.delivery import send_now
from analytics.collections.outreach.queue import preview
from analytics.migrations import connect
from analytics.portal.account import DISPUTE_REASONS
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people
from tests.conftest import (
    DEMO_PASSWORD,
    choose_option,
    refuse_csp_violations,
    screenshot,
    serve_app,
    sign_in,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LINK = re.compile(r"https?://[^/\s]+(/portal/t/[A-Za-z0-9_-]{43})")
T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")
OWN = {"INV-1001", "INV-1002", "INV-1003", "INV-1004"}


def _hand_made_store(db: Path) -> None:
    """C1 (Acme One, ana.collector's): INV-1001 300 (10 days late: to dispute), INV-1002 500 (5 days
    late: to promise today), INV-1003 200 (20 days late: stays in the reminders), INV-1004 80 (posted
    today, not due; the ledger, and so the app's as-of date, ends today). C2 (Other Two): INV-2001 700."""
    store = connect(str(db))
    try:
        setup_people(store)
        set_password(store, SYSTEM, "ana.collector", DEMO_PASSWORD)
        add_dunning_config(store)
        add_customer(store, "C1", name="Acme One")
        add_customer(store, "C2", name="Other Two")
        for number, posted, due, amount in (("INV-1001", 40, 10, 300), ("INV-1002", 35, 5, 500),
                                            ("INV-1003", 50, 20, 200), ("INV-1004", 0, -30, 80)):
            add_invoice(store, "C1", number, T - timedelta(days=posted), T - timedelta(days=due), amount)
        add_invoice(store, "C2", "INV-2001", T - timedelta(days=40), T - timedelta(days=10), 700)
    finally:
        store.close()


def _reminder(db: Path, outbox: Path, key: str) -> str:
    """Send C1 a friendly reminder as of today into the outbox; the email's plain text."""
    before = set(outbox.glob("*.eml"))
    store = connect(str(db))
    try:
        sent = send_now(store, ANA, ["C1"], "reminder_friendly", action_key=key, as_of=T,
                        config=OutreachConfig(mode="outbox", outbox_dir=outbox))
        assert sent["status"].tolist() == ["sent"], sent.to_dict("records")
    finally:
        store.close()
    (eml,) = set(outbox.glob("*.eml")) - before
    mail = email.message_from_bytes(eml.read_bytes(), policy=default_policy)
    return mail.get_body(preferencelist=("plain",)).get_content()


def _pdf_text(data: bytes) -> str:
    """The text drawn on a PDF's pages (fpdf2 deflates each page's stream)."""
    parts = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            parts.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            parts.append(stream.decode("latin-1"))
    return "".join(parts)


def _listed(text: str) -> set[str]:
    return set(re.findall(r"INV-\d{4}", text))


def _choose(panel, test_id: str, label: str, option: str) -> None:  # noqa: ANN001 - a playwright locator
    choose_option(panel.get_by_test_id(test_id).filter(has_text=label).first, option)


def test_a_customer_disputes_and_promises_in_the_portal_and_the_collector_and_the_reminders_follow(
        browser, tmp_path: Path, cheap_bcrypt: None) -> None:
    from playwright.sync_api import expect

    db, outbox = tmp_path / "ardesk.duckdb", tmp_path / "outbox"
    _hand_made_store(db)
    text = _reminder(db, outbox, "portal-browser-1")
    assert _listed(text) == {"INV-1001", "INV-1002", "INV-1003"}  # the past-due ones
    (path,) = LINK.findall(text)  # the link is in the email sent, never in the store
    token = path.rsplit("/", 1)[1]
    with serve_app(db, tmp_path, ARDESK_OUTBOX=str(outbox)) as url:
        context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        staff = browser.new_context(base_url=url, viewport={"width": 1400, "height": 1000})
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
            expect(page.get_by_text("4 open invoice(s), 1,080.00 USD open")).to_be_visible()
            with page.expect_download() as download:
                page.get_by_role("button", name="Statement of open items (PDF)").click()
            pdf = Path(download.value.path()).read_bytes()
            drawn = _pdf_text(pdf)
            assert pdf.startswith(b"%PDF") and "Acme One" in drawn and "C1" in drawn, drawn[:500]
            assert _listed(drawn) == OWN and "Other Two" not in drawn  # that customer's statement only

            # -- dispute INV-1001 (0.00: the whole open amount), promise INV-1002 for today
            dispute = page.get_by_role("tabpanel", name="Dispute an invoice")
            _choose(dispute, "stSelectbox", "Invoice", "INV-1001")
            _choose(dispute, "stSelectbox", "Reason", DISPUTE_REASONS[0])
            dispute.get_by_label("Comment").fill("The agreed price was 250")
            dispute.get_by_role("button", name="Send the dispute").click()
            expect(page.get_by_text(re.compile(r"Your dispute was recorded \(reference \d+\)"))).to_be_visible()
            page.get_by_role("tab", name="Promise to pay").click()
            promise = page.get_by_role("tabpanel", name="Promise to pay")
            _choose(promise, "stMultiSelect", "Invoices", "INV-1002")
            promise.get_by_label("Amount you will pay").fill("500")
            promise.get_by_role("spinbutton", name="year, Date you will pay").click()
            page.keyboard.type(T.strftime("%Y%m%d"))  # year, month, day: each segment moves on when full
            page.keyboard.press("Tab")
            promise.get_by_role("button", name="Send the promise").click()
            expect(page.get_by_text(re.compile(r"Your promise to pay was recorded \(reference \d+\)"))).to_be_visible()
            wait_idle(page)
            screenshot(page, "portal_after_dispute_and_promise")
            with page.expect_download() as download:
                page.get_by_role("button", name="Invoice list (CSV)").click()
            rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
            assert {r["Invoice"]: r["Status"] for r in rows} == {
                "INV-1001": "disputed", "INV-1002": "promised", "INV-1003": "open", "INV-1004": "open"}
            assert not any(token in r for r in (page.content(), *(c["value"] for c in context.cookies())))

            # -- the collector, in another browser: the worklist and the Customer 360 timeline
            desk = staff.new_page()
            desk.set_default_timeout(60_000)
            sign_in(desk, "ana.collector")
            expect(desk.get_by_role("heading", name="Worklist")).to_be_visible()
            expect(desk.get_by_text(re.compile(r"Disputed in the portal: 1"))).to_be_visible()
            expect(desk.get_by_text(re.compile(r"Promise due today: 1"))).to_be_visible()
            screenshot(desk, "portal_collector_worklist")
            desk.goto("/customer?customer=C1")
            expect(desk.get_by_role("heading", name=re.compile(r"\(C1\)$"))).to_be_visible()
            timeline = desk.get_by_role("tabpanel", name="Timeline")
            expect(timeline.get_by_text(re.compile(
                rf"dispute by portal:C1 \(sales\): Dispute \(sales\): {re.escape(DISPUTE_REASONS[0])}"))).to_be_visible()
            expect(timeline.get_by_text(re.compile(rf"promise by portal:C1 .*Promise to pay 500\.00 by {T}"))
                   ).to_be_visible()
            screenshot(desk, "portal_collector_timeline")

            # -- a staff URL opened by the portal session; leaving
            page.goto("/worklist")
            expect(page.get_by_text("This page is not available in the portal.")).to_be_visible()
            expect(page.get_by_role("button", name="Login")).to_have_count(0)
            page.goto("/portal")
            page.get_by_role("button", name="Leave the portal").click()
            expect(page.get_by_text("Your portal session has ended.")).to_be_visible()
            expect(page.get_by_role("button", name="Login")).to_have_count(0)
            assert violations == []
        finally:
            staff.close()
            context.close()
    assert token not in (tmp_path / "streamlit.log").read_text()  # the server's log, access lines included
    store = connect(str(db))
    try:
        assert store.read("SELECT actor, action FROM audit_log WHERE action LIKE 'portal.%' "
                          "OR actor LIKE 'portal:%' ORDER BY audit_id").values.tolist() == [
            ["ana.collector", "portal.link_mint"], ["portal:C1", "portal.session_open"],
            ["portal:C1", "activity.dispute"], ["portal:C1", "activity.promise"], ["portal:C1", "portal.session_end"]]
        assert store.scalar("SELECT COUNT(*) FROM messages WHERE POSITION(:t IN body) > 0", {"t": token}) == 0
        # the promise pauses INV-1002 through the promised date (today): back on the date + 1 day
        paused = {day: _listed(preview(store, ["C1"], "reminder_friendly", T + timedelta(days=day))[0].body)
                  for day in (0, 1)}
    finally:
        store.close()
    assert paused == {0: {"INV-1003"}, 1: {"INV-1002", "INV-1003"}}  # the disputed INV-1001 never
    assert _listed(_reminder(db, outbox, "portal-browser-2")) == {"INV-1003"}  # the next reminder, today
