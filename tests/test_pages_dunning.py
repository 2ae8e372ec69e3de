"""Dunning effectiveness page (AppTest): two configurations side by side; filters; empty store."""

from __future__ import annotations

from pathlib import Path

from analytics.migrations import connect
from tests.dashboard_fixtures import signed_in, small_ledger

PAGE = "pages/dunning.py"


def _headline(at) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def test_two_configurations_side_by_side_and_filters(app_env, tmp_path: Path) -> None:
    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("analyst", PAGE).run()
    assert not at.exception
    assert [s.value for s in at.selectbox] == [(1, 1), (2, 1)]
    # Standard: INV1 and INV3 reached the reminder; Call first: INV4, paid 25 days after the call
    assert _headline(at) == [
        ("Invoices", "2"), ("Paid ≤ 30 d (%)", "0.0"), ("Recovered (USD)", "0"),
        ("Invoices", "1"), ("Paid ≤ 30 d (%)", "n/a"), ("Recovered (USD)", "80"),
    ]
    left = at.dataframe[0].value
    assert left[["stage_name", "invoices", "amount"]].to_dict("records") == [
        {"stage_name": "Reminder", "invoices": 2, "amount": 300.0},
        {"stage_name": "Final notice", "invoices": 1, "amount": 200.0}]
    at.multiselect(key="f_segment").set_value(["SMB"]).run()
    assert not at.exception
    assert at.dataframe[0].value[["stage_name", "invoices", "amount"]].to_dict("records") == [
        {"stage_name": "Reminder", "invoices": 1, "amount": 100.0}]
    at.multiselect(key="f_segment").set_value(["Enterprise"]).run()
    at.multiselect(key="f_collector").set_value(["cara"]).run()
    assert "No dunning stages run in the period match segment Enterprise, collector cara" in at.info[0].value


def test_dunning_on_an_empty_store_says_so(app_env, tmp_path: Path) -> None:
    connect(str(tmp_path / "empty.duckdb")).close()
    app_env(tmp_path / "empty.duckdb")
    at = signed_in("admin", PAGE).run()
    assert not at.exception
    assert "The ledger is empty" in at.info[0].value
