"""Bad debt page (AppTest): write-offs, bad debt % and the 90+ balance; filters; empty store."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import new_store
from tests.dashboard_fixtures import metrics, signed_in, small_ledger

PAGE = "pages/bad_debt.py"


def headline(at) -> dict[str, str]:  # noqa: ANN001 - an AppTest
    """The four headline tiles (the provision section's tiles are checked in tests/test_pages_risk.py)."""
    return {k: v for k, v in metrics(at).items() if not k.startswith(("Provision", "Movement"))}


def test_bad_debt_headline_and_filters(app_env, tmp_path: Path) -> None:
    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("cfo", PAGE).run()
    assert not at.exception
    # WO1 40 written off in March; 12-month credit sales 200 + 40 + 100 + 80 + 50 = 470
    assert headline(at) == {"Write-offs, period (USD)": "40", "Bad debt, 12 m (%)": "8.51",
                           "90+ balance (USD)": "200", "90+ share (%)": "57.1"}
    assert len(at.dataframe) == 4  # roll rates, the provision matrix and by month (tests/test_pages_risk.py), monthly
    at.multiselect(key="f_segment").set_value(["SMB"]).run()
    assert not at.exception
    # SMB: no write-off; 12-month sales 100 + 80 + 50; nothing 90+ days past due
    assert headline(at) == {"Write-offs, period (USD)": "0", "Bad debt, 12 m (%)": "0.00",
                           "90+ balance (USD)": "0", "90+ share (%)": "0.0"}


def test_bad_debt_on_an_empty_store_says_so(app_env, tmp_path: Path) -> None:
    new_store(tmp_path / "empty.duckdb").close()
    app_env(tmp_path / "empty.duckdb")
    at = signed_in("analyst", PAGE).run()
    assert not at.exception
    assert "The ledger is empty" in at.info[0].value
