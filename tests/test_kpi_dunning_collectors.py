"""Dunning effectiveness per configuration and stage, recovery curve, and collector KPIs, by hand."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.kpis.collector_kpis import collector_kpis, working_days
from analytics.kpis.dunning_effectiveness import dunning_effectiveness, recovery_curve
from analytics.ledger.filters import Filters
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder

START, END = date(2024, 3, 1), date(2024, 4, 30)


@pytest.fixture
def dunning(store: Store) -> LedgerBuilder:
    b = LedgerBuilder(store)
    b.dunning_config(1, name="Standard", stages=[("Reminder", 1, "email"), ("Letter", 15, "letter"),
                                                 ("Agency", 30, "escalation")])
    b.customer("D", dunning_config_id=1, segment="enterprise").customer("E", segment="mid-market")
    b.invoice("D", "N1", posted="2024-01-31", due="2024-03-01", amount=1000)
    b.invoice("D", "N2", posted="2024-01-31", due="2024-03-01", amount=500)
    b.invoice("D", "N3", posted="2024-02-09", due="2024-03-10", amount=200)
    b.payment("D", "Q0", posted="2024-03-08", amount=50, applies={"N3": 50})  # before its stage
    b.dunning_run("D", "N1", config_id=1, stage_no=1, run_date="2024-03-02")
    b.dunning_run("D", "N2", config_id=1, stage_no=1, run_date="2024-03-02")
    b.dunning_run("D", "N3", config_id=1, stage_no=1, run_date="2024-03-11")
    b.dunning_run("D", "N1", config_id=1, stage_no=2, run_date="2024-03-16", outcome="failed")  # not counted
    b.dunning_run("D", "N2", config_id=1, stage_no=2, run_date="2024-03-16")
    b.dunning_run("D", "N2", config_id=1, stage_no=3, run_date="2024-03-31")
    b.payment("D", "Q1", posted="2024-03-05", amount=400, applies={"N1": 400})  # 3 days after stage 1
    b.payment("D", "Q2", posted="2024-03-20", amount=600, applies={"N1": 600})  # 18 days: paid in full
    b.payment("D", "Q3", posted="2024-04-05", amount=150, applies={"N3": 150})  # 25 days: paid in full
    b.payment("D", "Q4", posted="2024-05-05", amount=500, applies={"N2": 500})  # after the report: ignored
    return b


def test_dunning_effectiveness_per_stage(store: Store, dunning: LedgerBuilder) -> None:
    frame = dunning_effectiveness(store, START, END)
    records = frame.drop(columns="median_days_to_pay").to_dict("records")
    assert [r["invoices"] for r in records] == [3, 1, 1]
    assert records[0] == {
        "config_id": 1, "config_name": "Standard", "config_version": 1, "stage_no": 1, "stage_name": "Reminder",
        "channel": "email", "invoices": 3, "amount": 1650.0, "paid_7d_pct": round(400 / 1650 * 100, 2),
        "paid_14d_pct": round(400 / 1650 * 100, 2), "paid_30d_pct": round(1150 / 1650 * 100, 2),
        "recovered": 1150.0, "reached_final_pct": round(100 / 3, 2)}
    assert records[1] == {
        "config_id": 1, "config_name": "Standard", "config_version": 1, "stage_no": 2, "stage_name": "Letter",
        "channel": "letter", "invoices": 1, "amount": 500.0, "paid_7d_pct": 0.0, "paid_14d_pct": 0.0,
        "paid_30d_pct": 0.0, "recovered": 0.0, "reached_final_pct": 100.0}
    assert records[2]["stage_name"] == "Agency" and records[2]["reached_final_pct"] == 100.0
    assert frame["median_days_to_pay"].iloc[0] == 21.5  # median of 18 and 25 days
    assert frame["median_days_to_pay"].iloc[1:].isna().all()


def test_young_runs_do_not_count_in_longer_windows(store: Store, dunning: LedgerBuilder) -> None:
    # Report ending 2024-04-05: the 03-11 run is 25 days old, outside the 30-day base.
    frame = dunning_effectiveness(store, START, date(2024, 4, 5))
    first = frame.iloc[0]
    assert first["paid_30d_pct"] == round(1000 / 1500 * 100, 2)
    assert first["stage_no"] == 1 and first["paid_7d_pct"] == round(400 / 1650 * 100, 2)
    assert dunning_effectiveness(store, START, END, Filters(segment="mid-market")).empty


def test_recovery_curve(store: Store, dunning: LedgerBuilder) -> None:
    curve = recovery_curve(store, START, END, max_days=60)
    stage1 = curve[curve.stage_no == 1].set_index("days")["share_paid_pct"]
    assert stage1[0] == 0.0
    assert stage1[3] == round(400 / 1650 * 100, 2)
    assert stage1[18] == round(1000 / 1650 * 100, 2)
    assert stage1[25] == round(1150 / 1650 * 100, 2)
    # At 55 days only the 03-02 runs (N1, N2) are old enough: 1000 of 1500.
    assert stage1[55] == round(1000 / 1500 * 100, 2)
    assert stage1.index.tolist() == list(range(61))
    assert curve[curve.stage_no == 3]["share_paid_pct"].max() == 0.0


@pytest.fixture
def team(store: Store) -> LedgerBuilder:
    b = LedgerBuilder(store)
    b.customer("K1", collector="ann").customer("K2", collector="ann").customer("K3", collector="bob")
    b.invoice("K1", "I1", posted="2024-02-01", due="2024-03-02", amount=1000)
    b.invoice("K2", "I2", posted="2024-03-16", due="2024-04-15", amount=500)
    b.invoice("K3", "I3", posted="2024-01-16", due="2024-02-15", amount=800)
    b.activity("K1", "call", at="2024-03-05", author="ann").activity("K1", "email", at="2024-03-06", author="ann")
    b.activity("K1", "note", at="2024-03-07", author="ann")
    b.activity("K1", "promise", at="2024-03-08", author="ann", amount=600, due="2024-03-15", status="pending")
    b.payment("K1", "P1", posted="2024-03-14", amount=600, applies={"I1": 600})  # kept, 9 days after the call
    b.activity("K2", "promise", at="2024-03-10", author="ann", amount=500, due="2024-03-20", status="pending")
    b.payment("K2", "P2", posted="2024-03-18", amount=200, applies={"I2": 200})  # promise broken
    b.activity("K2", "promise", at="2024-03-25", author="ann", amount=300, due="2024-04-10")  # not due yet
    b.activity("K3", "call", at="2024-03-01", author="bob").activity("K3", "email", at="2024-03-10", author="bob")
    b.payment("K3", "P3", posted="2024-03-10", amount=100, applies={"I3": 100})  # same day as the email
    b.payment("K3", "P4", posted="2024-03-20", amount=300, applies={"I3": 300})  # 10 days after the email
    return b


def test_collector_kpis(store: Store, team: LedgerBuilder) -> None:
    march = (date(2024, 3, 1), date(2024, 3, 31))
    assert working_days(*march) == 21
    frame = collector_kpis(store, *march)
    assert frame.drop(columns="kept_pct").to_dict("records") == [
        {"collector": "ann", "customers": 2, "open_ar": 700.0, "overdue_ar": 400.0, "calls": 1, "emails": 1,
         "notes": 1, "actions_per_day": round(3 / 21, 2), "promises": 3, "promises_due": 2, "promises_kept": 1,
         "collected_14d": 600.0},
        {"collector": "bob", "customers": 1, "open_ar": 400.0, "overdue_ar": 400.0, "calls": 1, "emails": 1,
         "notes": 0, "actions_per_day": round(2 / 21, 2), "promises": 0, "promises_due": 0, "promises_kept": 0,
         "collected_14d": 400.0},
    ]
    assert frame["kept_pct"].iloc[0] == 50.0 and frame["kept_pct"].isna().tolist() == [False, True]
    only_bob = collector_kpis(store, *march, Filters(collector="bob"))
    assert only_bob["collector"].tolist() == ["bob"]
