"""The worklist converges: acting on each reason clears its item, a logged dispute waits with its
department, tasks show before their day and stale items are grouped apart, ranks and bands, the walk."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.collections.contacts import add_contact
from analytics.collections.followups import (
    add_note,
    add_task,
    complete_task,
    log_call,
    open_dispute,
    promise_to_pay,
)
from analytics.collections.worklist import _ranked, next_customer, worklist
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people

T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")


def _books(store: Store) -> Store:
    """A: 1000 10 days late (dunning stage 1); B: 2000 20 days late (stage 2); C: 300 3 days late, no AP
    contact; D: a task due today; F: 400 40 days late, under a whole-account billing dispute opened 20 days
    ago and never answered (answer due opened + 7 days)."""
    setup_people(store)
    add_dunning_config(store)
    for cid, contact in (("A", "ap"), ("B", "ap"), ("C", None), ("D", "ap"), ("F", "ap")):
        add_customer(store, cid, contact=contact)
    add_invoice(store, "A", "INV-A", T - timedelta(days=40), T - timedelta(days=10), 1000)
    add_invoice(store, "B", "INV-B", T - timedelta(days=50), T - timedelta(days=20), 2000)
    add_invoice(store, "C", "INV-C", T - timedelta(days=33), T - timedelta(days=3), 300)
    add_invoice(store, "F", "INV-F", T - timedelta(days=70), T - timedelta(days=40), 400)
    add_task(store, ANA, "D", "Confirm new billing address", T)
    with store.write() as conn:  # an imported dispute
        conn.execute(sa.text(
            "INSERT INTO activities (customer_id, kind, occurred_at, author, department, reason, amount, status) "
            "VALUES ('F', 'dispute', :opened, 'ana.collector', 'billing', 'Wrong price', 400, 'open')"),
            {"opened": datetime.combine(T - timedelta(days=20), datetime.min.time())})
    return store


def _pairs(store: Store, as_of: date = T) -> list[tuple[str, str]]:
    items = worklist(store, as_of, "ana.collector")
    return list(zip(items["customer_id"], items["reason"], strict=True))


def test_acting_on_each_reason_clears_its_item(store_on_each_engine: Store) -> None:
    books = _books(store_on_each_engine)
    promise_to_pay(books, ANA, "A", 1000, T)  # due today: a reason of its own (the promise itself acted on A)
    with books.write() as conn:  # B promised 500 five days ago for two days ago: broken
        conn.execute(sa.text(
            "INSERT INTO activities (customer_id, kind, occurred_at, author, amount, due_date, status) "
            "VALUES ('B', 'promise', :made, 'ana.collector', 500, :due, 'pending')"),
            {"made": datetime.now() - timedelta(days=5), "due": T - timedelta(days=2)})
    before = _pairs(books)
    assert sorted(before) == sorted([
        ("A", "promise_due_today"), ("B", "broken_promise"), ("C", "dunning_stage"), ("C", "newly_past_due"),
        ("C", "no_ap_contact"), ("D", "task_due"), ("F", "dispute_waiting")])
    # no dunning item for A and B: the promises are actions logged after their stages arose
    log_call(books, ANA, "A", "reached", "Paying tonight")
    log_call(books, ANA, "B", "reached", "New date agreed")
    log_call(books, ANA, "F", "reached", "Chased billing for the answer")
    add_note(books, ANA, "C", "Owner says an AP clerk starts Monday")
    log_call(books, ANA, "D", "reached")  # a call does not do a task
    assert sorted(_pairs(books)) == [("C", "no_ap_contact"), ("D", "task_due")]
    add_contact(books, ANA, "C", name="Pat AP", email="ap@c.example", role="accounts_payable")
    complete_task(books, ANA, int(books.scalar("SELECT activity_id FROM activities WHERE kind = 'task'")))
    assert _pairs(books) == []


def test_a_logged_dispute_waits_with_its_department_until_its_answer_is_overdue(store_on_each_engine: Store) -> None:
    books = _books(store_on_each_engine)
    assert _pairs(books)[0] == ("B", "dunning_stage")  # the top item: 2000 × 20 days
    open_dispute(books, ANA, "B", "Goods damaged", 2000, "logistics", whole_account=True, answer_due=T + timedelta(days=5))
    mine = worklist(books, T, "ana.collector")
    assert "B" not in set(mine["customer_id"])  # the dispute acted on B and is not the collector's item
    assert ("B", "dispute_waiting") not in _pairs(books, T + timedelta(days=5))  # due that day: not overdue
    late = worklist(books, T + timedelta(days=6), "ana.collector")
    row = late[(late.customer_id == "B") & (late.reason == "dispute_waiting")].iloc[0]
    assert row["detail"] == (f"Dispute with logistics since {T}, answer was due {T + timedelta(days=5)}: "
                             "Goods damaged")
    assert row["since"] == pd.Timestamp(T + timedelta(days=6))
    # with no answer date, the department's standard applies (logistics: 10 days)
    open_dispute(books, ANA, "A", "Short shipment", 100, "logistics", whole_account=True)
    assert ("A", "dispute_waiting") not in _pairs(books, T + timedelta(days=10))
    assert ("A", "dispute_waiting") in _pairs(books, T + timedelta(days=11))


def test_tasks_show_before_their_day_and_old_items_are_grouped_apart(store: Store) -> None:
    books = _books(store)
    add_task(books, ANA, "A", "Send the signed contract", T + timedelta(days=3))
    add_task(books, ANA, "A", "Call in a month", T + timedelta(days=30))  # beyond the week: not shown yet
    with books.write() as conn:  # a task due two years ago, never done
        conn.execute(sa.text(
            "INSERT INTO activities (customer_id, kind, occurred_at, author, subject, due_date, assignee, status) "
            "VALUES ('B', 'task', :made, 'ana.collector', 'Old follow-up', :due, 'ana.collector', 'open')"),
            {"made": datetime.now() - timedelta(days=740), "due": T - timedelta(days=730)})
    items = worklist(books, T, "ana.collector")
    tasks = items[items.reason == "task_due"]
    assert tasks[["customer_id", "group"]].values.tolist() == [["D", "now"], ["A", "upcoming"], ["B", "stale"]]
    assert items["group"].tolist() == sorted(items["group"], key=["now", "upcoming", "stale"].index)
    assert items[items.group != "now"]["rank"].isna().all()
    assert items[items.group == "now"]["rank"].tolist() == list(range(1, 8))


def test_bands_split_the_ranked_priority_mass() -> None:
    frame = pd.DataFrame({"priority": [40.0, 30.0, 20.0, 10.0, 0.0], "customer_id": list("VWXYZ"),
                          "reason": ["dunning_stage"] * 5, "since": [pd.Timestamp(T)] * 5})
    # mass above each: 0, 40 %, 70 %, 90 %, 100 %: High below 50 %, Medium below 80 %, else Low; 0 is Low
    assert _ranked(frame, T)["band"].tolist() == ["High", "High", "Medium", "Low", "Low"]
    assert _ranked(frame.assign(priority=0.0), T)["band"].tolist() == ["Low"] * 5


def test_next_item_walks_the_list_without_going_back(store: Store) -> None:
    books = _books(store)
    order = list(dict.fromkeys(worklist(books, T, "ana.collector")["customer_id"]))
    assert order == ["B", "F", "A", "C", "D"]  # 2000 × 20, 400 × 40, 1000 × 10, 300 × 3, a task (0)
    assert next_customer(books, T, "ana.collector", ["B"]) == "F"
    log_call(books, ANA, "F", "reached")  # worked: recomputed, F has left the list
    assert next_customer(books, T, "ana.collector", ["B"]) == "A"
    assert next_customer(books, T, "ana.collector", ["B", "A", "C", "D"]) is None
