"""A collector's morning in a real browser: sign in, the worklist, open the top item by clicking its row,
log a call and a promise (the Follow-up tab stays open), "Next item" to a second customer, log a call,
and the list is shorter by those two customers.

The server gets its own copy of the demo store in which ana.collector also owns the two highest-ranked
customers of other collectors whose items a call clears (a hand-over in the export, not an action)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.collections.worklist import default_as_of, worklist
from analytics.migrations import connect
from tests.conftest import screenshot, serve_app, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]
COLLECTOR = "ana.collector"
CLEARED_BY_A_CALL = {"dunning_stage", "promise_due_today", "broken_promise", "dispute_waiting", "newly_past_due"}


@pytest.fixture
def morning(demo_store_file: Path, tmp_path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(server URL, ana's customers on the list, top first, after the hand-over; items on the list)."""
    db = tmp_path / "ardesk.duckdb"
    shutil.copy(demo_store_file, db)
    store = connect(str(db))
    try:
        as_of = default_as_of(store)
        team = worklist(store, as_of)
        reasons = team.groupby("customer_id")["reason"].agg(set)
        clearable = set(reasons[reasons.map(lambda r: r <= CLEARED_BY_A_CALL)].index)
        now = team[(team.group == "now") & (team.collector != COLLECTOR) & team.customer_id.isin(clearable)]
        handed = list(dict.fromkeys(now["customer_id"]))[:2]
        assert len(handed) == 2, "the demo has no two customers to hand over"
        with store.write() as conn:
            conn.execute(sa.text("UPDATE customers SET collector = :c WHERE customer_id IN (:a, :b)"),
                         {"c": COLLECTOR, "a": handed[0], "b": handed[1]})
        mine = worklist(store, as_of, COLLECTOR)
        mine = mine[mine.group == "now"]
        order = list(dict.fromkeys(mine["customer_id"]))
        assert set(handed) <= set(order) and set(mine[mine.customer_id.isin(order[:2])]["reason"]) <= CLEARED_BY_A_CALL
    finally:
        store.close()
    with serve_app(db, tmp_path, ARDESK_OUTBOX=str(tmp_path / "outbox")) as url:
        yield url, order, len(mine)


def _counts(page) -> tuple[int, int]:
    """(items, customers) from the worklist's caption."""
    from playwright.sync_api import expect

    caption = page.get_by_text(re.compile(r"^\d+ items? · \d+ customers? · "))
    expect(caption).to_be_visible()
    items, customers = re.match(r"(\d+) items? · (\d+) customers?", caption.inner_text()).groups()
    return int(items), int(customers)


def test_a_collectors_morning_converges(browser, morning: tuple[str, list[str], int]) -> None:
    from playwright.sync_api import expect

    url, order, items = morning
    ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        sign_in(page, COLLECTOR)
        expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
        assert _counts(page) == (items, len(order))
        screenshot(page, "morning_worklist")

        # -- the top item: click its row
        grid = page.get_by_test_id("stDataFrame").first
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)  # the first data row's selection marker
        expect(page.get_by_role("heading", name=re.compile(rf"\({order[0]}\)$"))).to_be_visible()
        page.get_by_role("tab", name="Follow-up").click()
        page.get_by_label("What was said").fill("Spoke to AP; payment run on Friday")
        page.get_by_role("button", name="Log call").click()
        expect(page.get_by_text("Call logged (reached).")).to_be_visible()
        expect(page.get_by_label("What was said")).to_have_value("")  # cleared, and still on Follow-up
        page.get_by_role("button", name="Record promise").click()
        expect(page.get_by_text("Promise recorded:")).to_be_visible()
        screenshot(page, "morning_first_customer")

        # -- "Next item": the second customer, without going back
        page.get_by_role("button", name="Next item").click()
        expect(page.get_by_role("heading", name=re.compile(rf"\({order[1]}\)$"))).to_be_visible()
        page.get_by_label("What was said").fill("Left word with the owner")
        page.get_by_role("button", name="Log call").click()
        expect(page.get_by_text("Call logged (reached).")).to_be_visible()

        # -- the list is shorter by the two customers worked
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Worklist").click()
        expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
        left_items, left_customers = _counts(page)
        assert left_customers == len(order) - 2 and left_items < items
        screenshot(page, "morning_worklist_after")
    finally:
        ctx.close()
