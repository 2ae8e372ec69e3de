"""Cash forecast page (AppTest): the engine's weeks and accuracy on the page, the drill to a week's
invoices, the breakdown, a role that may not see it, and a ledger too short to backtest."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from analytics.access.roles import SYSTEM
from analytics.forecasts.cash_forecast import cash_forecast
from analytics.migrations import connect
from tests.dashboard_fixtures import metrics, signed_in
from tests.test_forecasts import hand_ledger

PAGE = "pages/cash_forecast.py"


def test_cash_forecast_page_shows_the_engine_figures(app_env, tmp_path: Path) -> None:
    path = hand_ledger(tmp_path / "hand.duckdb")
    store = connect(str(path))
    as_of = date(2025, 6, 10)  # the ledger's last posting date: the page's default as-of
    engine = cash_forecast(store, SYSTEM, as_of)
    store.close()
    app_env(path)
    at = signed_in("cfo", PAGE).run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Expected in 13 weeks (USD)"] == f"{engine['weekly']['expected'].sum():,.0f}" == "430"
    assert shown["Promises kept rate (%)"] == "50"
    assert shown["Not expected within 13 weeks (USD)"] == f"{engine['beyond_horizon']:,.0f}"
    # the backtested accuracy beside the chart, and why the baseline is used
    accuracy = at.dataframe[0].value  # in page order: accuracy, weeks, breakdown, invoices
    assert accuracy["baseline"].iloc[0] == f"{engine['backtest'].summary['baseline_mae_days']:.1f}"
    assert any("The baseline is used" in t.value for t in at.text)
    weekly = at.dataframe[1].value
    assert weekly["expected"].round(2).tolist() == engine["weekly"]["expected"].round(2).tolist()
    # drill: the week holding B's promise lists B2 as a promise
    week = int(engine["items"].query("source == 'promise'")["week"].iloc[0])
    at.selectbox(key="cash_forecast_week").set_value(week).run()
    rows = at.dataframe[3].value
    assert "B2" in set(rows["document_number"]) and "promise" in set(rows["source"])
    at.selectbox(key="cash_forecast_by").set_value("collector").run()
    assert not at.exception
    by = at.dataframe[2].value
    assert set(by["collector"]) <= {"abe", "cara", "(none)"}
    assert round(by["total"].sum(), 2) == round(engine["weekly"]["expected"].sum(), 2)


def test_cash_forecast_page_refuses_a_collector_and_explains_a_short_ledger(app_env, tmp_path: Path) -> None:
    path = hand_ledger(tmp_path / "hand.duckdb")
    app_env(path)
    at = signed_in("collector", PAGE).run()
    assert not at.exception
    assert not at.metric  # refused: nothing drawn
    store = connect(str(tmp_path / "short.duckdb"))
    from tests.ledger_builder import LedgerBuilder
    LedgerBuilder(store).customer("A").invoice("A", "I1", posted="2025-01-05", due="2025-02-04", amount=10)
    store.close()
    app_env(tmp_path / "short.duckdb")
    at = signed_in("viewer", PAGE).run()
    assert not at.exception
    assert "too short to backtest" in at.info[0].value
