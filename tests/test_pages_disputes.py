"""Page tests (AppTest): the dispute and promise forms, the Outreach tab's balance line, the bulk
page's day filters and columns, on a hand-built store."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from analytics.migrations import connect
from tests.collector_data import add_customer, add_dunning_config, add_invoice, add_payment, setup_people
from tests.conftest import button, displayed, new_store, signed_in_app

T = date.today()


@pytest.fixture
def books_file(tmp_path: Path, app_env, monkeypatch: pytest.MonkeyPatch) -> Path:
    """C1: INV-4 four days past due (300), INV-90 ninety days (5,000), INV-NEW not due (50, posted
    today), a 120 payment on account. C2: INV-2 ninety days past due (700)."""
    path = tmp_path / "pages.duckdb"
    store = new_store(path)
    setup_people(store)
    add_dunning_config(store)
    add_customer(store, "C1", name="Acme 1")
    add_customer(store, "C2", name="Acme 2")
    add_invoice(store, "C1", "INV-4", T - timedelta(days=34), T - timedelta(days=4), 300)
    add_invoice(store, "C1", "INV-90", T - timedelta(days=120), T - timedelta(days=90), 5000)
    add_invoice(store, "C1", "INV-NEW", T, T + timedelta(days=30), 50)
    add_payment(store, "C1", "PAY-1", T, 120)
    add_invoice(store, "C2", "INV-2", T - timedelta(days=120), T - timedelta(days=90), 700)
    store.close()
    monkeypatch.setenv("ARDESK_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("ARDESK_OUTREACH_MODE", "outbox")
    app_env(path)
    return path


def _scalar(path: Path, sql: str) -> object:
    store = connect(str(path))
    try:
        return store.scalar(sql)
    finally:
        store.close()



def test_the_dispute_form_asks_for_invoices_and_confirms_a_whole_account(books_file: Path) -> None:
    at = signed_in_app("collector", "ana.collector").run()
    at.query_params["customer"] = "C1"
    at.switch_page("pages/customer.py").run()
    assert not at.exception
    assert at.multiselect(key="dispute_invoices").value == []  # none chosen by default
    at.text_input(key="dispute_reason").input("Wrong price")
    button(at, "Open dispute").click().run()
    assert displayed(at.error[0].value).startswith("invoices: none chosen.")
    at.checkbox(key="dispute_whole").check()
    button(at, "Open dispute").click().run()
    assert at.error[0].value.startswith("A whole-account dispute stops every reminder")
    assert _scalar(books_file, "SELECT COUNT(*) FROM activities WHERE kind = 'dispute'") == 0
    at.checkbox(key="dispute_whole").uncheck()
    assert "INV-4 · 300.00 · 4 days" in at.multiselect(key="dispute_invoices").options
    at.multiselect(key="dispute_invoices").select(1)  # INV-4's entry id
    button(at, "Open dispute").click().run()
    assert not at.exception and at.success[0].value.startswith("Dispute opened: sales to answer by ")
    assert _scalar(books_file, "SELECT COUNT(*) FROM activity_invoices") == 1
    assert float(_scalar(books_file, "SELECT amount FROM activities WHERE kind = 'dispute'")) == 300.0  # its open amount
    assert _scalar(books_file, "SELECT whole_account FROM activities WHERE kind = 'dispute'") is False


def test_the_outreach_tab_explains_the_balance_and_lists_only_past_due_invoices(books_file: Path) -> None:
    at = signed_in_app("collector", "ana.collector").run()
    at.query_params["customer"] = "C1"
    at.switch_page("pages/customer.py").run()
    captions = [displayed(c.value) for c in at.tabs[4].caption]
    assert any(c.startswith("Balance 5,230.00 USD = open invoices 5,350.00 USD − unapplied cash/credits 120.00 USD")
               for c in captions)
    at.selectbox(key="outreach_template").select("reminder_firm").run()
    body = at.code[0].value
    assert "INV-4 " in body and "INV-90 " in body and "INV-NEW" not in body


def test_the_bulk_page_filters_by_an_invoice_exactly_n_days_and_shows_its_columns(books_file: Path) -> None:
    at = signed_in_app("collector", "ana.collector").run()
    at.switch_page("pages/bulk.py").run()
    assert not at.exception
    at.radio(key="bulk_dpd_mode").set_value("exactly")
    at.number_input(key="bulk_dpd_lo").set_value(4).run()
    assert at.markdown[0].value == "**1 customers match.**"
    shown = at.data_editor[0].value
    assert shown["customer_id"].tolist() == ["C1"]
    assert {"matching_invoices", "matching_amount"} <= set(shown.columns) and "overdue_ar" not in shown.columns
    at.checkbox(key="bulk_select_all").check().run()
    expander = next(e for e in at.expander if e.label.startswith("Preview ("))
    assert expander.label == "Preview (1 sendable, 0 not)"
    body = at.code[0].value
    assert body.startswith("Dear Pat C1,") and "INV-4 " in body and "INV-90" not in body  # only the match
    button(at, "Send to 1 customers").click().run()
    assert not at.exception and at.success[0].value == "Bulk send finished: 1 sent."


def test_the_collector_replies_to_the_portal_from_the_timeline(books_file: Path) -> None:
    from analytics.portal.account import portal_message, portal_thread
    from analytics.portal.identity import PortalCustomer

    store = connect(str(books_file))
    try:
        portal_message(store, PortalCustomer("C1"), "Can you resend INV-4?")
    finally:
        store.close()
    at = signed_in_app("collector", "ana.collector").run()
    at.query_params["customer"] = "C1"
    at.switch_page("pages/customer.py").run()
    at.text_area(key="portal_reply_body").input("Sent again today.")
    button(at, "Send reply").click().run()
    assert not at.exception and at.success[0].value == "Reply sent to the portal."
    store = connect(str(books_file))
    try:
        thread = portal_thread(store, PortalCustomer("C1"))
    finally:
        store.close()
    assert thread[["author", "body"]].values.tolist() == [["you", "Can you resend INV-4?"],
                                                          ["Ana Collector", "Sent again today."]]
