"""Dunning policies: the rules of the run on a frozen clock, immutable sent versions, TOML, the
Exhausted queue and its end action, and the simulation (which must agree with the run, day by day)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.collections.dunning_exhausted import exhausted_customers, run_end_actions
from analytics.collections.dunning_policies import (
    Channel,
    DunningPolicyError,
    ImmutableVersionError,
    Policy,
    Stage,
    apply_policies,
    clone_policy,
    export_policies,
    list_policies,
    load_policy,
    policies_from_toml,
    replace_version,
    retire_policy,
    save_policy,
)
from analytics.collections.dunning_schedule import due_stages
from analytics.collections.dunning_simulation import simulate_policy
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import Store
from analytics.store.ids import reserve_ids
from analytics.store.schema import DUNNING_RUN_IDS
from tests.collector_data import add_customer, add_invoice, add_payment, setup_people

D0 = date(2026, 3, 10)  # the frozen clock: every date below is explicit
ANALYST = Actor("ana.lyst", "analyst")


def _policy(name: str = "Standard", **kw) -> Policy:
    stages = kw.pop("stages", (
        Stage(1, "Friendly", 1, (Channel("email", "reminder_friendly"),)),
        Stage(2, "Firm", 15, (Channel("email", "reminder_firm"), Channel("letter", "reminder_letter"))),
        Stage(3, "Call", 30, (Channel("call"),), mode="manual")))
    return Policy(name=name, stages=stages, **kw)


def _due(store: Store, day: date) -> list[tuple[str, int]]:
    frame = due_stages(store, day)
    return sorted(zip(frame["document_number"], frame["stage_no"].astype(int), strict=True))


def _record(store: Store, day: date, outcome: str = "sent") -> list[tuple[str, int]]:
    """What the run does for every stage due on `day`: one run per invoice, dated `day` (and its stage result)."""
    frame = due_stages(store, day)
    with store.write() as conn:
        if len(frame):
            first = reserve_ids(conn, DUNNING_RUN_IDS, len(frame))
            conn.execute(sa.text(
                "INSERT INTO dunning_runs (run_id, entry_id, customer_id, config_id, config_version, stage_no, "
                "run_date, outcome) VALUES (:r, :e, :c, :cfg, :v, :s, :d, :o)"),
                [{"r": first + i, "e": int(r.entry_id), "c": r.customer_id, "cfg": int(r.config_id),
                  "v": int(r.config_version), "s": int(r.stage_no), "d": day, "o": outcome}
                 for i, r in enumerate(frame.itertuples())])
            refresh_stage_results(conn, entry_ids=[int(e) for e in frame["entry_id"]])
    return sorted(zip(frame["document_number"], frame["stage_no"].astype(int), strict=True))


@pytest.fixture
def books(store_on_each_engine: Store) -> Store:
    store = store_on_each_engine
    setup_people(store)
    save_policy(store, SYSTEM, _policy())  # config 1, v1
    add_customer(store, "C1")
    return store


# -- the rules of the run -----------------------------------------------------------------------------------

def test_due_today_is_not_overdue_and_thresholds_are_inclusive(books: Store) -> None:
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=30), D0, 100)
    assert _due(books, D0) == []  # due today: days past due 0, the +1 stage waits
    assert _due(books, D0 + timedelta(days=1)) == [("INV-1", 1)]
    assert _record(books, D0 + timedelta(days=1)) == [("INV-1", 1)]
    assert _due(books, D0 + timedelta(days=14)) == []  # stage 2 at due + 15: not on day 14
    assert _due(books, D0 + timedelta(days=15)) == [("INV-1", 2)]  # inclusive


def test_one_stage_per_run_and_a_same_day_run_sends_nothing_new(books: Store) -> None:
    add_invoice(books, "C1", "INV-OLD", D0 - timedelta(days=90), D0 - timedelta(days=60), 500)
    assert _record(books, D0) == [("INV-OLD", 1)]  # 60 days late: still starts at stage 1
    assert _due(books, D0) == []  # the same day again: nothing new
    assert _record(books, D0 + timedelta(days=1)) == [("INV-OLD", 2)]  # one stage per run
    assert _due(books, D0 + timedelta(days=1)) == []
    assert _record(books, D0 + timedelta(days=2)) == [("INV-OLD", 3)]
    assert _due(books, D0 + timedelta(days=3)) == []  # exhausted


def test_only_from_a_stage_that_was_sent(books: Store) -> None:
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=60), D0 - timedelta(days=20), 100)
    assert _record(books, D0, outcome="failed") == [("INV-1", 1)]
    assert _due(books, D0 + timedelta(days=1)) == [("INV-1", 1)]  # a failed stage 1 is tried again
    _record(books, D0 + timedelta(days=1), outcome="skipped")
    assert _due(books, D0 + timedelta(days=2)) == [("INV-1", 1)]  # skipped is not sent either
    _record(books, D0 + timedelta(days=2))
    assert _due(books, D0 + timedelta(days=3)) == [("INV-1", 2)]


def test_grace_days_end_of_month_and_previous_sent_bases(books: Store) -> None:
    stages = (Stage(1, "Month end", 5, (Channel("email", "reminder_friendly"),), basis="end_of_month"),
              Stage(2, "A week after", 7, (Channel("email", "reminder_firm"),), basis="previous_sent"))
    save_policy(books, SYSTEM, _policy(stages=stages, grace_days=2))  # v1 had no runs: edited in place
    add_invoice(books, "C1", "INV-1", date(2026, 2, 1), date(2026, 3, 3), 100)
    # end of March + 5 + 2 grace = 7 April
    assert _due(books, date(2026, 4, 6)) == []
    assert _record(books, date(2026, 4, 7)) == [("INV-1", 1)]
    # previous stage sent 7 April + 7 (no grace on a stage counted from the previous message) = 14 April
    assert _due(books, date(2026, 4, 13)) == []
    assert _due(books, date(2026, 4, 14)) == [("INV-1", 2)]


def test_min_days_between_two_messages_to_one_customer(books: Store) -> None:
    save_policy(books, SYSTEM, _policy(min_days_between=3))
    add_invoice(books, "C1", "INV-A", D0 - timedelta(days=31), D0 - timedelta(days=1), 100)
    add_invoice(books, "C1", "INV-B", D0 - timedelta(days=30), D0, 100)
    assert _record(books, D0) == [("INV-A", 1)]
    assert _due(books, D0 + timedelta(days=1)) == []  # INV-B reached stage 1, but C1 heard from us yesterday
    assert _due(books, D0 + timedelta(days=2)) == []
    assert _due(books, D0 + timedelta(days=3)) == [("INV-B", 1)]


def test_counters_reset_when_the_customers_policy_changes(books: Store) -> None:
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=60), D0 - timedelta(days=30), 100)
    _record(books, D0)
    _record(books, D0 + timedelta(days=1))
    assert _due(books, D0 + timedelta(days=2)) == [("INV-1", 3)]
    other = save_policy(books, SYSTEM, _policy("Strict"))
    with books.write() as conn:
        conn.execute(sa.text("UPDATE customers SET dunning_config_id = :c WHERE customer_id = 'C1'"),
                     {"c": other["config_id"]})
    assert _due(books, D0 + timedelta(days=2)) == [("INV-1", 1)]  # stages of the other policy do not count
    frame = due_stages(books, D0 + timedelta(days=2))
    assert frame["config_id"].tolist() == [other["config_id"]]


def test_a_retired_policy_duns_nobody(books: Store) -> None:
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=60), D0 - timedelta(days=30), 100)
    assert retire_policy(books, ANALYST, "Standard")["customers"] == 1
    assert _due(books, D0) == []
    assert books.scalar("SELECT actor FROM audit_log WHERE action = 'dunning_policy.retire'") == "ana.lyst"
    assert list_policies(books)["state"].tolist() == ["retired"]
    with pytest.raises(DunningPolicyError, match="already retired"):
        retire_policy(books, ANALYST, "Standard")


# -- versions, roles, audit ------------------------------------------------------------------------------------

def test_a_version_that_sent_is_immutable_and_runs_record_their_version(books: Store) -> None:
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=60), D0 - timedelta(days=30), 100)
    edited = save_policy(books, ANALYST, _policy(grace_days=1), reason="one day of grace")
    assert edited == {"config_id": 1, "version": 1, "action": "edited"}  # nothing sent yet: in place
    assert save_policy(books, ANALYST, _policy(grace_days=1)) == {"config_id": 1, "version": 1, "action": "unchanged"}
    _record(books, D0)
    with books.write() as conn, pytest.raises(ImmutableVersionError, match="has sent stages"):
        replace_version(conn, ANALYST, _policy(grace_days=5), 1, 1)
    assert save_policy(books, ANALYST, _policy(grace_days=5)) == {"config_id": 1, "version": 2, "action": "new version"}
    assert load_policy(books, "Standard", 1).grace_days == 1  # v1 as it was sent
    assert load_policy(books, "Standard").grace_days == 5
    assert due_stages(books, D0 + timedelta(days=1))[["stage_no", "config_version"]].to_dict("records") == [
        {"stage_no": 2, "config_version": 2}]  # the counters carry over within one policy
    _record(books, D0 + timedelta(days=1))
    versions = books.read("SELECT stage_no, config_version FROM dunning_runs ORDER BY stage_no")
    assert versions.to_dict("records") == [{"stage_no": 1, "config_version": 1}, {"stage_no": 2, "config_version": 2}]
    audit = books.read("SELECT action, actor, detail FROM audit_log WHERE entity = 'dunning_config' ORDER BY audit_id")
    assert audit.to_dict("records")[-2:] == [
        {"action": "dunning_policy.edit", "actor": "ana.lyst", "detail": "one day of grace"},
        {"action": "dunning_policy.edit", "actor": "ana.lyst", "detail": "new version"}]


def test_every_write_needs_edit_dunning(books: Store) -> None:
    collector = Actor("ana.collector", "collector")
    before = books.scalar("SELECT COUNT(*) FROM audit_log")
    for write in (lambda: save_policy(books, collector, _policy("Other")),
                  lambda: clone_policy(books, collector, "Standard", "Copy"),
                  lambda: retire_policy(books, collector, "Standard"),
                  lambda: apply_policies(books, collector, [_policy("Other")])):
        with pytest.raises(PermissionDenied):
            write()
    assert books.scalar("SELECT COUNT(*) FROM dunning_configs") == 1
    assert books.scalar("SELECT COUNT(*) FROM audit_log") == before


def test_clone_channels_fees_and_bad_input_in_words(books: Store) -> None:
    copy = clone_policy(books, ANALYST, "Standard", "Standard B")
    assert copy["version"] == 1 and copy["config_id"] != 1
    assert books.read("SELECT actor, detail FROM audit_log WHERE action = 'dunning_policy.create' AND entity_id = :c",
                      {"c": str(copy["config_id"])}).to_dict("records") == [
        {"actor": "ana.lyst", "detail": "cloned from Standard v1"}]
    cloned = load_policy(books, "Standard B")
    assert [c.channel for c in cloned.stages[1].channels] == ["email", "letter"]
    assert books.read("SELECT channel, template FROM dunning_stages WHERE config_id = :c AND stage_no = 2",
                      {"c": copy["config_id"]}).to_dict("records") == [
        {"channel": "email", "template": "reminder_firm"}]  # the email channel is the one the run sends
    with pytest.raises(DunningPolicyError, match="already exists"):
        clone_policy(books, ANALYST, "Standard", "Standard B")
    bad = [(_policy(stages=(Stage(1, "X", 1, (Channel("fax"),)),)), "channel 'fax' is not one of"),
           (_policy(stages=(Stage(1, "X", 1, (Channel("email"),)),)), "an automatic email needs a template"),
           (_policy(stages=(Stage(2, "X", 1, (Channel("letter"),)),)), "numbered 1, 2, 3"),
           (_policy(end_action={"kind": "status", "status": "cheerful"}), "end_action status 'cheerful'"),
           (_policy(interest_rate=Decimal("10")), "between 0 and 1")]
    for policy, words in bad:
        with pytest.raises(DunningPolicyError, match=words):
            save_policy(books, ANALYST, policy)
    fee = _policy(stages=(Stage(1, "Fee", 1, (Channel("letter"),), fee=Decimal("10.00")),),
                  interest_rate=Decimal("0.1"), book_fees=True)
    save_policy(books, ANALYST, fee)
    stored = load_policy(books, "Standard")
    assert (stored.stages[0].fee, stored.interest_rate, stored.book_fees) == (Decimal("10.00"), Decimal("0.1"), True)


def test_toml_round_trip_and_apply(books: Store) -> None:
    save_policy(books, SYSTEM, _policy(end_action={"kind": "task", "assignee": "ana.collector", "note": "Call \"now\""},
                                       interest_rate=Decimal("0.08")))
    text = export_policies(books)
    [back] = policies_from_toml(text)
    assert back.content() == load_policy(books, "Standard").content()
    changed = text.replace("grace_days = 0", "grace_days = 3") + (
        '\n[[policy]]\nname = "Gentle"\n\n[[policy.stage]]\nname = "Nudge"\nday_offset = -3\n'
        'channels = [{ channel = "email", template = "reminder_friendly" }]\n')
    dry = apply_policies(books, ANALYST, policies_from_toml(changed), dry_run=True)
    assert dry.to_dict("records") == [{"name": "Standard", "action": "edited", "version": 1},
                                      {"name": "Gentle", "action": "created", "version": 1}]
    assert books.scalar("SELECT COUNT(*) FROM dunning_configs") == 1  # a dry run writes nothing
    done = apply_policies(books, ANALYST, policies_from_toml(changed))
    assert done["action"].tolist() == ["edited", "created"]
    assert load_policy(books, "Standard").grace_days == 3
    assert list_policies(books)["name"].tolist() == ["Gentle", "Standard"]
    for text, words in (('[[policy]]\nname = "X"\ncolour = 1\n', "unknown key"),
                        ('[[policy]]\nname = "X"\n[[policy.stage]]\nname = "S"\nday_offset = 1\nbasis = "weekly"\n'
                         'channels = [{ channel = "letter" }]\n', "stage 1: basis 'weekly'"),
                        ("policy = 3", "must hold")):
        with pytest.raises(DunningPolicyError, match=words):
            policies_from_toml(text)


# -- exhausted queue and end action -----------------------------------------------------------------------------

def test_exhausted_customers_get_the_end_action_once(books: Store) -> None:
    save_policy(books, SYSTEM, _policy(end_action={"kind": "status", "status": "escalated"}))
    add_customer(books, "C2")
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=60), D0 - timedelta(days=30), 100)
    add_invoice(books, "C2", "INV-2", D0 - timedelta(days=60), D0 - timedelta(days=30), 250)
    for n in range(3):
        _record(books, D0 + timedelta(days=n))
    _record(books, D0 + timedelta(days=3))  # nothing: all exhausted
    add_payment(books, "C2", "PAY-2", D0 + timedelta(days=4), 250, invoice_id=2)
    queue = exhausted_customers(books, D0 + timedelta(days=5))
    assert queue[["customer_id", "policy", "invoices", "open_amount", "end_action_done"]].to_dict("records") == [
        {"customer_id": "C1", "policy": "Standard", "invoices": 1, "open_amount": 100.0, "end_action_done": False}]
    assert exhausted_customers(books, D0 + timedelta(days=1)).empty  # before the last stage went
    done = run_end_actions(books, SYSTEM, D0 + timedelta(days=5))
    assert done[["customer_id", "kind"]].to_dict("records") == [{"customer_id": "C1", "kind": "status"}]
    assert books.scalar("SELECT status FROM customers WHERE customer_id = 'C1'") == "escalated"
    assert run_end_actions(books, SYSTEM, D0 + timedelta(days=6)).empty  # once
    assert exhausted_customers(books, D0 + timedelta(days=6))["end_action_done"].tolist() == [True]
    assert books.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'dunning.end_action'") == 1


def test_agency_hand_off_only_above_amount_and_age(books: Store) -> None:
    action = {"kind": "agency", "agency": "Acme Recovery", "min_amount": 150, "min_days": 30}
    save_policy(books, SYSTEM, _policy(end_action=action))
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=60), D0 - timedelta(days=30), 100)
    for n in range(3):
        _record(books, D0 + timedelta(days=n))
    assert run_end_actions(books, SYSTEM, D0 + timedelta(days=3)).empty  # 100 < 150
    add_invoice(books, "C1", "INV-1b", D0 - timedelta(days=60), D0 - timedelta(days=30), 100)
    for n in range(3, 6):
        _record(books, D0 + timedelta(days=n))
    done = run_end_actions(books, SYSTEM, D0 + timedelta(days=6))
    assert done["detail"].tolist() == ["status active -> with_agency (Acme Recovery)"]
    assert books.read("SELECT kind, target FROM activities").to_dict("records") == [
        {"kind": "escalation", "target": "Acme Recovery"}]


# -- simulation --------------------------------------------------------------------------------------------------

def test_simulation_counts_messages_customers_and_open_ar_by_day_and_stage(books: Store) -> None:
    add_customer(books, "C2")
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=30), D0, 100)
    add_invoice(books, "C2", "INV-2", D0 - timedelta(days=30), D0, 40)
    add_invoice(books, "C2", "INV-3", D0 - timedelta(days=29), D0 + timedelta(days=1), 60)
    add_payment(books, "C2", "PAY", D0 + timedelta(days=5), 40, invoice_id=2)
    result = simulate_policy(books, load_policy(books, "Standard"), D0, D0 + timedelta(days=16))
    assert result.to_dict("records") == [
        {"day": D0 + timedelta(days=1), "stage_no": 1, "stage_name": "Friendly", "channels": "email",
         "mode": "automatic", "messages": 2, "customers": 2, "invoices": 2, "open_ar": 140.0},
        {"day": D0 + timedelta(days=2), "stage_no": 1, "stage_name": "Friendly", "channels": "email",
         "mode": "automatic", "messages": 1, "customers": 1, "invoices": 1, "open_ar": 60.0},
        # INV-2 was paid on day 5: only INV-1 gets the firm reminder, by email and letter
        {"day": D0 + timedelta(days=15), "stage_no": 2, "stage_name": "Firm", "channels": "email, letter",
         "mode": "automatic", "messages": 2, "customers": 1, "invoices": 1, "open_ar": 100.0},
        {"day": D0 + timedelta(days=16), "stage_no": 2, "stage_name": "Firm", "channels": "email, letter",
         "mode": "automatic", "messages": 2, "customers": 1, "invoices": 1, "open_ar": 60.0}]
    assert books.scalar("SELECT COUNT(*) FROM dunning_runs") == 0  # a dry run


def test_simulation_agrees_with_the_run_day_by_day(books: Store) -> None:
    policy = _policy(min_days_between=2, grace_days=1, stages=(
        Stage(1, "Early", -2, (Channel("email", "reminder_friendly"),)),
        Stage(2, "Month end", 3, (Channel("email", "reminder_firm"),), basis="end_of_month"),
        Stage(3, "Follow-up", 4, (Channel("letter"),), basis="previous_sent")))
    save_policy(books, SYSTEM, policy)
    add_customer(books, "C2")
    for k in range(6):
        add_invoice(books, "C1" if k % 2 else "C2", f"INV-{k}", D0 - timedelta(days=40 - 5 * k),
                    D0 - timedelta(days=10 - 5 * k), 10 * (k + 1))
    add_payment(books, "C1", "PAY", D0 + timedelta(days=12), 20, invoice_id=2)
    start, end = D0 - timedelta(days=3), D0 + timedelta(days=40)
    simulated = simulate_policy(books, load_policy(books, "Standard"), start, end)
    expected, day = [], start
    while day <= end:
        for _doc, stage in _record(books, day):
            expected.append((day, stage))
        day += timedelta(days=1)
    got = [(r.day, int(r.stage_no)) for r in simulated.itertuples() for _ in range(int(r.invoices))]
    assert sorted(got) == sorted(expected) and len(expected) >= 12


def test_a_back_dated_run_records_its_date(books: Store, smtp) -> None:
    from analytics.collections.automatic_dunning import run_automatic_dunning

    handler, config = smtp
    add_invoice(books, "C1", "INV-1", D0 - timedelta(days=60), D0 - timedelta(days=20), 100)
    run_automatic_dunning(books, SYSTEM, D0, config=config)
    runs = books.read("SELECT stage_no, run_date FROM dunning_runs")
    assert [(int(r.stage_no), pd.Timestamp(r.run_date).date()) for r in runs.itertuples()] == [
        (1, D0)]  # D, not the machine's date
    assert _due(books, D0) == [] and _due(books, D0 + timedelta(days=1)) == [("INV-1", 2)]
    assert json.loads(books.scalar("SELECT new_values FROM audit_log WHERE action = 'dunning.run'"))["counts"] == {
        "sent": 1}
    assert len(handler.messages) == 1


def test_policy_content_ignores_ids() -> None:
    a = _policy()
    assert replace(a, config_id=3, version=9).content() == a.content()
