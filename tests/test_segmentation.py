"""Segmentation rules: first match wins over customer fields, imported attributes and ledger behaviour;
the preview by hand; saving re-assigns set-based, versioned and audited; the import assigns new
customers in its transaction; the TOML round trip and `ardesk segments`; a demo-store check against
an independent pandas computation. The hand-computed cases run on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.cli.main import main
from analytics.collections.segment_rules_file import rules_from_toml, rules_to_toml
from analytics.collections.segmentation import (
    Condition,
    Rule,
    SegmentRuleError,
    current_rule_set,
    parse_rules,
    policies,
    preview_rules,
    save_rules,
)
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.migrations import connect
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_invoice, add_payment, setup_people

T = date(2026, 3, 11)
ANALYST = Actor("ana.lyst", "analyst")
STANDARD, ENTERPRISE, GENTLE = 1, 2, 3


def add_policy(store: Store, config_id: int, name: str, active: bool = True) -> None:
    with store.write() as conn:
        conn.execute(sa.text(
            "INSERT INTO dunning_configs (config_id, version, name, segment, grace_days, active, created_at) "
            "VALUES (:c, 1, :n, NULL, 0, :a, :now)"), {"c": config_id, "n": name, "a": active, "now": datetime.now()})
        conn.execute(sa.text("INSERT INTO dunning_stages (config_id, version, stage_no, name, day_offset, channel, "
                             "template, mode) VALUES (:c, 1, 1, 'Reminder', 1, 'email', 'reminder_friendly', "
                             "'manual')"), {"c": config_id})


def add_activity(store: Store, customer_id: str, kind: str, status: str, occurred: date, due: date | None = None,
                 resolved: date | None = None) -> None:
    with store.write() as conn:
        conn.execute(sa.text(
            "INSERT INTO activities (customer_id, kind, occurred_at, author, status, due_date, resolved_at, amount) "
            "VALUES (:c, :k, :o, 'ana.collector', :s, :d, :r, 100)"),
            {"c": customer_id, "k": kind, "o": datetime.combine(occurred, datetime.min.time()), "s": status,
             "d": due, "r": None if resolved is None else datetime.combine(resolved, datetime.min.time())})


def set_attribute(store: Store, customer_id: str, name: str, value: str) -> None:
    with store.write() as conn:
        conn.execute(sa.text("INSERT INTO customer_attributes (customer_id, name, value, updated_at) "
                             "VALUES (:c, :n, :v, :now)"), {"c": customer_id, "n": name, "v": value,
                                                            "now": datetime.now()})


def build_desk(store: Store) -> None:
    """Five customers, all on Standard (1) today:
    C1 enterprise, 5,000.00 open (due 10 days ago);  C2 enterprise, 500.00 open, a promise broken 10 days ago;
    C3 mid-market, region north, 2,000.00 open, two paid invoices: 1,000 paid 30 days late and 1,000 paid
    5 days early (average days late (30 - 5) / 2 = 12.5, half paid late);  C4 mid-market, nothing open,
    a dispute open since 5 days (and one resolved);  C5 small, nothing at all."""
    setup_people(store)
    add_policy(store, STANDARD, "Standard")
    add_policy(store, ENTERPRISE, "Enterprise")
    add_policy(store, GENTLE, "Gentle")
    add_policy(store, 4, "Retired", active=False)
    for cid, segment in (("C1", "enterprise"), ("C2", "enterprise"), ("C3", "mid-market"), ("C4", "mid-market"),
                         ("C5", "small")):
        add_customer(store, cid, segment=segment, config_id=STANDARD)
    add_invoice(store, "C1", "I1", T - timedelta(days=40), T - timedelta(days=10), 5000)
    add_invoice(store, "C2", "I2", T - timedelta(days=20), T + timedelta(days=10), 500)
    add_invoice(store, "C3", "I3", T - timedelta(days=5), T + timedelta(days=25), 2000)
    late = add_invoice(store, "C3", "I4", T - timedelta(days=90), T - timedelta(days=60), 1000)
    add_payment(store, "C3", "P4", T - timedelta(days=30), 1000, late)
    early = add_invoice(store, "C3", "I5", T - timedelta(days=50), T - timedelta(days=20), 1000)
    add_payment(store, "C3", "P5", T - timedelta(days=25), 1000, early)
    set_attribute(store, "C3", "region", "north")
    add_activity(store, "C2", "promise", "broken", T - timedelta(days=30), due=T - timedelta(days=10))
    add_activity(store, "C4", "dispute", "open", T - timedelta(days=5))
    add_activity(store, "C5", "dispute", "resolved", T - timedelta(days=50), resolved=T - timedelta(days=40))


RULES = [
    {"name": "Big enterprise", "policy_id": ENTERPRISE,
     "conditions": [{"field": "segment", "op": "=", "value": "enterprise"},
                    {"field": "open_ar", "op": ">=", "value": "1000"}]},
    {"name": "North", "policy_id": GENTLE, "conditions": [{"field": "attr:region", "op": "in", "value": ["north"]}]},
    {"name": "Disputed", "policy_id": GENTLE, "conditions": [{"field": "open_disputes", "op": ">=", "value": 1}]},
    {"name": "Everyone else", "policy_id": STANDARD, "conditions": []},
]


def _assigned(store: Store) -> dict[str, int]:
    frame = store.read("SELECT customer_id, dunning_config_id FROM customers ORDER BY customer_id")
    return {str(r.customer_id): int(r.dunning_config_id) for r in frame.itertuples(index=False)}


def test_preview_and_save_by_hand(store_on_each_engine: Store) -> None:
    store = store_on_each_engine
    build_desk(store)
    rules = parse_rules(RULES)
    preview = preview_rules(store, rules, T)
    # C1 -> Big enterprise; C3 -> North; C4 -> Disputed; C2 (500 < 1,000) and C5 -> Everyone else
    assert preview[["rule", "policy", "customers", "open_ar", "changing"]].to_dict("records") == [
        {"rule": "Big enterprise", "policy": "Enterprise", "customers": 1, "open_ar": 5000.0, "changing": 1},
        {"rule": "North", "policy": "Gentle", "customers": 1, "open_ar": 2000.0, "changing": 1},
        {"rule": "Disputed", "policy": "Gentle", "customers": 1, "open_ar": 0.0, "changing": 1},
        {"rule": "Everyone else", "policy": "Standard", "customers": 2, "open_ar": 500.0, "changing": 0},
    ]
    assert preview["conditions"].tolist()[0] == "segment = enterprise and open_ar >= 1000"
    assert _assigned(store) == dict.fromkeys(["C1", "C2", "C3", "C4", "C5"], STANDARD)  # a preview writes nothing

    saved = save_rules(store, ANALYST, rules, "Enterprise gets its own cadence", T)
    assert saved == {"version": 1, "customers_changed": 3}  # exactly the preview's changing count
    assert _assigned(store) == {"C1": ENTERPRISE, "C2": STANDARD, "C3": GENTLE, "C4": GENTLE, "C5": STANDARD}
    audit = store.read("SELECT actor, action, entity_id, old_values, new_values, detail FROM audit_log "
                       "WHERE action IN ('customer.dunning_config', 'segments.save') ORDER BY audit_id")
    lines = audit[audit["action"] == "customer.dunning_config"]
    assert sorted(lines["entity_id"]) == ["C1", "C3", "C4"]
    c1 = lines[lines["entity_id"] == "C1"].iloc[0]
    assert json.loads(c1["old_values"]) == {"dunning_config_id": 1}
    assert json.loads(c1["new_values"]) == {"dunning_config_id": 2, "segment_rule": 1}
    head = audit[audit["action"] == "segments.save"].iloc[0]
    assert (head["actor"], head["entity_id"], head["detail"]) == ("ana.lyst", "1", "Enterprise gets its own cadence")
    assert json.loads(head["new_values"])["customers_changed"] == 3

    current = current_rule_set(store)
    assert (current["version"], current["created_by"], current["reason"]) == (1, "ana.lyst",
                                                                              "Enterprise gets its own cadence")
    assert current["rules"] == rules
    again = save_rules(store, ANALYST, rules, "same rules again", T)  # a new version, nobody changes
    assert again == {"version": 2, "customers_changed": 0}
    assert store.read("SELECT version, active FROM segment_rule_sets ORDER BY version").to_dict("records") == [
        {"version": 1, "active": False}, {"version": 2, "active": True}]


def test_behaviour_fields_by_hand(store_on_each_engine: Store) -> None:
    store = store_on_each_engine
    build_desk(store)

    def first_match(conditions: list[dict]) -> list[str]:
        rules = parse_rules([{"name": "hit", "policy_id": GENTLE, "conditions": conditions},
                             {"name": "rest", "policy_id": STANDARD}])
        save_rules(store, ANALYST, rules, "probe", T)
        return sorted(c for c, p in _assigned(store).items() if p == GENTLE)

    # C3: (1,000 × 30 + 1,000 × 0) / 2,000 = 15 days late (the payment 5 days early is on time, not -5);
    # nobody else paid anything
    assert first_match([{"field": "avg_days_late", "op": ">", "value": 14.9}]) == ["C3"]
    assert first_match([{"field": "avg_days_late", "op": ">", "value": 15}]) == []
    assert first_match([{"field": "avg_days_late", "op": "!=", "value": 15}]) == ["C1", "C2", "C4", "C5"]  # missing
    assert first_match([{"field": "paid_late_pct", "op": "between", "value": [50, 50]}]) == ["C3"]
    assert first_match([{"field": "broken_promises_90d", "op": "=", "value": 1}]) == ["C2"]
    assert first_match([{"field": "open_disputes", "op": "=", "value": 0}]) == ["C1", "C2", "C3", "C5"]
    assert first_match([{"field": "open_ar", "op": "between", "value": ["500", "2000.00"]}]) == ["C2", "C3"]
    assert first_match([{"field": "attr:region", "op": "not in", "value": ["north"]}]) == ["C1", "C2", "C4", "C5"]
    assert first_match([{"field": "segment", "op": "!=", "value": "enterprise"},
                        {"field": "currency", "op": "=", "value": "USD"}]) == ["C3", "C4", "C5"]
    assert first_match([{"field": "risk_class", "op": "=", "value": "high"}]) == []


def test_rules_are_checked_in_words() -> None:
    with pytest.raises(SegmentRuleError, match="only the last rule"):
        parse_rules([{"name": "a", "policy_id": 1}, {"name": "b", "policy_id": 1}])
    with pytest.raises(SegmentRuleError, match="The last rule .* must have no conditions"):
        parse_rules([{"name": "a", "policy_id": 1, "conditions": [{"field": "segment", "op": "=", "value": "x"}]}])
    with pytest.raises(SegmentRuleError, match="field 'segment; DROP' is not one of"):
        parse_rules([{"name": "a", "policy_id": 1, "conditions": [{"field": "segment; DROP", "op": "=", "value": 1}]},
                     {"name": "b", "policy_id": 1}])
    with pytest.raises(SegmentRuleError, match="field 'attr:Region X' is not one of"):
        parse_rules([{"name": "a", "policy_id": 1, "conditions": [{"field": "attr:Region X", "op": "=", "value": 1}]},
                     {"name": "b", "policy_id": 1}])
    with pytest.raises(SegmentRuleError, match="operator '>' does not apply to segment"):
        parse_rules([{"name": "a", "policy_id": 1, "conditions": [{"field": "segment", "op": ">", "value": "x"}]},
                     {"name": "b", "policy_id": 1}])
    with pytest.raises(SegmentRuleError, match=r"Rule 1 \(a\), condition 1: 'lots' is not a number"):
        parse_rules([{"name": "a", "policy_id": 1, "conditions": [{"field": "open_ar", "op": ">", "value": "lots"}]},
                     {"name": "b", "policy_id": 1}])
    with pytest.raises(SegmentRuleError, match="another rule has the same name"):
        parse_rules([{"name": "a", "policy_id": 1, "conditions": [{"field": "open_ar", "op": ">", "value": 1}]},
                     {"name": "a", "policy_id": 1}])


def test_writes_are_role_checked_and_policies_must_be_active(store: Store) -> None:
    build_desk(store)
    rules = parse_rules(RULES)
    with pytest.raises(PermissionDenied, match="may not edit segments"):
        save_rules(store, Actor("ana.collector", "collector"), rules, "why not")
    with pytest.raises(SegmentRuleError, match="reason"):
        save_rules(store, ANALYST, rules, "  ")
    with pytest.raises(SegmentRuleError, match="dunning policy 4 is not active"):
        save_rules(store, ANALYST, [Rule("Old", 4)], "retired")
    with pytest.raises(SegmentRuleError, match="there is no dunning policy 9"):
        preview_rules(store, [Rule("Nope", 9)], T)
    assert store.scalar("SELECT COUNT(*) FROM segment_rule_sets") == 0
    assert _assigned(store)["C1"] == STANDARD


def test_import_assigns_new_and_changed_customers_in_its_transaction(store_on_each_engine: Store,
                                                                     tmp_path: Path) -> None:
    store = store_on_each_engine
    build_desk(store)
    mapping = Mapping(dataset="customers", columns={"customer_id": "id", "name": "name", "segment": "segment"})
    path = tmp_path / "customers.csv"
    path.write_text("id,name,segment,Region\nN1,New North,small,north\nN2,New Plain,small,south\n", encoding="utf-8")
    run_import(store, path, mapping, SYSTEM)  # no rules saved yet: nothing assigned
    assert store.read("SELECT dunning_config_id FROM customers WHERE customer_id LIKE 'N%'")[
        "dunning_config_id"].isna().all()
    save_rules(store, ANALYST, parse_rules(RULES), "first rules", T)
    assert _assigned(store)["N1"] == GENTLE and _assigned(store)["N2"] == STANDARD
    path.write_text("id,name,segment,Region\nN2,New Plain,small,north\nN3,Third,enterprise,\n", encoding="utf-8")
    run_import(store, path, mapping, SYSTEM)  # N2 moves north; N3 is new, enterprise without open AR
    assigned = _assigned(store)
    assert (assigned["N2"], assigned["N3"], assigned["C1"]) == (GENTLE, STANDARD, ENTERPRISE)
    lines = store.read("SELECT actor, entity_id, detail FROM audit_log WHERE action = 'customer.dunning_config' "
                       "AND entity_id IN ('N2', 'N3') ORDER BY entity_id, audit_id")
    last_posting = T - timedelta(days=5)  # an import measures behaviour as of the ledger's last posting date
    assert lines.to_dict("records") == [
        {"actor": "ana.lyst", "entity_id": "N2", "detail": f"segment rules v1 as of {T}"},
        {"actor": "system", "entity_id": "N2", "detail": f"segment rules v1 as of {last_posting}"},
        {"actor": "system", "entity_id": "N3", "detail": f"segment rules v1 as of {last_posting}"},
    ]  # N2 twice: STANDARD at the save (from none), GENTLE at the second import (by the importer)
    count = "SELECT COUNT(*) FROM audit_log WHERE action = 'customer.dunning_config'"
    before = store.scalar(count)
    run_import(store, path, mapping, SYSTEM)  # the same file again changes nothing
    assert store.scalar(count) == before == 7 and _assigned(store) == assigned


def test_toml_round_trip_and_errors(store: Store) -> None:
    build_desk(store)
    rules = parse_rules(RULES) [:-1] + [Rule('Everyone "else"\n\\', STANDARD)]
    rules[0] = Rule(rules[0].name, ENTERPRISE, (Condition("segment", "=", "enterprise"),
                                                Condition("open_ar", "between", (Decimal("999.99"), Decimal("5000")))))
    text = rules_to_toml(rules, policies(store), "version 1\nreason: a # and\nnewline")
    assert 'policy = "Enterprise"' in text and 'value = [999.99, 5000]' in text
    assert rules_from_toml(text, policies(store)) == rules
    with pytest.raises(SegmentRuleError, match="not valid TOML"):
        rules_from_toml("[[rule]\nname = ", policies(store))
    with pytest.raises(SegmentRuleError, match="no dunning policy named 'Gold'"):
        rules_from_toml('[[rule]]\nname = "x"\npolicy = "Gold"\n', policies(store))
    with pytest.raises(SegmentRuleError, match="unknown key"):
        rules_from_toml('[[rule]]\nname = "x"\npolicy = "Standard"\ncolor = 1\n', policies(store))


def test_cli_export_apply_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.duckdb")
    store = connect(db)
    build_desk(store)
    save_rules(store, ANALYST, [Rule("Everyone", STANDARD)], "start", T)
    store.close()
    assert main(["--db", db, "segments", "export"]) == 0
    exported = capsys.readouterr().out
    assert exported.endswith('[[rule]]\nname = "Everyone"\npolicy = "Standard"\n')
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[[rule]]\nname = "Big"\npolicy = "Enterprise"\n'
                          'conditions = [{ field = "open_ar", op = ">=", value = 1000 }]\n'
                          '[[rule]]\nname = "Rest"\npolicy = "Standard"\n', encoding="utf-8")
    assert main(["--db", db, "segments", "apply", str(rules_file), "--dry-run", "--as-of", str(T),
                 "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "1,Big,open_ar >= 1000,Enterprise,2,7000.0,2\n" in out  # C1 5,000 and C3 2,000
    assert out.endswith(f"Dry run as of {T}: 2 customer(s) would change policy; nothing saved.\n")
    assert main(["--db", db, "segments", "apply", str(rules_file), "--as-of", str(T), "--reason", "big ones"]) == 0
    assert capsys.readouterr().out.endswith("Saved as version 2: 2 customer(s) changed policy.\n")
    assert main(["--db", db, "segments", "show", "--as-of", str(T), "--format", "csv"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("Version 2, saved by system at ") and ": big ones\n" in shown
    assert "2,Rest,everyone else (default),Standard,3,500.0,0\n" in shown
    assert main(["--db", db, "segments", "reassign", "--as-of", str(T)]) == 0  # nothing moved since
    assert capsys.readouterr().out == "0 customer(s) changed policy.\n"
    assert main(["--db", db, "segments", "reassign", "--as", "ana.collector"]) == 2
    assert "may not edit segments" in capsys.readouterr().err
    rules_file.write_text('[[rule]]\nname = "Rest"\npolicy = "Gold"\n', encoding="utf-8")
    assert main(["--db", db, "segments", "apply", str(rules_file)]) == 2
    assert "no dunning policy named 'Gold'" in capsys.readouterr().err
    store = connect(db)
    try:
        assert _assigned(store) == {"C1": ENTERPRISE, "C2": STANDARD, "C3": ENTERPRISE, "C4": STANDARD,
                                    "C5": STANDARD}
    finally:
        store.close()


def test_first_match_equals_pandas_on_the_demo(demo_store: Store) -> None:
    """Every customer's policy after a save equals a first-match computed with pandas over the raw tables."""
    store = demo_store
    known = policies(store)
    active = [int(c) for c in known[known["active"]]["config_id"]]
    assert len(active) >= 2
    a, b = active[0], active[1]
    as_of = date(2026, 10, 31)
    segments = sorted(store.read("SELECT DISTINCT segment FROM customers")["segment"])
    rules = parse_rules([
        {"name": "Promises broken", "policy_id": b,
         "conditions": [{"field": "broken_promises_90d", "op": ">=", "value": 1}]},
        {"name": "Slow payers", "policy_id": b, "conditions": [{"field": "avg_days_late", "op": ">=", "value": 20}]},
        {"name": "First segment", "policy_id": a, "conditions": [{"field": "segment", "op": "=", "value": segments[0]}]},
        {"name": "Default", "policy_id": a}])
    preview = preview_rules(store, rules, as_of)
    save_rules(store, SYSTEM, rules, "pandas check", as_of)

    customers = store.read("SELECT customer_id, segment FROM customers")
    alloc = store.read("SELECT a.amount, a.allocation_date, e.customer_id, e.due_date FROM allocations a "
                       "JOIN ledger_entries e ON e.entry_id = a.to_entry_id WHERE e.due_date IS NOT NULL")
    alloc["allocation_date"] = pd.to_datetime(alloc["allocation_date"])
    alloc["due_date"] = pd.to_datetime(alloc["due_date"])
    window = alloc[(alloc["allocation_date"] <= pd.Timestamp(as_of))
                   & (alloc["allocation_date"] > pd.Timestamp(as_of - timedelta(days=365)))].copy()
    window["amount"] = window["amount"].astype(float)
    window["weighted"] = window["amount"] * (window["allocation_date"] - window["due_date"]).dt.days.clip(lower=0)
    sums = window.groupby("customer_id")[["weighted", "amount"]].sum()
    late = (sums["weighted"] / sums["amount"].where(sums["amount"] != 0)).rename("avg_days_late")
    promises = store.read("SELECT customer_id, due_date FROM activities WHERE kind = 'promise' AND status = 'broken'")
    promises["due_date"] = pd.to_datetime(promises["due_date"])
    broken = promises[(promises["due_date"] >= pd.Timestamp(as_of - timedelta(days=90)))
                      & (promises["due_date"] < pd.Timestamp(as_of))].groupby("customer_id").size().rename("broken")
    facts = customers.set_index("customer_id").join(late).join(broken)
    facts["broken"] = facts["broken"].fillna(0)
    position = pd.Series(4, index=facts.index)
    position[facts["segment"] == segments[0]] = 3
    position[facts["avg_days_late"] >= 20] = 2  # NaN (no payments) compares False
    position[facts["broken"] >= 1] = 1
    expected = position.map({1: b, 2: b, 3: a, 4: a})
    assigned = pd.Series(_assigned(store))
    assert assigned.sort_index().equals(expected.sort_index().astype(int))
    assert preview["customers"].tolist() == [int((position == k).sum()) for k in (1, 2, 3, 4)]
    assert min(preview["customers"]) > 0  # every rule takes someone: the check is not vacuous
