"""The shared sidebar's URL round trip, the downloads, and the filter choices (no app run needed)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from analytics.ledger.filters import Filters, filter_choices
from analytics.ledger.months import add_months, months_between
from analytics.store.connection import Store
from pages.filters import View, default_view, params_from_view, view_from_params
from pages.tables import csv_bytes, excel_bytes
from tests.conftest import new_store

FIRST, LAST = date(2024, 11, 3), date(2026, 10, 31)


def test_default_view_is_the_last_posting_date_and_its_twelve_months() -> None:
    assert default_view(FIRST, LAST) == View(as_of=LAST, start=date(2025, 11, 1), end=date(2026, 10, 31))
    # a ledger shorter than a year starts at its first month
    assert default_view(date(2026, 6, 15), date(2026, 8, 2)) == View(
        as_of=date(2026, 8, 2), start=date(2026, 6, 1), end=date(2026, 8, 31))


def test_url_round_trip_reproduces_the_view() -> None:
    view = View(as_of=date(2026, 3, 31), start=date(2025, 4, 1), end=date(2026, 2, 28),
                segment=("SMB", "Mid-Market"), collector=("cara",), country=(), currency=("EUR",),
                period_set=True)
    params = params_from_view(view)
    assert params == {"as_of": "2026-03-31", "from": "2025-04", "to": "2026-02",
                      "segment": ["SMB", "Mid-Market"], "collector": ["cara"], "currency": ["EUR"]}
    as_lists = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    assert view_from_params(as_lists, FIRST, LAST) == view
    assert view.filters == Filters(segment=("SMB", "Mid-Market"), collector=("cara",), currency=("EUR",))


def test_unreadable_or_out_of_range_params_fall_back_to_the_ledger() -> None:
    view = view_from_params({"as_of": ["2031-01-01"], "from": ["garbage"], "to": ["2019-01"], "segment": [""]},
                            FIRST, LAST)
    # as_of is clamped to the last posting date, `to` to the first month; start never after end
    assert view == View(as_of=LAST, start=date(2024, 11, 1), end=date(2024, 11, 30), period_set=True)
    assert view_from_params({}, FIRST, LAST) == default_view(FIRST, LAST)
    assert View(as_of=LAST, start=LAST, end=LAST).filters.is_empty


def test_a_typed_as_of_date_is_read_or_refused_with_the_reason() -> None:
    from pages.filters import typed_as_of

    assert typed_as_of(" 2026-05-31 ", FIRST, LAST) == (date(2026, 5, 31), None)
    assert typed_as_of(LAST.isoformat(), FIRST, LAST) == (LAST, None)
    for bad in ("31/05/2026", "20260531", "2026-5-31", "2026-02-29", ""):
        typed, reason = typed_as_of(bad, FIRST, LAST)
        assert typed is None and "YYYY-MM-DD" in reason, bad
    assert typed_as_of("2024-11-02", FIRST, LAST) == (
        None, "02 Nov 2024 is outside the ledger: type a date from 03 Nov 2024 to 31 Oct 2026 (first to last posting).")


def test_months() -> None:
    assert add_months(date(2026, 1, 31), -2) == date(2025, 11, 1)
    assert add_months(date(2025, 12, 5), 1) == date(2026, 1, 1)
    assert months_between(date(2025, 11, 20), date(2026, 2, 1)) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


def test_downloads_round_trip_as_csv_and_excel() -> None:
    frame = pd.DataFrame([{"customer": "Zoë AG", "Total": 1234.5, "due": date(2026, 1, 31)},
                          {"customer": "Acme", "Total": -10.0, "due": date(2026, 2, 28)}])
    back = pd.read_csv(io.BytesIO(csv_bytes(frame)), encoding="utf-8-sig")
    assert back.to_dict("records") == [{"customer": "Zoë AG", "Total": 1234.5, "due": "2026-01-31"},
                                       {"customer": "Acme", "Total": -10.0, "due": "2026-02-28"}]
    sheet = pd.read_excel(io.BytesIO(excel_bytes(frame, "aging")), sheet_name="aging")
    assert sheet["customer"].tolist() == ["Zoë AG", "Acme"]
    assert sheet["Total"].tolist() == [1234.5, -10.0]


def test_every_table_download_carries_the_human_headers(monkeypatch) -> None:
    """The CSV and Excel files of a table (show_table / downloads) have the headers of the one
    column-label dictionary, money headers with the currency; headers already in words are kept."""
    import pages.tables as tables

    clicked: dict[str, bytes] = {}

    class Column:
        def download_button(self, label, data, **kwargs):
            clicked[label] = data()  # what a click builds

    monkeypatch.setattr(tables.st, "columns", lambda spec: [Column() for _ in spec])
    frame = pd.DataFrame({"customer_name": ["Zoë AG"], "open_ar": [1234.5], "paid_7d_pct": [12.5],
                          "promise_person": ["Ana"], "Days with messages": [3]})
    tables.downloads(frame, "aging", "k", currency="EUR")
    expected = ["Customer", "Open AR (EUR)", "Paid ≤ 7 d (%)", "Promise person", "Days with messages"]
    back = pd.read_csv(io.BytesIO(clicked["Download CSV"]), encoding="utf-8-sig")
    assert list(back.columns) == expected and back.iloc[0].tolist() == ["Zoë AG", 1234.5, 12.5, "Ana", 3]
    sheet = pd.read_excel(io.BytesIO(clicked["Download Excel"]), sheet_name="aging")
    assert list(sheet.columns) == expected
    # already human (a page that renamed first): unchanged, never lower-cased a second time
    assert list(tables.with_headers(back, "EUR").columns) == expected


def test_filter_choices_are_the_distinct_customer_values(store: Store) -> None:
    from tests.ledger_builder import LedgerBuilder

    b = LedgerBuilder(store)
    b.customer("A", segment="SMB", country="DE", currency="EUR", collector="cara")
    b.customer("B", segment="SMB", country=None, currency="USD", collector=None)
    b.customer("C", segment="Enterprise", country="US", currency="USD", collector="abe")
    assert filter_choices(store) == {"segment": ["Enterprise", "SMB"], "collector": ["abe", "cara"], "sales_rep": [],
                                     "country": ["DE", "US"], "currency": ["EUR", "USD"], "attributes": {}}


def test_a_link_sets_the_view_and_the_view_follows_the_user(app_env, tmp_path) -> None:
    from tests.dashboard_fixtures import metrics, signed_in, small_ledger

    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("cfo")
    at.query_params = {"as_of": "2026-02-28", "segment": "Enterprise", "from": "2025-12", "to": "2026-02"}
    at.run()
    assert not at.exception
    assert at.text_input(key="f_as_of").value == "2026-02-28"
    assert at.multiselect(key="f_segment").value == ["Enterprise"]
    # 28 Feb, Enterprise: INV3 200 and INV5 40 (written off only on 1 Mar)
    assert metrics(at)["Open AR (USD)"] == "240"

    at.multiselect(key="f_collector").set_value(["abe"]).run()
    assert at.query_params == {"as_of": "2026-02-28", "from": "2025-12", "to": "2026-02",
                               "segment": "Enterprise", "collector": "abe"}
    at.switch_page("pages/dso.py").run()
    assert not at.exception
    assert at.multiselect(key="f_segment").value == ["Enterprise"]
    assert at.multiselect(key="f_collector").value == ["abe"]
    assert at.select_slider(key="f_period").value == (date(2025, 12, 1), date(2026, 2, 1))
    assert at.query_params["collector"] == "abe"

    at.button(key="f_reset").click().run()
    assert not at.exception
    assert at.multiselect(key="f_segment").value == []
    assert at.text_input(key="f_as_of").value == "2026-03-31"
    # the default: the last posting date, and the months back to the first one (less than 12 here);
    # the period follows the date again, so the URL leaves it out
    assert at.query_params == {"as_of": "2026-03-31"}
    assert at.select_slider(key="f_period").value == (date(2025, 11, 1), date(2026, 3, 1))


def test_the_period_follows_the_as_of_date_until_the_user_sets_it(app_env, tmp_path) -> None:
    from tests.dashboard_fixtures import signed_in, small_ledger

    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("cfo").run()
    assert at.select_slider(key="f_period").value == (date(2025, 11, 1), date(2026, 3, 1))
    at.text_input(key="f_as_of").set_value("2026-01-15").run()
    assert not at.exception
    # a past date: the trends end with its month, never after it
    assert at.select_slider(key="f_period").value == (date(2025, 11, 1), date(2026, 1, 1))
    assert at.query_params == {"as_of": "2026-01-15"}
    assert [e.value for e in at.sidebar.error] == []

    # a bad date: a clear error beside the box, the last good date stays in force (view, URL, period)
    at.text_input(key="f_as_of").set_value("2026-02-30").run()
    assert not at.exception
    assert [e.value for e in at.sidebar.error] == [
        "“2026-02-30” is not a date: type it as YYYY-MM-DD (e.g. 2026-03-31), then press Enter."]
    assert at.query_params == {"as_of": "2026-01-15"}
    assert at.select_slider(key="f_period").value == (date(2025, 11, 1), date(2026, 1, 1))
    at.text_input(key="f_as_of").set_value("2027-01-01").run()
    assert [e.value for e in at.sidebar.error] == [
        "01 Jan 2027 is outside the ledger: type a date from 01 Nov 2025 to 31 Mar 2026 (first to last posting)."]
    assert at.query_params == {"as_of": "2026-01-15"}

    at.select_slider(key="f_period").set_value((date(2025, 12, 1), date(2026, 2, 1))).run()
    at.text_input(key="f_as_of").set_value("2025-12-20").run()
    assert not at.exception
    assert at.select_slider(key="f_period").value == (date(2025, 12, 1), date(2026, 2, 1))  # set: it stays
    assert at.query_params == {"as_of": "2025-12-20", "from": "2025-12", "to": "2026-02"}
    # the slider spans the ledger's months only (first to last posting)
    assert at.select_slider(key="f_period").options[0] == "Nov 2025"
    assert at.select_slider(key="f_period").options[-1] == "Mar 2026"


def test_collectors_and_sales_open_on_their_own_accounts(app_env, tmp_path) -> None:
    from analytics.access.roles import Actor, my_accounts
    from tests.dashboard_fixtures import signed_in, small_ledger

    assert my_accounts(Actor("sam", "sales")) == {"sales_rep": ("sam",)}
    assert my_accounts(Actor("abe", "collector")) == {"collector": ("abe",)}
    assert my_accounts(Actor("cy", "cfo")) == {} == my_accounts(None)
    from analytics.kpis.summary import kpi_summary
    from analytics.migrations import connect
    from tests.dashboard_fixtures import metrics

    path = small_ledger(tmp_path / "small.duckdb")
    store = connect(str(path))
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE customers SET sales_rep = 'sam' WHERE customer_id = 'A'")
    mine, everyone = (kpi_summary(store, date(2026, 3, 31), f).iloc[0].open_ar
                      for f in (Filters(sales_rep="sam"), Filters()))
    store.close()
    app_env(path)
    at = signed_in("sales", username="sam").run()
    assert not at.exception
    assert at.multiselect(key="f_sales_rep").value == ["sam"]
    assert metrics(at)["Open AR (USD)"] == f"{mine:,.0f}" != f"{everyone:,.0f}"
    assert at.query_params["sales_rep"] == "sam"
    at.multiselect(key="f_sales_rep").set_value([]).run()  # widened: everybody's accounts
    assert not at.exception and "sales_rep" not in at.query_params
    assert metrics(at)["Open AR (USD)"] == f"{everyone:,.0f}"


IBM = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real" / "WA_Fn-UseC_-Accounts-Receivable.csv"


@pytest.mark.skipif(not IBM.exists(), reason="the IBM export is not in ../shared/data/real/")
def test_the_period_spans_the_months_of_an_imported_ledger(app_env, tmp_path) -> None:
    """A new team's fresh store with only the IBM export (invoices 2012–2013, the last settlements
    in early January 2014) imported with the shipped mapping: the slider spans the ledger's months
    (first to last posting, from the engine), as of the last posting date, the 12 months ending there."""
    from analytics.access.roles import SYSTEM
    from analytics.ingest.imports import run_import
    from analytics.ingest.mapping import load_mapping
    from analytics.ingest.reading import read_source
    from analytics.ledger.open_items import ledger_bounds
    from tests.dashboard_fixtures import signed_in

    path = tmp_path / "team.duckdb"
    store = new_store(path)
    mapping = load_mapping("ibm_ar_invoice_register")
    assert run_import(store, read_source(str(IBM), mapping), mapping, SYSTEM).rejected == 0
    first, last = ledger_bounds(store)
    store.close()
    source = pd.read_csv(IBM, dtype=str)  # independently: the source's first and last dates
    dates = pd.concat([pd.to_datetime(source[c], format="%m/%d/%Y") for c in ("InvoiceDate", "SettledDate")])
    assert (first, last) == (dates.min().date(), dates.max().date()) == (date(2012, 1, 3), date(2014, 1, 9))

    app_env(path)
    at = signed_in("cfo").run()
    assert not at.exception
    period = at.select_slider(key="f_period")
    assert period.options[0] == "Jan 2012" and period.options[-1] == "Jan 2014" and len(period.options) == 25
    assert at.text_input(key="f_as_of").value == last.isoformat()
    assert period.value == (date(2013, 2, 1), date(2014, 1, 1))  # the 12 months ending with the as-of month
    assert at.query_params == {"as_of": "2014-01-09"}


def test_compact_amounts_for_narrow_tiles() -> None:
    from pages.charts import compact

    assert [compact(x) for x in (950, 14_500, 2_960_000, -1_234_567, 123_456_789, float("nan"))] == [
        "950", "14.5 k", "2.96 M", "-1.23 M", "123.5 M", "n/a"]
