"""Collector targets: set by a manager (checked, validated, audited), measured per period, from the CLI."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.collections.followups import log_call
from analytics.collections.targets import TargetError, period_window, set_target, target_progress
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people

T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")


def _books(store: Store) -> Store:
    """Ana: A 1000 10 days late, B 2000 20 days late, G 500 100 days late (open 3500, all overdue, 90+: 500);
    three calls today. Ben: E 700, not yet due."""
    setup_people(store)
    add_dunning_config(store)
    for cid, who in (("A", "ana.collector"), ("B", "ana.collector"), ("G", "ana.collector"), ("E", "ben.collector")):
        add_customer(store, cid, collector=who)
    add_invoice(store, "A", "INV-A", T - timedelta(days=40), T - timedelta(days=10), 1000)
    add_invoice(store, "B", "INV-B", T - timedelta(days=50), T - timedelta(days=20), 2000)
    add_invoice(store, "G", "INV-G", T - timedelta(days=130), T - timedelta(days=100), 500)
    add_invoice(store, "E", "INV-E", T - timedelta(days=5), T + timedelta(days=25), 700)
    for cid in ("A", "B", "G"):
        log_call(store, ANA, cid, "reached")
    return store


def test_periods_hold_the_as_of_date() -> None:
    wednesday = date(2026, 10, 28)
    assert period_window("day", wednesday) == (wednesday, wednesday)
    assert period_window("week", wednesday) == (date(2026, 10, 26), wednesday)
    assert period_window("month", wednesday) == (date(2026, 10, 1), wednesday)
    with pytest.raises(TargetError, match="period 'year'"):
        period_window("year", wednesday)


def test_progress_against_each_target_is_measured_for_its_period(store_on_each_engine: Store) -> None:
    books = _books(store_on_each_engine)
    for metric, period, target in (("calls", "day", 4), ("calls", "week", 2), ("overdue_balance", "month", 5000),
                                   ("share_90_plus", "month", 10), ("promises_kept_pct", "month", 80),
                                   ("emails", "week", 0)):
        assert set_target(books, SYSTEM, "ana.collector", metric, period, target) is True
    set_target(books, SYSTEM, "ben.collector", "overdue_balance", "month", 100)
    progress = target_progress(books, T, "ana.collector")
    shown = progress[["metric", "period", "target", "actual", "progress_pct", "met"]].to_dict("records")
    assert [{k: (None if v != v else v) for k, v in row.items()} for row in shown] == [
        {"metric": "calls", "period": "day", "target": 4.0, "actual": 3.0, "progress_pct": 75.0, "met": False},
        {"metric": "calls", "period": "week", "target": 2.0, "actual": 3.0, "progress_pct": 150.0, "met": True},
        {"metric": "emails", "period": "week", "target": 0.0, "actual": 0.0, "progress_pct": 100.0, "met": True},
        {"metric": "overdue_balance", "period": "month", "target": 5000.0, "actual": 3500.0, "progress_pct": 100.0,
         "met": True},
        # 500 of 3500 is 14.29 %: over the 10 % ceiling, 10 / 14.29 = 70 %
        {"metric": "share_90_plus", "period": "month", "target": 10.0, "actual": 14.29, "progress_pct": 70.0,
         "met": False},
        {"metric": "promises_kept_pct", "period": "month", "target": 80.0, "actual": None, "progress_pct": None,
         "met": False},  # no promise due: nothing to measure
    ]
    ben = target_progress(books, T, "ben.collector")
    assert ben[["actual", "met"]].to_dict("records") == [{"actual": 0.0, "met": True}]  # nothing overdue yet
    assert len(target_progress(books, T)) == 7


def test_only_a_manager_sets_targets_checked_and_audited(store: Store) -> None:
    books = _books(store)
    with pytest.raises(PermissionDenied):
        set_target(books, ANA, "ana.collector", "calls", "day", 100)
    for args, message in ((("ana.collector", "cals", "day", 5), "metric 'cals'"),
                          (("ana.collector", "calls", "hour", 5), "period 'hour'"),
                          (("ana.collector", "share_90_plus", "month", 120), "at most 100"),
                          (("ana.collector", "calls", "day", -1), "0 or more"),
                          (("sam.sales", "calls", "day", 5), "not an active collector")):
        with pytest.raises(TargetError, match=message):
            set_target(books, SYSTEM, *args)
    assert set_target(books, SYSTEM, "ana.collector", "calls", "day", 20) is True
    assert set_target(books, SYSTEM, "ana.collector", "calls", "day", 20) is False  # unchanged: no write
    assert set_target(books, SYSTEM, "ana.collector", "calls", "day", 25) is True
    assert books.scalar("SELECT target FROM collector_targets") == 25
    trail = books.read("SELECT entity_id, old_values, new_values FROM audit_log WHERE action = 'target.set' "
                       "ORDER BY audit_id")
    assert trail["entity_id"].tolist() == ["ana.collector/calls/day"] * 2
    assert '"target": 20.0' in trail["old_values"].iloc[1] and '"target": 25.0' in trail["new_values"].iloc[1]


def test_cli_sets_and_shows_targets(store: Store, capsys) -> None:
    from analytics.cli.main import main

    books = _books(store)
    url = books.url
    assert main(["--db", url, "targets", "set", "ana.collector", "calls", "day", "4"]) == 0
    assert capsys.readouterr().out == "Target set: ana.collector calls per day at least 4.\n"
    assert main(["--db", url, "targets", "set", "ana.collector", "calls", "day", "9", "--as", "ana.collector"]) == 2
    assert "may not set targets" in capsys.readouterr().err
    assert main(["--db", url, "targets", "set", "sam.sales", "calls", "day", "9"]) == 2
    assert "not an active collector" in capsys.readouterr().err
    assert main(["--db", url, "targets", "show", "--collector", "ana.collector", "--as-of", T.isoformat(),
                 "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("collector,metric,label,period,")
    assert lines[1].split(",")[:2] == ["ana.collector", "calls"] and ",4.0,3.0,75.0,False," in lines[1]
    assert main(["--db", url, "targets", "show", "--collector", "ghost"]) == 2
    assert main(["--db", url, "targets", "show", "--collector", "ben.collector"]) == 0
    assert capsys.readouterr().out == "No targets set.\n"
