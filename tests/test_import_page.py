"""The import page: admin only, sample export validated (report by reason) and imported, last runs listed;
one real-browser upload."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.ingest.staging import FIELD_LENGTHS
from analytics.migrations import connect
from tests.conftest import DEMO_PASSWORD, displayed, new_store, screenshot, serve_app, sign_in, signed_in_app
from tests.export_files import write_fake_xlsx, write_truncated_xlsx, write_xlsx_bomb

ROOT = Path(__file__).resolve().parent.parent


def _app(role: str) -> AppTest:
    return signed_in_app(role)


def _imports_page_on_a_fresh_store(app_env, tmp_path: Path) -> tuple[AppTest, Path]:
    """The Imports page as an admin, on an empty store of its own: (the page, the store's file)."""
    path = tmp_path / "ardesk.duckdb"
    new_store(path).close()
    app_env(path)
    at = _app("admin")
    at.run()
    at.switch_page("pages/imports.py").run()
    return at, path


def test_admin_validates_and_imports_a_sample_export(app_env, tmp_path: Path) -> None:
    at, path = _imports_page_on_a_fresh_store(app_env, tmp_path)
    assert at.title[0].value == "Imports"
    assert "No imports or syncs yet." in [c.value for c in at.caption]
    at.selectbox(key="imports_sample").select("invoices_sample.csv").run()
    assert at.selectbox(key="imports_col_invoices_amount").value == "amount"  # same-name columns map themselves
    at.button(key="imports_validate").click().run()
    assert displayed(at.warning[0].value) == "6 rows read, 3 accepted, 3 rejected."
    by_reason = at.dataframe[2].value
    assert sorted(by_reason["reason"]) == ["due date before the invoice date", "invoice amount is zero or negative",
                                          "unparseable date (expected %Y-%m-%d)"]
    at.button(key="imports_go").click().run()
    assert displayed(at.success[0].value).startswith("Run #1 (invoices): ok. 6 rows read; 3 inserted, 0 updated")
    runs = at.dataframe[-2].value  # last runs, then the chosen run's quarantine
    assert runs[["status", "rows_read", "rows_inserted", "rows_rejected"]].to_dict("records") == [
        {"status": "ok", "rows_read": 6, "rows_inserted": 3, "rows_rejected": 3}]
    assert sorted(at.dataframe[-1].value["row_number"]) == [4, 5, 6]
    store = connect(str(path))
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries") == 3
    store.close()


def test_the_page_refuses_bad_files_and_rows_with_the_reason(app_env, tmp_path: Path) -> None:
    at, path = _imports_page_on_a_fresh_store(app_env, tmp_path)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    for name, write, reason in [
        ("fake.xlsx", write_fake_xlsx, "fake.xlsx is not an Excel workbook: an .xlsx file is a zip archive"),
        ("cut.xlsx", write_truncated_xlsx, "cut.xlsx is not an Excel workbook"),
        ("bomb.xlsx", lambda p: write_xlsx_bomb(p, unpacked_mb=300),
         "bomb.xlsx would unpack to 300 MB, over the 256 MB limit for Excel files"),
    ]:
        at.file_uploader(key="imports_upload").set_value((name, write(tmp_path / name).read_bytes(), xlsx)).run()
        shown = [displayed(e.value) for e in at.error]
        assert [text for text in shown if reason in text], shown
        assert not at.exception
    latest = date.today() + timedelta(days=31)
    rows = ("customer_id,document_number,posting_date,due_date,amount\n"
            "C1,INV-1,2024-01-02,2024-02-01,10.00\n"
            "C1,INV-2099,2099-01-15,2099-02-14,10.00\n"
            f"C1,{'9' * 2 * 2**20},2024-01-02,2024-02-01,10.00\n")
    at.file_uploader(key="imports_upload").set_value(("inv.csv", rows.encode(), "text/csv")).run()
    at.button(key="imports_validate").click().run()
    assert displayed(at.warning[0].value) == "3 rows read, 1 accepted, 2 rejected."
    reasons = {r for frame in at.dataframe if "reason" in frame.value.columns for r in frame.value["reason"]}
    assert reasons == {f"date more than 31 days in the future (after {latest.isoformat()})",
                       f"longer than {FIELD_LENGTHS['document_number']} characters"}


def test_only_admins_see_the_import_page(app_env, tmp_path: Path) -> None:
    path = tmp_path / "ardesk.duckdb"
    new_store(path).close()
    app_env(path)
    at = _app("cfo")
    at.run()
    at.switch_page("pages/imports.py").run()  # its URL exists for every role: it says why, shows nothing
    assert not at.exception
    assert at.warning[0].value.startswith("Your role (CFO / controller) may not open the Imports page.")
    assert not at.get("file_uploader")


@pytest.mark.browser
@pytest.mark.slow
def test_browser_upload_of_a_small_csv(browser, tmp_path: Path) -> None:
    """On its own app and a new team's empty store: the shared demo server's numbers stay the demo's
    for the dashboard tests (on another worker the order of the files differs)."""

    from analytics.access.users import ensure_sign_ins

    csv = tmp_path / "browser_invoices.csv"
    csv.write_text("customer_id,document_number,posting_date,due_date,amount,currency\n"
                   "BROWSER-1,BR-1,2026-10-01,2026-10-31,99.00,USD\n"
                   "BROWSER-1,BR-2,2026-10-02,2026-11-01,0,USD\n")
    db = tmp_path / "ardesk.duckdb"
    store = new_store(db)
    ensure_sign_ins(store, DEMO_PASSWORD)
    store.close()
    with serve_app(db, tmp_path) as url:
        context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
        try:
            _upload_in_the_browser(context.new_page(), csv)
        finally:
            context.close()


def _upload_in_the_browser(page, csv: Path) -> None:
    from playwright.sync_api import expect

    sign_in(page, "admin")
    page.goto("/imports")
    expect(page.get_by_role("heading", name="Imports")).to_be_visible()
    page.locator("input[type=file]").set_input_files(str(csv))
    expect(page.get_by_text("2 rows, first 10 shown.")).to_be_visible()
    page.get_by_role("button", name="Validate", exact=True).click()
    expect(page.get_by_text("1 of 2 rows will be rejected")).to_be_visible()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("1 inserted, 0 updated, 0 unchanged, 1 rejected")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("invoice amount is zero or negative").first).to_be_visible()
    screenshot(page, "imports_admin_upload")


REAL_EXPORT = ROOT.parent / "shared" / "data" / "real" / "WA_Fn-UseC_-Accounts-Receivable.csv"
needs_real_export = pytest.mark.skipif(not REAL_EXPORT.exists(),
                                       reason=f"the real export is not at {REAL_EXPORT} (shared/ beside the clone)")
IBM_COLUMNS = {"customer_id": "customerID", "document_number": "invoiceNumber", "posting_date": "InvoiceDate",
               "due_date": "DueDate", "amount": "InvoiceAmount", "settled_date": "SettledDate",
               "disputed": "Disputed"}


def _upload_ibm_export(at: AppTest) -> None:
    at.file_uploader(key="imports_upload").set_value(
        (REAL_EXPORT.name, REAL_EXPORT.read_bytes(), "text/csv")).run()


def _assert_the_ibm_mapping_is_applied(at: AppTest) -> None:
    """Its columns and its formats, as the mapping file writes them."""
    assert {t: at.selectbox(key=f"imports_col_invoices_{t}").value for t in IBM_COLUMNS} == IBM_COLUMNS
    assert at.text_input(key="imports_date_format").value == "%m/%d/%Y"
    assert at.selectbox(key="imports_thousands").value == ","
    assert at.text_input(key="imports_currency").value == "USD"


@needs_real_export
@pytest.mark.parametrize("mapping_first", [False, True], ids=["mapping after upload", "mapping before upload"])
def test_choosing_the_shipped_mapping_applies_its_columns_and_formats(app_env, tmp_path: Path,
                                                                     mapping_first: bool) -> None:
    """The IBM export with `ibm_ar_invoice_register` picked before or after the upload: 2,466 rows, 0
    rejected, imported without typing a format."""
    at, path = _imports_page_on_a_fresh_store(app_env, tmp_path)
    if mapping_first:
        at.selectbox(key="imports_mapping").select("ibm_ar_invoice_register").run()
        _upload_ibm_export(at)
    else:
        _upload_ibm_export(at)
        at.selectbox(key="imports_mapping").select("ibm_ar_invoice_register").run()
    _assert_the_ibm_mapping_is_applied(at)
    at.button(key="imports_validate").click().run()
    assert displayed(at.success[0].value) == "2,466 rows read, 2,466 accepted, 0 rejected."
    at.button(key="imports_go").click().run()
    assert not at.exception
    assert displayed(at.success[0].value).startswith(
        "Run #1 (invoices): ok. 2,466 rows read; 2,466 inserted, 0 updated, 0 unchanged, 0 rejected.")
    store = connect(str(path))
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries WHERE entry_type = 'invoice'") == 2466
    assert store.scalar("SELECT COUNT(*) FROM quarantine") == 0
    store.close()


def test_import_stays_disabled_until_the_current_mapping_and_file_are_validated(app_env, tmp_path: Path) -> None:
    at, path = _imports_page_on_a_fresh_store(app_env, tmp_path)
    at.selectbox(key="imports_sample").select("invoices_sample.csv").run()
    assert at.button(key="imports_go").disabled  # not validated yet
    at.button(key="imports_validate").click().run()
    assert not at.button(key="imports_go").disabled
    # the sample has 6 rows of which 3 are rejected: said before anything is committed
    assert "3 of 6 rows will be rejected" in displayed(at.warning[-1].value)
    at.text_input(key="imports_date_format").input("%d/%m/%Y").run()  # the mapping changed: validate again
    assert at.button(key="imports_go").disabled
    at.button(key="imports_validate").click().run()
    assert not at.button(key="imports_go").disabled
    rows = "customer_id,document_number,posting_date,due_date,amount\nC1,INV-1,2024-01-02,2024-02-01,10.00\n"
    at.file_uploader(key="imports_upload").set_value(("one.csv", rows.encode(), "text/csv")).run()
    assert at.button(key="imports_go").disabled  # another file: validate again
    store = connect(str(path))
    assert store.scalar("SELECT COUNT(*) FROM import_runs") == 0
    store.close()


def test_a_failed_validation_keeps_import_disabled_and_says_why(app_env, tmp_path: Path) -> None:
    """Every row rejected (here: the IBM layout read by hand, so no column is found): Import stays off."""
    at, path = _imports_page_on_a_fresh_store(app_env, tmp_path)
    rows = "cust,doc,date,amount,Disputed\nC1,INV-1,1/2/2013,10.00,No\n"
    at.file_uploader(key="imports_upload").set_value(("ibm.csv", rows.encode(), "text/csv")).run()
    at.button(key="imports_validate").click().run()
    shown = displayed(at.error[0].value)
    assert shown.startswith("Nothing can be imported: the file lacks column 'customer_id' (field customer_id, "
                            "required)"), shown
    assert "cust, doc, date, amount, Disputed" in shown  # the file's own columns, to map from
    assert at.button(key="imports_go").disabled
    at.selectbox(key="imports_col_invoices_customer_id").select("cust").run()
    at.selectbox(key="imports_col_invoices_document_number").select("doc").run()
    at.selectbox(key="imports_col_invoices_posting_date").select("date").run()
    at.button(key="imports_validate").click().run()  # US dates under the ISO format: every row rejected
    assert displayed(at.error[0].value) == "1 rows read, 0 accepted, 1 rejected: nothing can be imported."
    reasons = at.dataframe[1].value.to_dict("records")
    assert reasons == [{"reason": "unparseable date (expected %Y-%m-%d)", "column": "date", "field": "posting_date",
                        "rows": 1, "first_rows": "1"}]
    assert at.button(key="imports_go").disabled


def test_a_rejected_run_says_why_in_the_last_runs(app_env, tmp_path: Path) -> None:
    """A run rejected whole (here queued from the command line) lists its reason on the page."""
    from analytics.access.roles import SYSTEM
    from analytics.ingest.imports import run_import
    from analytics.ingest.mapping import Mapping, load_mapping

    path = tmp_path / "ardesk.duckdb"
    store = new_store(path)
    export = tmp_path / "other.csv"
    export.write_text("cust,doc,InvoiceDate,InvoiceAmount\nC1,INV-1,1/2/2013,10\n")
    assert run_import(store, export, load_mapping("ibm_ar_invoice_register"), SYSTEM).status == "rejected"
    zeros = tmp_path / "zeros.csv"  # every row rejected: the run is rejected, its reasons are its error
    zeros.write_text("customer_id,document_number,posting_date,amount\nC1,INV-1,2024-01-02,0\n")
    assert run_import(store, zeros, Mapping(dataset="invoices"), SYSTEM).status == "rejected"
    store.close()
    app_env(path)
    at = _app("admin")
    at.run()
    at.switch_page("pages/imports.py").run()
    latest, error = at.dataframe[0].value["error"].tolist()  # newest first
    assert latest == ("1 rows read, 0 accepted, 1 rejected: nothing can be imported. 1 row(s): invoice amount is "
                      "zero or negative; column 'amount', field amount (rows 1)")
    assert error.startswith("Nothing can be imported: the file lacks column 'customerID' (field customer_id, "
                            "required)"), error


def test_validating_a_customers_file_says_which_extra_columns_become_attributes(app_env, tmp_path: Path) -> None:
    at, _ = _imports_page_on_a_fresh_store(app_env, tmp_path)
    rows = "customer_id,name,Vehicle Class,???\nC1,Acme,truck,x\nC2,Beta,van,y\n"
    at.file_uploader(key="imports_upload").set_value(("customers.csv", rows.encode(), "text/csv")).run()
    at.selectbox(key="imports_dataset").select("customers").run()
    at.button(key="imports_validate").click().run()
    captions = [displayed(c.value) for c in at.caption]
    assert "Extra column(s) kept as customer attributes: 'Vehicle Class' as vehicle_class." in captions
    assert [c for c in captions if c.startswith("Not kept: ") and "???" in c], captions
    assert not at.exception
