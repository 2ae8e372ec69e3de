"""Honest dunning effectiveness: each payment recovered once (at the last stage before it), the
populations of two compared configurations, the not-like-for-like warning, and the like-for-like ground."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from analytics.cli.main import main
from analytics.kpis.dunning_effectiveness import (
    Population,
    comparison_warning,
    dunning_effectiveness,
    like_for_like,
    populations,
    segment_distance_points,
)
from analytics.ledger.filters import Filters
from analytics.settings import load_settings
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder

START, END = date(2024, 2, 1), date(2024, 3, 31)


def three_stages(store: Store) -> LedgerBuilder:
    """I1 walks through three stages with payments between them; I2 is handed to another configuration."""
    b = LedgerBuilder(store)
    b.dunning_config(1, name="Three steps", stages=[("Reminder", 1, "email"), ("Letter", 15, "letter"),
                                                    ("Call", 30, "call")])
    b.dunning_config(2, name="Other", stages=[("Call", 20, "call")])
    b.customer("X", segment="SMB", dunning_config_id=1).customer("Y", segment="Enterprise", dunning_config_id=1)
    b.invoice("X", "I1", posted="2024-01-01", due="2024-01-31", amount=1000)
    b.invoice("Y", "I2", posted="2024-01-05", due="2024-02-04", amount=500)
    b.dunning_run("X", "I1", config_id=1, stage_no=1, run_date="2024-02-01")
    b.dunning_run("X", "I1", config_id=1, stage_no=2, run_date="2024-02-15")
    b.dunning_run("X", "I1", config_id=1, stage_no=3, run_date="2024-03-01")
    b.dunning_run("Y", "I2", config_id=1, stage_no=1, run_date="2024-02-05")
    b.dunning_run("Y", "I2", config_id=2, stage_no=1, run_date="2024-02-20")  # handed over
    b.payment("X", "P1", posted="2024-02-01", amount=100, applies={"I1": 100})  # on the reminder's date: before it
    b.payment("X", "P2", posted="2024-02-10", amount=200, applies={"I1": 200})  # reminder
    b.payment("X", "P3", posted="2024-02-15", amount=150, applies={"I1": 150})  # on the letter's date: reminder
    b.credit_note("X", "C4", posted="2024-02-20", amount=250, applies={"I1": 250})  # letter
    b.payment("X", "P5", posted="2024-03-05", amount=100, applies={"I1": 100})  # call
    b.payment("X", "P6", posted="2024-04-15", amount=200, applies={"I1": 200})  # after the report's end
    b.payment("Y", "P7", posted="2024-02-12", amount=300, applies={"I2": 300})  # Three steps' reminder
    b.payment("Y", "P8", posted="2024-03-10", amount=100, applies={"I2": 100})  # Other's call
    b.write_off("Y", "W9", posted="2024-03-15", amount=50, applies={"I2": 50})  # not money received
    return b


def test_each_payment_is_recovered_once_at_the_last_stage_before_it(store_on_each_engine: Store) -> None:
    three_stages(store_on_each_engine)
    frame = dunning_effectiveness(store_on_each_engine, START, END)
    got = frame[["config_id", "stage_no", "invoices", "amount", "recovered"]].to_dict("records")
    assert got == [
        # open at the reminder: I1 1000 - 100 (P1, same day) + I2 500; recovered P2 200 + P3 150 + P7 300
        {"config_id": 1, "stage_no": 1, "invoices": 2, "amount": 1400.0, "recovered": 650.0},
        # letter (02-15): I1 1000 - 100 - 200 - 150 = 550 open; C4 250
        {"config_id": 1, "stage_no": 2, "invoices": 1, "amount": 550.0, "recovered": 250.0},
        # call (03-01): 300 open; P5 100 (P6 is after the end)
        {"config_id": 1, "stage_no": 3, "invoices": 1, "amount": 300.0, "recovered": 100.0},
        # Other's call (02-20): I2 500 - 300 = 200 open; P8 100 (the write-off is not recovered)
        {"config_id": 2, "stage_no": 1, "invoices": 1, "amount": 200.0, "recovered": 100.0},
    ]
    # the stages add up: Three steps recovered 700 on I1 after its reminder and 300 on I2 until handed over
    assert frame[frame["config_id"] == 1]["recovered"].sum() == 700.0 + 300.0
    assert frame.loc[0, "paid_14d_pct"] == round((200 + 150 + 300) / 1400 * 100, 2)  # base: open at the stage
    # the same figures from an independent pandas computation over the raw rows
    assert_recovered_matches_pandas(store_on_each_engine, START, END)
    # Σ over a configuration's stages = money after its first stage, but for what came after a hand-over
    plain = first_stage_money(store_on_each_engine, START, END)
    assert plain.to_dict() == {(1, 1): 700.0 + 300.0 + 100.0, (2, 1): 100.0}  # I1 700; I2 300, and 100 after
    assert frame[frame["config_id"] == 1]["recovered"].sum() == plain[(1, 1)] - 100.0  # ... that 100 is Other's
    # who each configuration covered
    sides = populations(store_on_each_engine, START, END)
    assert sides[(1, 1)] == side((1, 1), {"Enterprise": 1, "SMB": 1}, "2024-02-01", "2024-03-01", customers=2)
    assert sides[(2, 1)] == side((2, 1), {"Enterprise": 1}, "2024-02-20", "2024-02-20", customers=1)
    assert sides[(1, 1)].describe() == ("2 invoices of 2 customers · segments Enterprise 1, SMB 1 · "
                                        "stage runs 2024-02-01 to 2024-03-01")


def rates_at(store: Store, end: date) -> dict[str, float]:
    """Each currency's latest rate on or before `end` (the reporting currency at 1)."""
    rates = store.read("SELECT currency, rate_date, rate FROM fx_rates WHERE rate_date <= :end", {"end": end})
    return rates.sort_values("rate_date").groupby("currency")["rate"].last().to_dict() | {
        load_settings().reporting_currency: 1.0}


def payments_to_invoices(store: Store, end: date) -> pd.DataFrame:
    """Allocations from payments and credit notes dated up to `end`: entry_id, allocation_date, amount."""
    paid = store.read("""SELECT a.to_entry_id AS entry_id, a.allocation_date, a.amount FROM allocations a
        JOIN ledger_entries c ON c.entry_id = a.from_entry_id
        WHERE c.entry_type IN ('payment', 'credit_note') AND a.allocation_date <= :end""", {"end": end})
    paid["allocation_date"] = pd.to_datetime(paid["allocation_date"])
    return paid


def independent_recovered(store: Store, start: date, end: date) -> pd.DataFrame:
    """The same attribution computed in pandas from the raw runs and allocations (not from
    `dunning_stage_results`): each payment or credit note to the last stage reached strictly before
    it (pd.merge_asof), kept when that reach counts (run in [start, end], something open then)."""
    runs = store.read("""SELECT r.entry_id, r.config_id, r.config_version, r.stage_no, MIN(r.run_date) AS run_date,
            e.amount AS invoice, e.currency
        FROM dunning_runs r JOIN ledger_entries e ON e.entry_id = r.entry_id WHERE r.outcome IN ('sent', 'done')
        GROUP BY r.entry_id, r.config_id, r.config_version, r.stage_no, e.amount, e.currency""")
    runs["run_date"] = pd.to_datetime(runs["run_date"])
    applied = store.read("SELECT to_entry_id AS entry_id, allocation_date, amount FROM allocations")
    applied["allocation_date"] = pd.to_datetime(applied["allocation_date"])
    before = runs[["entry_id", "run_date"]].drop_duplicates().merge(applied, on="entry_id")
    before = before[before["allocation_date"] <= before["run_date"]].groupby(["entry_id", "run_date"])["amount"].sum()
    runs = runs.merge(before.rename("applied").reset_index(), on=["entry_id", "run_date"], how="left")
    runs["counts"] = ((runs["run_date"] >= pd.Timestamp(start)) & (runs["run_date"] <= pd.Timestamp(end))
                      & (runs["invoice"] - runs["applied"].fillna(0) > 0))
    ordered = runs.sort_values(["run_date", "config_id", "config_version", "stage_no"])
    owner = pd.merge_asof(payments_to_invoices(store, end).sort_values("allocation_date"), ordered,
                          left_on="allocation_date", right_on="run_date", by="entry_id", direction="backward",
                          allow_exact_matches=False)
    owner = owner[owner["counts"].fillna(False).astype(bool)]
    owner["recovered"] = owner["amount"] * owner["currency"].map(rates_at(store, end))
    keys = ["config_id", "config_version", "stage_no"]
    return owner.groupby(keys)["recovered"].sum().round(2).reset_index().astype({k: int for k in keys})


def first_stage_money(store: Store, start: date, end: date) -> pd.Series:
    """Per configuration version, in the reporting currency: payments and credit notes applied after an
    invoice's first stage run in [start, end] (with something open then), up to `end`. The plain
    statement of "Σ recovered over a configuration's stages", for invoices no other configuration dunned."""
    runs = store.read("""SELECT r.entry_id, r.config_id, r.config_version, MIN(r.run_date) AS first_run, e.currency
        FROM dunning_runs r JOIN ledger_entries e ON e.entry_id = r.entry_id
        WHERE r.outcome IN ('sent', 'done') AND r.run_date BETWEEN :start AND :end
          AND e.amount > (SELECT COALESCE(SUM(a.amount), 0) FROM allocations a
                          WHERE a.to_entry_id = r.entry_id AND a.allocation_date <= r.run_date)
        GROUP BY r.entry_id, r.config_id, r.config_version, e.currency""", {"start": start, "end": end})
    joined = runs.merge(payments_to_invoices(store, end), on="entry_id")
    joined = joined[joined["allocation_date"] > pd.to_datetime(joined["first_run"])]
    joined["amount"] = joined["amount"] * joined["currency"].map(rates_at(store, end))
    return joined.groupby(["config_id", "config_version"])["amount"].sum()


def assert_recovered_matches_pandas(store: Store, start: date, end: date) -> pd.DataFrame:
    frame = dunning_effectiveness(store, start, end)
    keys = ["config_id", "config_version", "stage_no"]
    mine = frame[keys + ["recovered"]].merge(independent_recovered(store, start, end), on=keys, how="outer",
                                             suffixes=("", "_pandas")).fillna(0.0)
    assert (mine["recovered"] - mine["recovered_pandas"]).abs().max() < 0.05, mine
    assert mine["recovered"].sum() > 0
    return frame


@pytest.fixture(scope="module")
def large_ledger(tmp_path_factory: pytest.TempPathFactory):
    """A 200,000-entry demo ledger (about 2 s to build; 1M entries would take 9 s of the suite's budget)."""
    from analytics.demo.persistence import generate_demo
    from analytics.migrations import connect

    store = connect(str(tmp_path_factory.mktemp("large") / "large.duckdb"))
    generate_demo(store, entries=200_000, seed=11, end_date=date(2026, 10, 31))
    yield store
    store.close()


@pytest.mark.slow
def test_recovered_adds_up_on_a_200k_ledger(large_ledger: Store) -> None:
    start, end = date(2025, 11, 1), date(2026, 10, 31)
    frame = assert_recovered_matches_pandas(large_ledger, start, end)
    handed_over = large_ledger.scalar("""SELECT COUNT(*) FROM (SELECT entry_id FROM dunning_runs
        WHERE outcome IN ('sent', 'done') GROUP BY entry_id HAVING COUNT(DISTINCT config_id * 1000 + config_version) > 1
        ) x""")
    assert handed_over == 0  # the demo keeps each invoice with one configuration version, so the sums are exact
    totals = frame.groupby(["config_id", "config_version"])["recovered"].sum()
    expected = first_stage_money(large_ledger, start, end)
    assert len(totals) >= 3 and totals.index.tolist() == expected.index.tolist()
    assert (totals - expected).abs().max() < 0.05 * frame["stage_no"].max()  # each stage rounds to the cent
    assert totals.sum() < frame["amount"][frame["stage_no"] == 1].sum() * 2  # no longer counted at every stage


def side(key: tuple[int, int], segments: dict[str, int], first: str = "2024-01-01", last: str = "2024-06-30",
         customers: int = 10) -> Population:
    return Population(config_id=key[0], config_version=key[1], invoices=sum(segments.values()), customers=customers,
                      segments=tuple(segments.items()), first_run=date.fromisoformat(first),
                      last_run=date.fromisoformat(last))


def test_the_warning_names_why_two_populations_are_not_alike() -> None:
    a = side((1, 1), {"SMB": 600, "Enterprise": 400})
    # 55/45 against 60/40: 5 points apart, sizes 1,000 and 1,100: alike
    assert segment_distance_points(a, side((2, 1), {"SMB": 605, "Enterprise": 495})) == pytest.approx(5.0)
    assert comparison_warning(a, side((2, 1), {"SMB": 605, "Enterprise": 495})) is None
    # 100% SMB against 60/40: 40 points apart
    mix = comparison_warning(a, side((2, 1), {"SMB": 900}))
    assert mix is not None and "segment mixes differ by 40 points" in mix and "times" not in mix
    assert "experiment" in mix
    # the same mix at 2.5 times the size
    size = comparison_warning(a, side((2, 1), {"SMB": 240, "Enterprise": 160}))
    assert size is not None and "2.5 times the other's invoices (1,000 against 400)" in size
    assert "segment mixes" not in size
    # exactly 2x and exactly 10 points are still alike (the limits are "more than")
    assert comparison_warning(a, side((2, 1), {"SMB": 350, "Enterprise": 150})) is None  # 70/30: 10 points, 2x
    assert segment_distance_points(a, side((2, 1), {"SMB": 350, "Enterprise": 150})) == pytest.approx(10.0)
    assert comparison_warning(a, side((2, 1), {"SMB": 300, "Enterprise": 200})) is None  # same mix, 2x


def test_like_for_like_is_the_shared_segments_over_the_shared_period() -> None:
    a = side((1, 1), {"SMB": 600, "Enterprise": 400}, "2024-01-01", "2024-06-30")
    b = side((2, 1), {"SMB": 900, "Public": 5}, "2024-03-15", "2024-09-30")
    ground = like_for_like(a, b, Filters(country="US"))
    assert (ground.runs_from, ground.runs_until, ground.segments) == (date(2024, 3, 15), date(2024, 6, 30), ("SMB",))
    assert ground.filters == Filters(country="US", segment=("SMB",))
    assert "segment SMB and to stage runs from 2024-03-15 to 2024-06-30" in ground.describe()
    with pytest.raises(ValueError, match="no segment in common"):
        like_for_like(a, side((2, 1), {"Public": 5}))
    with pytest.raises(ValueError, match="never ran in the same period"):
        like_for_like(a, side((2, 1), {"SMB": 5}, "2024-07-01", "2024-08-01"))


def test_report_dunning_prints_the_populations_and_the_like_for_like_ground(
        store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    three_stages(store)
    args = ["--db", store.url, "report", "dunning", "--start", "2024-02-01", "--end", "2024-03-31"]
    assert main(args + ["--compare", "1", "--compare", "2:1"]) == 0
    out = capsys.readouterr().out
    assert "Three steps (v1): 2 invoices of 2 customers · segments Enterprise 1, SMB 1" in out
    assert "Other (v1): 1 invoice of 1 customer · segments Enterprise 1" in out
    assert "Not a like-for-like comparison: their segment mixes differ by 50 points" in out
    header = next(line for line in out.splitlines() if "Stage no." in line)
    assert "Open at stage (USD)" in header and "Recovered (USD)" in header and "Paid ≤ 30 d (%)" in header
    assert main(args + ["--compare", "1:1", "--compare", "2", "--like-for-like"]) == 0
    out = capsys.readouterr().out
    assert "Like-for-like: both sides restricted to segment Enterprise and to stage runs from 2024-02-20 to " \
           "2024-02-20" in out
    # on 02-20 only Other's call ran (Three steps reminded I2 on 02-05): an honest empty side
    assert "Three steps (v1): no stage runs on this ground." in out
    assert "Other (v1): 1 invoice of 1 customer · segments Enterprise 1 · stage runs 2024-02-20 to 2024-02-20" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert [r[:4] for r in rows] == [["2", "Other", "1", "1"]]
    assert main(args + ["--compare", "1", "--compare", "2", "--like-for-like", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert [r["stage_no"] for r in json.loads(captured.out)] == [1]
    assert "Like-for-like" in captured.err
    assert main(args + ["--like-for-like"]) == 2
    assert "--like-for-like compares two sides: give --compare twice" in capsys.readouterr().err
    assert main(args + ["--compare", "9", "--compare", "1"]) == 2
    assert "No stage runs of configuration 9" in capsys.readouterr().err
