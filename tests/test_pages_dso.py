"""DSO & cash page (AppTest): headline numbers from the engine, filters change them, empty store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from analytics.kpis.dso import dso_monthly
from analytics.ledger.filters import Filters
from analytics.migrations import connect
from tests.conftest import new_store
from tests.dashboard_fixtures import metrics, signed_in, small_ledger

PAGE = "pages/dso.py"


def test_dso_headline_follows_the_engine_and_the_segment_filter(app_env, tmp_path: Path) -> None:
    path = small_ledger(tmp_path / "small.duckdb")
    store = connect(str(path))
    smb = dso_monthly(store, date(2025, 11, 1), date(2026, 3, 31), Filters(segment="SMB")).iloc[-1]
    store.close()
    app_env(path)
    at = signed_in("cfo", PAGE).run()
    assert not at.exception
    # March 2026: AR 350 at the end, credit sales 50 (INV2), 31 days -> 350 / 50 x 31
    assert metrics(at)["DSO, standard (days)"] == "217.0"
    assert metrics(at)["Collections (USD)"] == "110"
    # against February: AR 420 at its end, credit sales 80 (INV4), 28 days -> 147.0; no year before the ledger
    dso_tile = next(m for m in at.metric if m.label == "DSO, standard (days)")
    assert dso_tile.delta == "+70.0 days"
    assert "n/a on Mar 2025" in [c.value for c in at.caption]
    at.multiselect(key="f_segment").set_value(["SMB"]).run()
    assert not at.exception
    assert metrics(at)["DSO, standard (days)"] == f"{smb.dso_standard:.1f}" == "93.0"
    assert metrics(at)["BPDSO (days)"] == f"{smb.bpdso:.1f}"
    # no SMB customer belongs to abe: the page says so in words
    at.multiselect(key="f_collector").set_value(["abe"]).run()
    assert not at.exception
    assert at.info[0].value.startswith("No sales, payments or open invoices match segment SMB, collector abe")


def test_dso_on_an_empty_store_says_so(app_env, tmp_path: Path) -> None:
    new_store(tmp_path / "empty.duckdb").close()
    app_env(tmp_path / "empty.duckdb")
    at = signed_in("viewer", PAGE).run()
    assert not at.exception
    assert "The ledger is empty" in at.info[0].value
