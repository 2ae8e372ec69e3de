"""The whole rule set simulated (`dunning_simulation.simulate_rule_set`): each customer follows the policy
of its first-matching segmentation rule, every policy runs day by day over its customers; by hand on
build_desk's ledger (DuckDB and PostgreSQL); `ardesk segments simulate`. The Segmentation page's "Simulate the rule set" is driven
in tests/test_pages_segmentation.py."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from analytics.cli.main import main
from analytics.collections.dunning_simulation import rule_set_totals, simulate_rule_set
from analytics.collections.segmentation import Rule, parse_rules, save_rules
from analytics.migrations import connect
from analytics.store.connection import Store
from tests.test_segmentation import ANALYST, RULES, STANDARD, T, build_desk

# build_desk: every policy has one stage, "Reminder", one day after the due date (no grace), by email.
# RULES as of 2026-03-11: C1 (enterprise, 5,000 open) -> Enterprise; C3 (region north) -> Gentle;
# C4 (open dispute, nothing open) -> Gentle; C2 and C5 -> Standard.
# Open items: I1 of C1, 5,000.00 due 2026-03-01; I2 of C2, 500.00 due 2026-03-21; I3 of C3, 2,000.00 due
# 2026-04-05; I4 of C3, 1,000.00 due 2026-01-10, paid 2026-02-09 (open until then).


def _rows(frame) -> list[tuple]:  # noqa: ANN001
    return [(str(r.day)[:10], r.policy, r.stage_no, r.messages, r.customers, r.invoices, r.open_ar)
            for r in frame.itertuples(index=False)]


def test_each_customer_follows_its_rules_policy_by_hand(store_on_each_engine: Store) -> None:
    store = store_on_each_engine
    build_desk(store)  # every customer is on Standard today: the rules, not the stored policy, decide
    result = simulate_rule_set(store, parse_rules(RULES), date(2026, 3, 2), date(2026, 4, 6), T)
    assert _rows(result) == [  # each invoice's stage 1 on its due date + 1
        ("2026-03-02", "Enterprise", 1, 1, 1, 1, 5000.0),
        ("2026-03-22", "Standard", 1, 1, 1, 1, 500.0),
        ("2026-04-06", "Gentle", 1, 1, 1, 1, 2000.0)]
    assert rule_set_totals(result).to_dict("records") == [
        {"policy": "Enterprise", "days": 1, "messages": 1, "invoices": 1, "open_ar": 5000.0},
        {"policy": "Gentle", "days": 1, "messages": 1, "invoices": 1, "open_ar": 2000.0},
        {"policy": "Standard", "days": 1, "messages": 1, "invoices": 1, "open_ar": 500.0}]
    # the ledger as it was: on 4 February I4 (due 10 January, paid 9 February) was still open
    everyone = simulate_rule_set(store, [Rule("Everyone", STANDARD)], date(2026, 2, 4), date(2026, 2, 5), T)
    assert _rows(everyone) == [("2026-02-04", "Standard", 1, 1, 1, 1, 1000.0)]
    with pytest.raises(ValueError, match="ends .* before it starts"):
        simulate_rule_set(store, parse_rules(RULES), T, date(2026, 3, 1))


def test_ardesk_segments_simulate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "desk.duckdb")
    store = connect(db)
    build_desk(store)
    store.close()
    period = ("--from", "2026-03-02", "--to", "2026-03-22", "--as-of", str(T))
    assert main(["--db", db, "segments", "simulate", *period]) == 2
    assert "No segmentation rules are saved yet" in capsys.readouterr().err
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "All"\npolicy = "Gentle"\n', encoding="utf-8")
    assert main(["--db", db, "segments", "simulate", str(rules), "--from", "2026-03-02", "--to", "2026-03-02",
                 "--format", "json"]) == 0
    assert [(d["day"][:10], d["policy"], d["open_ar"]) for d in json.loads(capsys.readouterr().out)] == [
        ("2026-03-02", "Gentle", 5000.0)]
    store = connect(db)
    save_rules(store, ANALYST, parse_rules(RULES), "by behaviour", T)
    store.close()
    assert main(["--db", db, "segments", "simulate", *period]) == 0  # the active rules
    out = capsys.readouterr().out
    assert out.startswith("Simulated the rule set from 2026-03-02 to 2026-03-22: 2 message(s), nothing written.")
    assert "Enterprise     1         1         1   5000.0\n  Standard     1         1         1    500.0\n" in out
