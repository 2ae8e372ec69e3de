"""A newcomer's first import in a real browser: an admin uploads the IBM receivables export, picks the
shipped mapping, validates and imports: 2,466 rows, 0 rejected, without typing a format."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from analytics.access.roles import SYSTEM
from analytics.access.users import add_user
from analytics.migrations import connect
from tests.conftest import (
    DEMO_PASSWORD,
    choose_option,
    refuse_csp_violations,
    screenshot,
    serve_app,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
REAL_EXPORT = ROOT.parent / "shared" / "data" / "real" / "WA_Fn-UseC_-Accounts-Receivable.csv"


@pytest.mark.skipif(not REAL_EXPORT.exists(), reason=f"the real export is not at {REAL_EXPORT}")
def test_an_admin_imports_the_ibm_export_with_the_shipped_mapping(browser, tmp_path: Path) -> None:
    db = tmp_path / "ardesk.duckdb"  # an empty store with one admin
    s = connect(str(db))
    add_user(s, SYSTEM, "admin", "Ad Min", "admin", password=DEMO_PASSWORD)
    s.close()
    with serve_app(db, tmp_path) as url:
        _import_in_the_browser(browser, url)
    store = connect(str(db))  # the server has stopped and left the file
    try:
        assert store.read("SELECT status, rows_read, rows_inserted, rows_rejected FROM import_runs").to_dict(
            "records") == [{"status": "ok", "rows_read": 2466, "rows_inserted": 2466, "rows_rejected": 0}]
        assert store.scalar("SELECT COUNT(*) FROM ledger_entries WHERE entry_type = 'invoice'") == 2466
        assert store.scalar("SELECT COUNT(*) FROM quarantine") == 0
    finally:
        store.close()


def _import_in_the_browser(browser, url: str) -> None:
    ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
    try:
        page = ctx.new_page()
        page.set_default_timeout(45_000)  # the server's first run imports everything
        violations = refuse_csp_violations(page)
        sign_in(page, "admin")
        page.goto("/imports")
        expect(page.get_by_role("heading", name="Imports")).to_be_visible()
        page.locator("input[type=file]").set_input_files(str(REAL_EXPORT))
        expect(page.get_by_text("2,466 rows, first 10 shown.")).to_be_visible()
        import_button = page.get_by_role("button", name="Import", exact=True)
        expect(import_button).to_be_disabled()  # not validated yet
        choose_option(page.get_by_test_id("stSelectbox").filter(has_text="Mapping"), "ibm_ar_invoice_register",
                      exact=False)
        # its columns and its formats are applied, nothing typed
        expect(page.get_by_role("combobox", name="customer_id *")).to_have_value("customerID")
        expect(page.get_by_role("combobox", name="posting_date *")).to_have_value("InvoiceDate")
        page.get_by_text("Formats", exact=True).click()  # the expander, closed for a shipped mapping
        expect(page.get_by_role("textbox", name="Date format")).to_have_value("%m/%d/%Y")
        expect(page.get_by_role("textbox", name="Default currency")).to_have_value("USD")
        page.get_by_role("button", name="Validate", exact=True).click()
        expect(page.get_by_text("2,466 rows read, 2,466 accepted, 0 rejected.")).to_be_visible()
        expect(import_button).to_be_enabled()
        import_button.click()
        expect(page.get_by_text("2,466 rows read; 2,466 inserted, 0 updated, 0 unchanged, 0 rejected.")
               ).to_be_visible(timeout=60_000)
        screenshot(page, "imports_ibm_export_with_the_shipped_mapping")
        assert violations == []
    finally:
        ctx.close()
