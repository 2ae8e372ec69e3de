"""The analyst's studio in a browser: a segment rule added, previewed and saved; a stage's template
edited with its preview; a policy simulated over last month; the demo experiment's result read and
an experiment started after seeing its detectable effect. On its own app and copy of the demo."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.migrations import connect
from tests.conftest import choose_option, screenshot, serve_app, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 60_000


@pytest.fixture
def studio(demo_store_file: Path, tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "ardesk.duckdb"
    shutil.copy(demo_store_file, db)
    yield db


def _select(page, label: str, option: str) -> None:
    choose_option(page.get_by_test_id("stSelectbox").filter(has_text=label).last, option)


def test_an_analyst_adds_a_rule_edits_a_template_and_simulates_last_month(browser, studio) -> None:

    db = studio
    with serve_app(db, db.parent, ARDESK_OUTBOX=str(db.parent / "outbox")) as url:
        _work_the_studio(browser, url)

    store = connect(str(db))  # the app stopped: the store is free to read
    try:
        saved = store.read("SELECT r.name, r.conditions FROM segment_rules r JOIN segment_rule_sets s "
                           "USING (version) WHERE s.active ORDER BY r.position")
        assert saved["name"].tolist() == ["New rule", "Everyone else"]
        assert "enterprise" in saved["conditions"].iloc[0]
        assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'analyst' AND action LIKE 'segment%'") >= 1
        assert store.scalar("SELECT COUNT(*) FROM message_templates") == 0  # previewed, never saved
        started = store.read("SELECT segment, status, started_by FROM experiments WHERE name = 'Gentler mid-market'")
        assert started.to_dict("records") == [{"segment": "mid-market", "status": "running", "started_by": "analyst"}]
        assert store.scalar("SELECT COUNT(*) FROM experiment_assignments a JOIN experiments e USING (experiment_id) "
                            "WHERE e.name = 'Gentler mid-market'") == store.scalar(
            "SELECT COUNT(*) FROM customers WHERE segment = 'mid-market'")
    finally:
        store.close()


def _work_the_studio(browser, url: str) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        sign_in(page, "analyst")

        # -- a segment rule: enterprise customers to their own policy, previewed, then saved --
        page.goto("/segmentation")
        expect(page.get_by_role("heading", name="Segmentation")).to_be_visible()
        wait_idle(page)
        page.get_by_role("button", name="Add rule").click()
        wait_idle(page)
        value = page.get_by_role("textbox", name="Value").last
        value.fill("enterprise")
        value.press("Enter")
        wait_idle(page)
        expect(page.get_by_text("Customers changing policy")).to_be_visible()
        page.get_by_role("textbox", name="Why (kept with the version)").fill("enterprise accounts apart")
        page.get_by_role("button", name="Save rules").click()
        expect(page.get_by_text(re.compile(r"Saved as version \d+: [\d,]+ customer\(s\) changed policy"))
               ).to_be_visible()
        screenshot(page, "studio_segmentation_saved")

        # -- the friendly reminder's template, edited with its live preview (not saved) --
        page.goto("/templates")
        expect(page.get_by_role("heading", name="Templates")).to_be_visible()
        wait_idle(page)
        _select(page, "Template", "reminder_friendly")
        subject = page.get_by_role("textbox", name="Subject")
        expect(subject).to_have_value(re.compile(r"^Friendly reminder: "))  # the chosen template is drawn
        subject.fill("A friendly word from AR Desk for {{ customer_name }}")
        subject.press("Enter")
        wait_idle(page)
        expect(subject).to_have_value("A friendly word from AR Desk for {{ customer_name }}")
        expect(page.get_by_text("No problems found")).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Subject: A friendly word from AR Desk for "))).to_be_visible()
        screenshot(page, "studio_template_preview")

        # -- a policy over last month, simulated --
        page.goto("/dunning_policies")
        expect(page.get_by_role("heading", name="Dunning policies")).to_be_visible()
        wait_idle(page)
        page.get_by_role("button", name="Simulate", exact=True).click()
        expect(page.get_by_text(re.compile(r"\d+ message\(s\) from \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d"))
               ).to_be_visible()
        screenshot(page, "studio_simulation")

        # -- the demo experiment's result, then a new experiment planned and started --
        page.goto("/experiments")
        expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
        expect(page.get_by_text(re.compile(r"Verdict: The challenger collects more"))).to_be_visible()
        expect(page.get_by_text(re.compile(r"Sequential method: O'Brien-Fleming"))).to_be_visible()
        page.get_by_text("Start an experiment").click()
        _select(page, "Segment", "mid-market")
        detectable = page.get_by_test_id("stMetric").filter(has_text="Detectable effect at this split")
        expect(detectable).to_contain_text(re.compile(r"\d+\.\d points"))
        page.get_by_role("textbox", name="Name").fill("Gentler mid-market")
        wait_idle(page)
        page.get_by_role("button", name="Start experiment").click()
        expect(page.get_by_text(re.compile(r"Started “Gentler mid-market”: [\d,]+ customers assigned"))).to_be_visible()
        screenshot(page, "studio_experiment")
    finally:
        context.close()
