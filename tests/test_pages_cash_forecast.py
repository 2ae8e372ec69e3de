"""Cash forecast page (AppTest): the forecast at once without a backtest (baseline, no interval),
the button that runs and stores one, the engine's weeks and accuracy on the page, the drill to a
week's invoices, the breakdown, a role that may not see it, one that may not run a backtest, and a
ledger too short to backtest."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from analytics.access.roles import SYSTEM
from analytics.forecasts.cash_forecast import cash_forecast
from analytics.forecasts.stored_backtests import NO_BACKTEST
from analytics.migrations import connect
from tests.conftest import new_store
from tests.dashboard_fixtures import metrics, signed_in
from tests.ledger_builder import LedgerBuilder
from tests.test_forecasts import hand_ledger

PAGE = "pages/cash_forecast.py"
RUN = "cash_forecast_run_backtest"


@pytest.fixture(scope="module")
def hand_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hand_ledger(tmp_path_factory.mktemp("cash_forecast_page") / "hand.duckdb")


def test_cash_forecast_page_shows_the_engine_figures_and_runs_a_backtest(app_env, hand_file: Path,
                                                                         tmp_path: Path) -> None:
    path = shutil.copy(hand_file, tmp_path / "hand.duckdb")
    store = connect(str(path))
    as_of = date(2025, 6, 10)  # the ledger's last posting date: the page's default as-of
    engine = cash_forecast(store, SYSTEM, as_of)
    store.close()
    app_env(path)
    at = signed_in("cfo", PAGE).run()
    assert not at.exception
    assert at.info[0].value == NO_BACKTEST  # shown at once, with the baseline and no interval
    shown = metrics(at)
    assert shown["Expected in 13 weeks (USD)"] == f"{engine['weekly']['expected'].sum():,.0f}" == "430"
    assert shown["Promises kept rate (%)"] == "50"
    assert shown["Not expected within 13 weeks (USD)"] == f"{engine['beyond_horizon']:,.0f}"
    assert at.dataframe[0].value["baseline"].iloc[0] == "n/a"  # no backtested accuracy yet
    weekly = at.dataframe[1].value
    assert weekly["expected"].round(2).tolist() == engine["weekly"]["expected"].round(2).tolist()
    assert weekly["low"].isna().all()

    at.button(key=RUN).click().run()  # run and store a backtest: the page now reads it
    assert not at.exception and not at.info
    assert any("Backtest 1 of" in c.value and "ledger to 2025-06-10" in c.value for c in at.caption)
    store = connect(str(path))
    stored = cash_forecast(store, SYSTEM, as_of)["backtest"]
    store.close()
    accuracy = at.dataframe[0].value  # in page order: accuracy, weeks, breakdown, invoices
    assert accuracy["baseline"].iloc[0] == f"{stored.summary['baseline_mae_days']:.1f}" == "18.2"
    assert any("The baseline is used" in t.value for t in at.text)
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


def test_cash_forecast_page_roles_and_a_short_ledger(app_env, hand_file: Path, tmp_path: Path) -> None:
    app_env(hand_file)
    at = signed_in("collector", PAGE).run()
    assert not at.exception
    assert not at.metric  # refused: nothing drawn
    at = signed_in("viewer", PAGE, username="vera").run()
    assert not at.exception and at.metric
    assert not [b for b in at.button if b.key == RUN]  # a viewer sees the forecast, may not run a backtest
    store = new_store(tmp_path / "short.duckdb")
    LedgerBuilder(store).customer("A").invoice("A", "I1", posted="2025-01-05", due="2025-02-04", amount=10)
    store.close()
    app_env(tmp_path / "short.duckdb")
    at = signed_in("analyst", PAGE).run()
    assert not at.exception and metrics(at)["Expected in 13 weeks (USD)"] == "10"
    at.button(key=RUN).click().run()
    assert "too short to backtest" in at.error[0].value
