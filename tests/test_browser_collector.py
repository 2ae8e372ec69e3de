"""A collector's day in a real browser: worklist, a bulk send to a filtered set, a call and a promise
on the customer 360, and all three on the customer's timeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.collections.bulk_selection import select_customers
from analytics.collections.worklist import default_as_of
from analytics.migrations import connect
from tests.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser
COLLECTOR = "ana.collector"  # the first demo collector alphabetically: the one with a sign-in


def _filtered_set(demo_store_file: Path) -> tuple[int, list[str]]:
    """A days-past-due value that selects a few of the collector's active customers with an email contact."""
    store = connect(str(demo_store_file))
    try:
        as_of = default_as_of(store)
        for days in range(2, 60):
            found = select_customers(store, as_of, days_past_due=(days, days), statuses=["active"], collector=COLLECTOR)
            if 1 <= len(found) <= 5:
                reachable = store.read(
                    "SELECT DISTINCT customer_id FROM contacts WHERE active AND email LIKE '%_@_%'")
                if set(found.customer_id) <= set(reachable.customer_id):
                    return days, found["customer_id"].tolist()
    finally:
        store.close()
    raise AssertionError("the demo has no small filtered set for the collector")


def test_collector_sends_logs_a_call_and_a_promise_and_sees_them_on_the_timeline(page, demo_store_file: Path) -> None:
    days, customers = _filtered_set(demo_store_file)
    sign_in(page, COLLECTOR)
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()  # a collector lands on it
    collector_day(page, days, customers)


def collector_day(page, days: int, customers: list[str]) -> None:
    """The signed-in collector's steps, from the sidebar to the timeline, with a screenshot per page."""
    from playwright.sync_api import expect

    # -- worklist
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Worklist").click()
    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
    expect(page.get_by_text("Priority = amount at risk")).to_be_visible()
    screenshot(page, "collector_worklist")

    # -- bulk send to a filtered set
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Bulk outreach").click()
    expect(page.get_by_role("heading", name="Bulk outreach")).to_be_visible()
    for label in ("Days past due from", "to (same number: exactly)"):
        box = page.get_by_label(label)
        box.fill(str(days))
        box.press("Enter")
    expect(page.get_by_text(f"{len(customers)} customers match.")).to_be_visible()
    page.get_by_text("Select all").click()
    send = page.get_by_role("button", name=f"Send to {len(customers)} customers")
    expect(send).to_be_visible()
    # each customer's dunning stage chooses the template (a friendly or a firm reminder at these days)
    expect(page.get_by_text(re.compile(r"(Friendly reminder:|Overdue invoices for)")).first).to_be_visible()
    send.click()
    expect(page.get_by_text(f"Bulk send finished: {len(customers)} sent.")).to_be_visible()
    screenshot(page, "collector_bulk_sent")

    # -- the first customer's 360: a call and a promise
    page.get_by_role("link", name=re.compile(rf"\({customers[0]}\)$")).first.click()
    expect(page.get_by_role("heading", name=re.compile(rf"\({customers[0]}\)$"))).to_be_visible()
    page.get_by_role("tab", name="Follow-up").click()
    page.get_by_label("What was said").fill("Spoke to AP; payment run on Friday")
    page.get_by_role("button", name="Log call").click()
    expect(page.get_by_text("Call logged (reached).")).to_be_visible()
    page.get_by_role("tab", name="Follow-up").click()
    page.get_by_role("button", name="Record promise").click()
    expect(page.get_by_text("Promise recorded:")).to_be_visible()

    # -- all three on the timeline, newest first
    page.get_by_role("tab", name="Timeline").click()
    panel = page.get_by_role("tabpanel", name="Timeline")
    expect(panel.get_by_text(re.compile(r"promise by ana\.collector .*Promise to pay"))).to_be_visible()
    expect(panel.get_by_text(re.compile(r"call by ana\.collector .*Call: reached"))).to_be_visible()
    expect(panel.get_by_text(re.compile(r"email by ana\.collector .*(Friendly reminder:|Overdue invoices for)"))
           ).to_be_visible()
    screenshot(page, "collector_customer_timeline")
