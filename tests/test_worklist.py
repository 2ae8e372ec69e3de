"""The worklist: reasons, hand-computed priority ranking, leaving when acted on or snoozed, emptiness."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.collections.bulk_selection import select_customers
from analytics.collections.followups import (
    add_note,
    add_task,
    complete_task,
    log_call,
    promise_to_pay,
    snooze,
)
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.delivery import send_now
from analytics.collections.worklist import WORKLIST_COLUMNS, unassigned_note, unassigned_past_due, worklist
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, add_payment, setup_people

T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")
SHOWN = ["customer_id", "reason", "amount_at_risk", "days_factor", "history_factor", "priority"]


@pytest.fixture
def books(store: Store) -> Store:
    """A: 1000 10 days late; B: 2000 20 days late, paid its last invoice 30 days late; C: 300 3 days late and
    no AP contact; D: only a task due today; E (Ben's): 5000 50 days late."""
    setup_people(store)
    add_dunning_config(store)
    for cid, collector, contact in (("A", "ana.collector", "ap"), ("B", "ana.collector", "ap"),
                                    ("C", "ana.collector", None), ("D", "ana.collector", "ap"),
                                    ("E", "ben.collector", "other")):
        add_customer(store, cid, collector=collector, contact=contact)
    add_invoice(store, "A", "INV-A", T - timedelta(days=40), T - timedelta(days=10), 1000)
    old = add_invoice(store, "B", "INV-B0", T - timedelta(days=130), T - timedelta(days=100), 500)
    add_payment(store, "B", "PAY-B0", T - timedelta(days=70), 500, invoice_id=old)
    add_invoice(store, "B", "INV-B", T - timedelta(days=50), T - timedelta(days=20), 2000)
    add_invoice(store, "C", "INV-C", T - timedelta(days=33), T - timedelta(days=3), 300)
    add_invoice(store, "E", "INV-E", T - timedelta(days=80), T - timedelta(days=50), 5000)
    add_task(store, ANA, "D", "Confirm new billing address", T)
    return store


def _shown(frame) -> list[dict]:
    return frame[SHOWN].to_dict("records")


def test_ranking_is_amount_times_days_times_history(books: Store) -> None:
    assert _shown(worklist(books, T, "ana.collector")) == [
        {"customer_id": "B", "reason": "dunning_stage", "amount_at_risk": 2000.0, "days_factor": 20,
         "history_factor": 2.0, "priority": 80000.0},
        {"customer_id": "A", "reason": "dunning_stage", "amount_at_risk": 1000.0, "days_factor": 10,
         "history_factor": 1.0, "priority": 10000.0},
        {"customer_id": "C", "reason": "dunning_stage", "amount_at_risk": 300.0, "days_factor": 3,
         "history_factor": 1.0, "priority": 900.0},
        {"customer_id": "C", "reason": "newly_past_due", "amount_at_risk": 300.0, "days_factor": 3,
         "history_factor": 1.0, "priority": 900.0},
        {"customer_id": "C", "reason": "no_ap_contact", "amount_at_risk": 300.0, "days_factor": 3,
         "history_factor": 1.0, "priority": 900.0},
        {"customer_id": "D", "reason": "task_due", "amount_at_risk": 0.0, "days_factor": 1,
         "history_factor": 1.0, "priority": 0.0},
    ]


def test_team_view_includes_every_collector_and_the_next_stage(books: Store) -> None:  # E starts at stage 1
    team = worklist(books, T)
    assert team["customer_id"].tolist() == ["E", "E", "B", "A", "C", "C", "C", "D"]
    assert team.loc[0, "collector"] == "ben.collector"
    assert team[team.customer_id == "E"][["reason", "detail", "template"]].fillna("(none)").to_dict("records") == [
        {"reason": "dunning_stage",
         "detail": "1 invoice(s) due for stage 1 Friendly reminder (email, template reminder_friendly)",
         "template": "reminder_friendly"},
        {"reason": "no_ap_contact", "detail": "No active accounts-payable contact with an email or phone",
         "template": "(none)"},
    ]
    assert worklist(books, T, "ben.collector")["customer_id"].tolist() == ["E", "E"]


def test_items_leave_when_acted_on_or_snoozed_and_the_list_ends_empty(books: Store, tmp_path) -> None:
    log_call(books, ANA, "A", "left voicemail")
    snooze(books, ANA, "C", T + timedelta(days=5), "AP contact being hired", item="no_ap_contact")
    task = int(books.scalar("SELECT activity_id FROM activities WHERE kind = 'task'"))
    complete_task(books, ANA, task)
    assert worklist(books, T, "ana.collector")[["customer_id", "reason"]].to_dict("records") == [
        {"customer_id": "B", "reason": "dunning_stage"}, {"customer_id": "C", "reason": "dunning_stage"},
        {"customer_id": "C", "reason": "newly_past_due"}]
    sent = send_now(books, ANA, ["B"], "reminder_friendly", action_key="wl-1", as_of=T,
                    config=OutreachConfig(mode="outbox", outbox_dir=tmp_path / "outbox"))
    assert sent["status"].tolist() == ["sent"]
    assert int(books.scalar("SELECT stage_no FROM dunning_runs WHERE customer_id = 'B'")) == 1
    add_note(books, ANA, "C", "Spoke to the owner; AP person starts next week")
    empty = worklist(books, T, "ana.collector")
    assert empty.empty and list(empty.columns) == WORKLIST_COLUMNS
    # the snooze ends on its date: the contact problem comes back
    assert worklist(books, T + timedelta(days=5), "ana.collector")[["customer_id", "reason"]].to_dict("records")[-1] == {
        "customer_id": "C", "reason": "no_ap_contact"}


def test_promises_due_today_and_broken_promises_are_items(books: Store) -> None:
    promise_to_pay(books, ANA, "A", 1000, T, entry_id=1)
    with books.write() as conn:  # a promise made ten days ago for two days ago, still pending
        conn.execute(sa.text(
            "INSERT INTO activities (customer_id, kind, occurred_at, author, amount, due_date, status) "
            "VALUES ('C', 'promise', :made, 'ana.collector', 300, :due, 'pending')"),
            {"made": datetime.now() - timedelta(days=10), "due": T - timedelta(days=2)})
    items = worklist(books, T, "ana.collector")
    assert items[items.reason.str.contains("promise")][["customer_id", "reason", "detail"]].to_dict("records") == [
        {"customer_id": "A", "reason": "promise_due_today", "detail": "Promise to pay 1000.00 due today"},
        {"customer_id": "C", "reason": "broken_promise",
         "detail": f"Promise to pay 300.00 by {T - timedelta(days=2)} was broken"}]
    assert books.scalar("SELECT status FROM activities WHERE customer_id = 'C' AND kind = 'promise'") == "broken"
    log_call(books, ANA, "C", "reached", "New date agreed")
    log_call(books, ANA, "A", "reached", "Payment run is tonight")
    after = worklist(books, T, "ana.collector")
    assert not after.reason.str.contains("promise").any()


def test_an_empty_store_has_an_empty_worklist(store: Store) -> None:
    frame = worklist(store, T)
    assert frame.empty and list(frame.columns) == WORKLIST_COLUMNS


def test_bulk_selection_filters_by_exact_days_past_due_and_amount(books: Store) -> None:
    exactly_3 = select_customers(books, T, days_past_due=(3, 3))
    assert exactly_3["customer_id"].tolist() == ["C"]
    big = select_customers(books, T, min_overdue=1500, collector="ana.collector")
    assert big[["customer_id", "overdue_ar", "max_days_past_due"]].to_dict("records") == [
        {"customer_id": "B", "overdue_ar": 2000.0, "max_days_past_due": 20}]
    log_call(books, ANA, "A", "reached")
    quiet = select_customers(books, T, not_contacted_days=7, statuses=["active"])
    assert quiet["customer_id"].tolist() == ["E", "B", "C"]


def test_cli_prints_the_worklist_and_says_when_it_is_empty(books: Store, capsys) -> None:
    from analytics.cli.main import main

    url = books.url
    assert main(["--db", url, "outreach", "worklist", "--collector", "ana.collector", "--as-of", T.isoformat(),
                 "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("priority,customer_id,customer_name,collector,reason,")
    assert [line.split(",")[1] for line in lines[1:]] == ["B", "A", "C", "C", "C", "D"]
    assert main(["--db", url, "outreach", "worklist", "--collector", "val.viewer"]) == 0
    assert capsys.readouterr().out == "The worklist is empty: you have done everything.\n"
    assert main(["--db", url, "outreach", "worklist", "--collector", "ghost"]) == 2
    assert "There is no user 'ghost'" in capsys.readouterr().err


def test_past_due_customers_nobody_collects_are_counted_and_told(books: Store, capsys) -> None:
    """F (no collector): 700 ten days and 50 five days past due; G: 900 not yet due; H: 300 past due, paid
    yesterday. No collector's list holds F, so every list says so (a blank list is not "all done")."""
    from analytics.cli.main import main

    assert unassigned_past_due(books, T) == {"customers": 0, "invoices": 0, "overdue_ar": 0.0}
    assert unassigned_note(unassigned_past_due(books, T), "USD") is None
    for cid in ("F", "G", "H"):
        add_customer(books, cid, collector=None)
    add_invoice(books, "F", "INV-F1", T - timedelta(days=40), T - timedelta(days=10), 700)
    add_invoice(books, "F", "INV-F2", T - timedelta(days=35), T - timedelta(days=5), 50)
    add_invoice(books, "G", "INV-G", T - timedelta(days=5), T + timedelta(days=25), 900)
    paid = add_invoice(books, "H", "INV-H", T - timedelta(days=40), T - timedelta(days=10), 300)
    add_payment(books, "H", "PAY-H", T - timedelta(days=1), 300, invoice_id=paid)

    assert unassigned_past_due(books, T) == {"customers": 1, "invoices": 2, "overdue_ar": 750.0}
    assert unassigned_past_due(books, T - timedelta(days=2)) == {"customers": 2, "invoices": 3, "overdue_ar": 1050.0}
    assert unassigned_past_due(books, T - timedelta(days=10))["customers"] == 0  # due that day: not yet past due
    assert not {"F", "H"} & set(worklist(books, T, "ana.collector")["customer_id"])
    assert {"F"} <= set(worklist(books, T)["customer_id"])  # the whole team's list holds it
    note = ("1 customer(s) with invoices past due (750.00 USD) have no collector, so no collector's list shows "
            "them: an admin assigns them on the Admin page (by segment, country or one by one) or with `ardesk "
            "collectors assign`, or import customers with a collector column.")
    assert unassigned_note(unassigned_past_due(books, T), "USD") == note
    assert main(["--db", books.url, "outreach", "worklist", "--collector", "val.viewer", "--as-of", T.isoformat()]) == 0
    assert capsys.readouterr().out == f"The worklist is empty: you have done everything.\n{note}\n"
    assert main(["--db", books.url, "outreach", "worklist", "--as-of", T.isoformat(), "--format", "csv"]) == 0
    printed = capsys.readouterr()
    assert note not in printed.out and printed.err == f"{note}\n"  # the CSV stays machine-readable


def test_demo_worklist_is_ranked_by_its_shown_parts_and_filtered_by_collector(demo_store: Store) -> None:
    from analytics.collections.worklist import REASON_LABELS, default_as_of

    as_of = default_as_of(demo_store)
    team = worklist(demo_store, as_of)
    mine = worklist(demo_store, as_of, "ana.collector")
    assert len(mine) > 0 and len(team) > len(mine)
    assert set(team["reason"]) <= set(REASON_LABELS)
    for _group, part in team.groupby("group"):
        assert part["priority"].is_monotonic_decreasing
    now = team[team.group == "now"]
    assert now["rank"].tolist() == list(range(1, len(now) + 1)) and team["group"].tolist() == sorted(
        team["group"], key=["now", "upcoming", "stale"].index)
    assert team[team.group != "now"]["rank"].isna().all()
    assert (team[team.group == "stale"]["since"] < pd.Timestamp(as_of - timedelta(days=90))).all()
    product = (team["amount_at_risk"] * team["days_factor"] * team["history_factor"] * team["risk_factor"]).round(0)
    assert (product == team["priority"]).all()
    owners = demo_store.read("SELECT customer_id, collector FROM customers")
    not_tasks = mine[mine.reason != "task_due"].merge(owners, on="customer_id", suffixes=("", "_owner"))
    assert set(not_tasks["collector_owner"]) == {"ana.collector"}


def test_collectors_cli_lists_assigns_once_and_refuses_a_non_admin(books: Store, capsys) -> None:
    """`ardesk collectors`: the Admin page's assignment from a script; audited; twice changes nothing."""
    from analytics.cli.main import main

    add_customer(books, "F", collector=None)
    add_invoice(books, "F", "INV-F", T - timedelta(days=40), T - timedelta(days=10), 700)
    db = ["--db", books.url]
    assert main([*db, "collectors", "list", "--as-of", T.isoformat(), "--format", "csv"]) == 0
    out = capsys.readouterr()
    assert pd.read_csv(io.StringIO(out.out)).set_index("username")["customers"].to_dict() == {
        "ana.collector": 4, "ben.collector": 1}
    assert out.err.startswith("1 customer(s) with invoices past due (700.00 USD) have no collector")

    assert main([*db, "collectors", "assign", "ben.collector", "--customer", "F", "--format", "csv"]) == 0
    assert "assign,ben.collector,1" in capsys.readouterr().out
    assert main([*db, "collectors", "assign", "ben.collector", "--customer", "F", "--format", "csv"]) == 0
    assert "assign,ben.collector,0" in capsys.readouterr().out  # already Ben's: nothing written twice
    assert unassigned_past_due(books, T)["customers"] == 0
    assert set(worklist(books, T, "ben.collector")["customer_id"]) >= {"F"}
    audit = books.read("SELECT actor, action, entity_id, new_values FROM audit_log WHERE action = 'customer.assign'")
    assert audit.to_dict("records") == [{"actor": "system", "action": "customer.assign", "entity_id": "F",
                                         "new_values": '{"collector": "ben.collector"}'}]

    assert main([*db, "collectors", "assign", "val.viewer", "--customer", "F"]) == 2  # not a collector
    assert "val.viewer is not an active collector" in capsys.readouterr().err
    assert main([*db, "collectors", "unassign"]) == 2
    assert "Choose customers, a segment or a country" in capsys.readouterr().err
    assert main([*db, "collectors", "unassign", "--customer", "F", "--as", "ana.collector"]) == 2  # admins only
    assert capsys.readouterr().err.startswith("ardesk: ")
    assert main([*db, "collectors", "unassign", "--customer", "F", "--format", "csv"]) == 0
    assert "assign,,1" in capsys.readouterr().out
    assert unassigned_past_due(books, T)["customers"] == 1


def test_an_assignment_queued_for_the_app_runs_once_and_a_non_admins_is_refused(books: Store, tmp_path,
                                                                                monkeypatch) -> None:
    """While the app owns the store, `ardesk collectors assign` is a signed inbox job its watcher runs."""
    import json

    from analytics.access.roles import SYSTEM
    from analytics.ingest.inbox import Folders, ingest_pending, stage_action

    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)  # the key file beside the inbox
    folders = Folders(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", tmp_path / "quarantine")
    add_customer(books, "F", collector=None)
    give_f = {"collector": "ben.collector", "customers": ["F"], "segment": None, "country": None}
    first = stage_action(folders.inbox, "assign", give_f, SYSTEM)
    assert stage_action(folders.inbox, "assign", give_f, SYSTEM) == first  # queued twice: one job
    refused = stage_action(folders.inbox, "assign", {**give_f, "collector": "ana.collector"}, ANA)
    ingest_pending(books, folders)
    [done] = folders.done.glob("*.result.json")
    assert json.loads(done.read_text()) == {"action": "assign", "collector": "ben.collector", "customers_changed": 1}
    assert [p.name for p in folders.failed.glob("*.job.json")] == [refused.name]  # a collector may not assign
    assert books.scalar("SELECT collector FROM customers WHERE customer_id = 'F'") == "ben.collector"
