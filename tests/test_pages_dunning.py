"""Dunning effectiveness page (AppTest): two configurations side by side; filters; empty store."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import new_store
from tests.dashboard_fixtures import signed_in, small_ledger
from tests.ledger_builder import LedgerBuilder

PAGE = "pages/dunning.py"


def _headline(at) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def _plain(markdown: str) -> str:
    """Text escaped for markdown, read back as the screen shows it."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_like_for_like_compares_the_shared_segment_over_the_shared_period(app_env, tmp_path: Path) -> None:
    store = new_store(tmp_path / "alike.duckdb")
    b = LedgerBuilder(store)
    b.dunning_config(1, name="Standard", stages=[("Reminder", 1, "email")])
    b.dunning_config(2, name="Call first", stages=[("Call", 5, "call")])
    b.customer("A", segment="SMB").customer("B", segment="Enterprise").customer("C", segment="SMB")
    for doc, customer, amount, config, run in (("I1", "A", 100, 1, "2026-02-01"), ("I2", "B", 200, 1, "2026-02-02"),
                                               ("I3", "A", 60, 1, "2026-03-01"), ("I4", "C", 80, 2, "2026-02-10"),
                                               ("I5", "C", 90, 2, "2026-03-10")):
        b.invoice(customer, doc, posted="2026-01-01", due="2026-01-31", amount=amount)
        b.dunning_run(customer, doc, config_id=config, stage_no=1, run_date=run)
    b.payment("A", "P1", posted="2026-03-05", amount=60, applies={"I3": 60})  # after the shared period: counts
    store.close()
    app_env(tmp_path / "alike.duckdb")
    at = signed_in("analyst", PAGE).run()
    assert _headline(at)[0::3] == [("Invoices", "3"), ("Invoices", "2")]
    assert "segment mixes differ by 33 points" in _plain(at.warning[0].value)  # ½(|2/3 - 1| + 1/3)
    at.toggle(key="dunning_like_for_like").set_value(True).run()
    assert not at.exception and not at.warning
    # SMB only (Call first dunned no other), runs from Call first's first to Standard's last
    assert _plain(at.info[0].value).startswith("Like-for-like: both sides restricted to segment SMB and to stage "
                                               "runs from 2026-02-10 to 2026-03-01")
    # I3 paid in full 4 days after its reminder; I4 nothing (the period ends 31 Mar: both 30-day windows closed)
    assert _headline(at) == [("Invoices", "1"), ("Paid ≤ 30 d (%)", "100.0"), ("Recovered", "60"),
                             ("Invoices", "1"), ("Paid ≤ 30 d (%)", "0.0"), ("Recovered", "0")]


def test_two_configurations_side_by_side_and_filters(app_env, tmp_path: Path) -> None:
    app_env(small_ledger(tmp_path / "small.duckdb"))
    at = signed_in("analyst", PAGE).run()
    assert not at.exception
    assert [s.value for s in at.selectbox] == [(1, 1), (2, 1)]
    # Standard: INV1 and INV3 reached the reminder; Call first: INV4, paid 25 days after the call
    assert _headline(at) == [
        ("Invoices", "2"), ("Paid ≤ 30 d (%)", "0.0"), ("Recovered", "0"),
        ("Invoices", "1"), ("Paid ≤ 30 d (%)", "n/a"), ("Recovered", "80"),
    ]
    left = at.dataframe[0].value
    assert left[["Stage", "Invoices", "Open at stage (USD)"]].to_dict("records") == [
        {"Stage": "Reminder", "Invoices": 2, "Open at stage (USD)": 300.0},
        {"Stage": "Final notice", "Invoices": 1, "Open at stage (USD)": 200.0}]
    # every column under its human header, each share's base in its help
    assert "paid_30d_pct" not in left.columns and "Paid ≤ 30 d (%)" in left.columns
    assert "open AT THIS STAGE" in at.dataframe[0].proto.columns and "counted once" in at.dataframe[0].proto.columns
    assert [b.proto.label for b in at.get("download_button")][:2] == [
        "Download stage table (CSV)", "Download stage table (Excel)"]
    # each side says whom it covers, and the mix differs: 50/50 against all SMB
    assert _plain(at.caption[2].value) == ("Standard (v1): 2 invoices of 2 customers · segments Enterprise 1, SMB 1 · "
                                           "stage runs 2025-12-02 to 2026-02-01")
    assert _plain(at.caption[3].value).startswith("Call first (v1): 1 invoice of 1 customer · segments SMB 1")
    assert _plain(at.warning[0].value).startswith(
        "Not a like-for-like comparison: their segment mixes differ by 50 points")
    assert "Experiments page" in _plain(at.warning[0].value)
    at.toggle(key="dunning_like_for_like").set_value(True).run()
    assert _plain(at.warning[0].value) == ("No like-for-like comparison: the two sides never ran in the same "
                                           "period (2025-12-02 to 2026-02-01 against 2026-03-06 to 2026-03-06).")
    at.toggle(key="dunning_like_for_like").set_value(False)
    at.multiselect(key="f_segment").set_value(["SMB"]).run()
    assert not at.exception
    assert at.dataframe[0].value[["Stage", "Invoices", "Open at stage (USD)"]].to_dict("records") == [
        {"Stage": "Reminder", "Invoices": 1, "Open at stage (USD)": 100.0}]
    at.multiselect(key="f_segment").set_value(["Enterprise"]).run()
    at.multiselect(key="f_collector").set_value(["cara"]).run()
    assert "No dunning stages run in the period match segment Enterprise, collector cara" in at.info[0].value


def test_dunning_on_an_empty_store_says_so(app_env, tmp_path: Path) -> None:
    new_store(tmp_path / "empty.duckdb").close()
    app_env(tmp_path / "empty.duckdb")
    at = signed_in("admin", PAGE).run()
    assert not at.exception
    assert "The ledger is empty" in at.info[0].value
