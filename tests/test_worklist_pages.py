"""Page tests (AppTest) for the worklist, customer 360 and bulk outreach pages on a hand-built store."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.migrations import connect
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people
from tests.conftest import button, displayed, new_store, signed_in_app

ROOT = Path(__file__).resolve().parent.parent
T = date.today()


@pytest.fixture
def books_file(tmp_path: Path, app_env, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pages.duckdb"
    store = new_store(path)
    setup_people(store)
    add_dunning_config(store)
    for i in range(1, 6):
        add_customer(store, f"C{i}", name=f"Acme {i}")
        add_invoice(store, f"C{i}", f"INV-{i}", T - timedelta(days=30 + i), T - timedelta(days=i), 100 * i)
    add_invoice(store, "C1", "INV-NEW", T, T + timedelta(days=30), 50)  # the ledger runs to today
    store.close()
    monkeypatch.setenv("ARDESK_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("ARDESK_OUTREACH_MODE", "outbox")
    app_env(path)
    return path


def _app(role: str, username: str) -> AppTest:
    return signed_in_app(role, username).run()



def _count(path: Path, sql: str) -> int:
    store = connect(str(path))
    try:
        return int(store.scalar(sql))
    finally:
        store.close()


def test_worklist_page_lists_items_then_says_when_blank(books_file: Path) -> None:
    at = _app("collector", "ana.collector")
    at.switch_page("pages/worklist.py").run()
    assert not at.exception
    assert at.title[0].value == "Worklist"
    table = at.dataframe[0].value
    assert table["customer_id"].tolist()[:4] == ["C5", "C5", "C4", "C4"]
    assert set(table.columns) >= {"priority", "amount_at_risk", "days_factor", "history_factor"}
    nobody = _app("collector", "ben.collector")
    nobody.switch_page("pages/worklist.py").run()
    assert not nobody.exception
    assert "The list is blank: you have done everything" in nobody.success[0].value


def test_a_collector_is_told_of_past_due_customers_nobody_collects(books_file: Path) -> None:
    store = connect(str(books_file))
    try:
        add_customer(store, "C9", name="Nobody's", collector=None)
        add_invoice(store, "C9", "INV-9", T - timedelta(days=40), T - timedelta(days=10), 900)
    finally:
        store.close()
    at = _app("collector", "ben.collector")
    at.switch_page("pages/worklist.py").run()
    assert not at.exception
    assert "The list is blank: you have done everything" in at.success[0].value
    assert [i.value for i in at.info] == [
        "1 customer(s) with invoices past due (900.00 USD) have no collector, so no collector's list shows them: "
        "an admin assigns them on the Admin page (by segment, country or one by one) or with `ardesk collectors "
        "assign`, or import customers with a collector column."]


def test_worklist_is_not_open_to_sales(books_file: Path) -> None:
    at = _app("sales", "sam.sales")
    at.switch_page("pages/worklist.py").run()  # its URL exists for every role: it says why, shows nothing
    assert [w.value for w in at.warning] == [
        "Your role (Sales) may not open the Worklist page. Your pages: Overview, Customer 360, Requests, My week, "
        "My account."]
    assert not at.title and not at.dataframe


def test_customer_page_shows_the_360_and_logs_a_call_once(books_file: Path) -> None:
    at = _app("collector", "ana.collector")
    at.query_params["customer"] = "C3"
    at.switch_page("pages/customer.py").run()
    assert not at.exception
    assert at.subheader[0].value == "Acme 3 (C3)"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Balance (USD)"] == "300" and metrics["Overdue (USD)"] == "300"
    at.selectbox(key="call_outcome").select("left voicemail")
    at.text_input(key="call_note").input("Asked for a call back")
    button(at, "Log call").click().run()
    assert not at.exception
    assert at.success[0].value == "Call logged (left voicemail)."
    at.run()  # a rerun must not log it again
    at.selectbox(key="call_outcome").select("left voicemail")  # nor the same submit again (a double click)
    at.text_input(key="call_note").input("Asked for a call back")
    button(at, "Log call").click().run()
    assert _count(books_file, "SELECT COUNT(*) FROM activities WHERE kind = 'call' AND customer_id = 'C3'") == 1
    [newest] = [m.value for m in at.tabs[0].markdown]
    assert displayed(newest).endswith("**call** by ana.collector (collections): Call: left voicemail · _left voicemail_")
    assert at.tabs[0].dataframe[0].value[["kind", "outcome"]].to_dict("records") == [
        {"kind": "call", "outcome": "left voicemail"}]


def test_customer_page_sends_the_previewed_template(books_file: Path, tmp_path: Path) -> None:
    at = _app("collector", "ana.collector")
    at.query_params["customer"] = "C2"
    at.switch_page("pages/customer.py").run()
    at.selectbox(key="outreach_template").select("reminder_firm")
    at.text_area(key="outreach_note").input("Please call me.")
    at.run()
    assert "Please call me." in at.code[0].value
    button(at, "Send").click().run()
    assert not at.exception
    assert displayed(at.success[0].value) == "Sent reminder_firm to ap@c2.example."
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_bulk_page_sends_to_every_selected_customer_once(books_file: Path, tmp_path: Path) -> None:
    at = _app("collector", "ana.collector")
    at.switch_page("pages/bulk.py").run()
    assert not at.exception
    at.number_input(key="bulk_dpd_lo").set_value(2)
    at.number_input(key="bulk_dpd_hi").set_value(4).run()
    assert at.markdown[0].value == "**3 customers match.**"
    at.checkbox(key="bulk_select_all").check().run()
    at.selectbox(key="bulk_preview_for").select("C3").run()
    assert at.code[0].value.startswith("Dear Pat C3,")
    assert f"- INV-3 dated {T - timedelta(days=33)}, due {T - timedelta(days=3)}: 300.00 USD (3 days overdue)" in (
        at.code[0].value)
    button(at, "Send to 3 customers").click().run()
    assert not at.exception
    assert at.success[0].value == "Bulk send finished: 3 sent."
    assert sorted(p.name for p in (tmp_path / "outbox").glob("*.eml")) == ["00000001.eml", "00000002.eml",
                                                                         "00000003.eml"]
    assert _count(books_file, "SELECT COUNT(*) FROM messages") == 3
