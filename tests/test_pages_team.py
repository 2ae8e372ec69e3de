"""Team page (AppTest): collector KPIs as a table and headline; filters; empty store."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import new_store
from tests.dashboard_fixtures import metrics, signed_in, small_ledger

PAGE = "pages/team.py"


def test_collector_kpis_and_filters(app_env, tmp_path: Path) -> None:
    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("cfo", PAGE).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table[["collector", "customers", "overdue_ar", "calls", "promises", "promises_kept"]].to_dict("records") == [
        {"collector": "abe", "customers": 2, "overdue_ar": 200.0, "calls": 0, "promises": 0, "promises_kept": 0},
        {"collector": "cara", "customers": 1, "overdue_ar": 100.0, "calls": 1, "promises": 1, "promises_kept": 0},
    ]
    assert metrics(at)["Overdue AR owned (USD)"] == "300"
    assert metrics(at)["Promises kept (%)"] == "0.0"  # 100 promised by 20 Mar, nothing paid
    at.multiselect(key="f_collector").set_value(["abe"]).run()
    assert not at.exception
    assert at.dataframe[0].value["collector"].tolist() == ["abe"]
    assert metrics(at)["Overdue AR owned (USD)"] == "200"
    assert metrics(at)["Promises kept (%)"] == "n/a"


def test_team_on_an_empty_store_says_so(app_env, tmp_path: Path) -> None:
    new_store(tmp_path / "empty.duckdb").close()
    app_env(tmp_path / "empty.duckdb")
    at = signed_in("analyst", PAGE).run()
    assert not at.exception
    assert "The ledger is empty" in at.info[0].value
