"""Risk page, the Bad debt page's provision section and the Overview's what-if section (AppTest)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from analytics.kpis.provision import provision_at, provision_history
from analytics.kpis.what_if import what_if
from analytics.migrations import connect
from analytics.risk.snapshots import risk_list
from tests.conftest import button
from tests.dashboard_fixtures import metrics, signed_in, small_ledger

AS_OF = date(2026, 3, 31)  # the small ledger's last posting date: the dashboards' default as-of


def test_risk_page_scores_the_month_and_lists_it(app_env, tmp_path: Path) -> None:
    path = small_ledger(tmp_path / "small.duckdb")
    app_env(path)
    at = signed_in("analyst", "pages/risk.py").run()
    assert not at.exception
    assert "No risk scores for March 2026 yet" in at.info[0].value
    button(at, "Score every customer as of 31 Mar 2026").click().run()
    assert not at.exception
    assert "Scored 4 customers for March 2026" in at.success[0].value
    store = connect(str(path))
    engine = risk_list(store, AS_OF)
    assert store.scalar("SELECT COUNT(*) FROM customers WHERE risk_class IS NOT NULL") == 4
    store.close()
    shown = at.dataframe[-1].value
    assert shown["customer_id"].tolist() == engine["customer_id"].tolist()
    assert shown["score"].tolist() == engine["score"].tolist()
    tiles = metrics(at)
    assert sum(int(v) for v in tiles.values()) == 4
    assert {k: int(v) for k, v in tiles.items() if int(v)} == {
        f"{b.capitalize()} (customers)": n for b, n in engine["band"].value_counts().items()}


def test_cfo_reads_the_risk_page_without_scoring(app_env, tmp_path: Path) -> None:
    # (a role that may not open the page is refused by tests/test_auth_app.py's walk over every page)
    app_env(small_ledger(tmp_path / "small.duckdb"))
    cfo = signed_in("cfo", "pages/risk.py").run()
    assert not cfo.exception
    assert not [b for b in cfo.button if b.label.startswith("Score every customer")]
    assert "an analyst scores the month" in cfo.info[0].value


def test_provision_section_and_what_if_follow_the_engine(app_env, tmp_path: Path) -> None:
    path = tmp_path / "small.duckdb"
    app_env(small_ledger(path))
    store = connect(str(path))
    matrix = provision_at(store, AS_OF)
    with_factor = provision_at(store, AS_OF, factors={"Current": 2.0})
    history = provision_history(store, date(2025, 11, 1), AS_OF)
    w = what_if(store, date(2025, 11, 1), AS_OF, 5.0, 8.0, 10.0)
    w10 = what_if(store, date(2025, 11, 1), AS_OF, 10.0, 8.0, 10.0)
    store.close()
    at = signed_in("cfo", "pages/bad_debt.py").run()
    assert not at.exception
    tiles = metrics(at)
    assert tiles["Provision on 31 Mar 2026 (USD)"] == f"{matrix['provision'].iloc[-1]:,.2f}"
    assert tiles["Movement over the last month (USD)"] == f"{history['movement'].iloc[-1]:+,.2f}"
    assert at.number_input(key="provision_factor_Current").value == 1.0  # the factor is always shown
    at.number_input(key="provision_factor_Current").set_value(2.0).run()
    assert metrics(at)["Provision on 31 Mar 2026 (USD)"] == f"{with_factor['provision'].iloc[-1]:,.2f}"

    overview = signed_in("viewer").run()
    assert not overview.exception
    tiles = metrics(overview)
    assert tiles["Cash released (USD)"] == f"{w.cash_released:,.0f}"
    assert tiles["Financing value a year (USD)"] == f"{w.financing_value:,.0f}"
    assert tiles["Bad debt avoided a year (USD)"] == f"{w.bad_debt_avoided:,.0f}"
    overview.number_input(key="what_if_days").set_value(10.0).run()
    assert metrics(overview)["Cash released (USD)"] == f"{w10.cash_released:,.0f}"
