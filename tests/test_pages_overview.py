"""Overview page (AppTest): tiles equal the engine's KPI summary, follow the filters and the as-of date;
the monthly pack is offered to the roles that may have it (the pack itself: test_monthly_pack.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from analytics.kpis.summary import kpi_summary
from analytics.ledger.filters import Filters
from analytics.migrations import connect
from tests.conftest import new_store
from tests.dashboard_fixtures import metrics, signed_in, small_ledger

PAGE = "pages/overview.py"


def test_tiles_match_the_engine_and_follow_filters_and_date(app_env, tmp_path: Path) -> None:
    path = small_ledger(tmp_path / "small.duckdb")
    store = connect(str(path))
    enterprise = kpi_summary(store, date(2026, 3, 31), Filters(segment="Enterprise")).iloc[0]
    february = kpi_summary(store, date(2026, 2, 28)).iloc[0]
    store.close()
    app_env(path)
    at = signed_in("viewer").run()  # the Overview is everyone's first page
    assert not at.exception
    assert at.title[0].value == "Overview"
    tiles = metrics(at)
    # hand-computed on 2026-03-31: open 350, of which 300 overdue and 200 more than 90 days past due
    assert (tiles["Open AR (USD)"], tiles["Overdue AR (USD)"], tiles["90+ share (%)"]) == ("350", "300", "57.1")
    assert tiles["DSO (days)"] == "217.0"
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Open AR (USD)"] == "-70"  # 28 Feb: INV1 100 + INV3 200 + INV4 80 + INV5 40 = 420
    assert [r["customer_id"] for r in at.dataframe[0].value.to_dict("records")] == ["B", "A"]

    at.multiselect(key="f_segment").set_value(["Enterprise"]).run()
    assert not at.exception
    assert metrics(at)["Open AR (USD)"] == f"{enterprise.open_ar:,.0f}" == "200"
    assert at.dataframe[0].value["customer_id"].tolist() == ["B"]

    at.multiselect(key="f_segment").set_value([]).run()
    at.text_input(key="f_as_of").set_value("2026-02-28").run()
    assert not at.exception
    assert metrics(at)["Open AR (USD)"] == f"{february.open_ar:,.0f}"
    assert metrics(at)["Overdue AR (USD)"] == f"{february.overdue_ar:,.0f}"


def test_overview_on_an_empty_store_says_so(app_env, tmp_path: Path) -> None:
    new_store(tmp_path / "empty.duckdb").close()
    app_env(tmp_path / "empty.duckdb")
    at = signed_in("sales").run()
    assert not at.exception
    assert "The ledger is empty" in at.info[0].value


def test_the_overview_offers_the_pack_to_the_roles_that_may_have_it(app_env, tmp_path: Path) -> None:
    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("cfo").run()
    assert not at.exception
    buttons = [b.proto for b in at.get("download_button") if b.proto.label.startswith("Download the monthly pack")]
    assert [b.label for b in buttons] == ["Download the monthly pack (PDF)", "Download the monthly pack (Excel)"]
    assert any(s.value.startswith("Monthly pack, ") for s in at.subheader)
    at = signed_in("collector", page=PAGE, username="cara").run()
    assert not at.exception
    assert not [b for b in at.get("download_button") if b.proto.label.startswith("Download the monthly pack")]
