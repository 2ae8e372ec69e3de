"""Aging page (AppTest): the table and drill-down on a hand-built ledger, demo data, an empty store."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import new_store
from tests.dashboard_fixtures import signed_in, small_ledger

PAGE = "pages/aging.py"


def test_aging_table_filters_and_drill_down_to_invoices(app_env, tmp_path: Path) -> None:
    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("analyst", PAGE).run()
    assert not at.exception
    assert at.title[0].value == "Aging"
    # point-in-time tiles against last month (28 Feb: INV1 100 + INV3 200 + INV4 80 + INV5 40 = 420 open,
    # 340 of it past due) and last year (Mar 2025: before the ledger, so none)
    tiles = {m.label: (m.value, m.delta) for m in at.metric}
    assert tiles["Open AR (USD)"] == ("350", "-70") and tiles["Past due (USD)"] == ("300", "-40")
    assert [c.value for c in at.caption].count("n/a on Mar 2025") == 2
    table = at.dataframe[0].value
    assert table[["customer_id", "Current", "31-60", "91-120", "Total", "Unapplied"]].to_dict("records") == [
        {"customer_id": "B", "Current": 0.0, "31-60": 0.0, "91-120": 200.0, "Total": 200.0, "Unapplied": -30.0},
        {"customer_id": "A", "Current": 50.0, "31-60": 100.0, "91-120": 0.0, "Total": 150.0, "Unapplied": 0.0},
        {"customer_id": "", "Current": 50.0, "31-60": 100.0, "91-120": 200.0, "Total": 350.0, "Unapplied": -30.0},
    ]
    # a filter changes the numbers
    at.multiselect(key="f_segment").set_value(["SMB"]).run()
    assert not at.exception
    assert at.dataframe[0].value["Total"].tolist() == [150.0, 150.0]
    # a bucket drills down to its invoices
    at.selectbox(key="aging_bucket").set_value("31-60").run()
    assert not at.exception
    invoices = at.dataframe[1].value
    assert invoices[["document_number", "days_past_due", "open_amount"]].to_dict("records") == [
        {"document_number": "INV1", "days_past_due": 59, "open_amount": 100.0}]


def test_aging_on_an_empty_store_says_so(app_env, tmp_path: Path) -> None:
    new_store(tmp_path / "empty.duckdb").close()
    app_env(tmp_path / "empty.duckdb")
    at = signed_in("cfo", PAGE).run()
    assert not at.exception
    assert "The ledger is empty" in at.info[0].value


def test_selecting_a_row_drills_down_to_that_customers_invoices(app_env, tmp_path: Path) -> None:
    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("collector", PAGE, username="abe").run()
    # a collector opens on their own accounts (B, D: D has nothing open); cleared: everybody's
    assert at.multiselect(key="f_collector").value == ["abe"]
    assert at.dataframe[0].value["customer_id"].tolist() == ["B", ""]
    at.multiselect(key="f_collector").set_value([]).run()
    assert at.dataframe[0].value["customer_id"].tolist() == ["B", "A", ""]
    at.session_state["aging_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.dataframe[1].value[["customer_id", "document_number", "bucket"]].to_dict("records") == [
        {"customer_id": "A", "document_number": "INV1", "bucket": "31-60"},
        {"customer_id": "A", "document_number": "INV2", "bucket": "Current"},
    ]
    assert "2 items** in all buckets for customer Alpha Ltd" in at.markdown[-1].value
    # the total row drills into the whole view, and a bucket narrows it
    at.session_state["aging_table"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.selectbox(key="aging_bucket").set_value("91-120").run()
    assert at.dataframe[1].value["document_number"].tolist() == ["INV3"]
