"""Disputes and promises name their invoices; one hold rule for dunning and reminders; reminders list
only invoices past due; the bulk filter by an invoice's days past due; preview sendable == send."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.collections.bulk_selection import (
    STAGE_TEMPLATE,
    bulk_preview,
    bulk_send,
    select_customers,
    sendable,
)
from analytics.collections.customer_360 import customer_header
from analytics.collections.dunning_schedule import due_stages
from analytics.collections.followups import (
    FollowUpError,
    activity_invoice_ids,
    open_dispute,
    promise_to_pay,
    refresh_promise_statuses,
    resolve_dispute,
)
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.queue import preview
from analytics.collections.worklist import worklist
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, add_payment, setup_people

T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")


def _dpd(days: int) -> date:
    """The due date that is `days` past due on T."""
    return T - timedelta(days=days)


@pytest.fixture
def books(store_on_each_engine: Store) -> Store:
    """C1: INV-1A 20 days past due (1,000), INV-1B 5 days (400), INV-1C not due yet (250), a 100
    payment not applied. Standard stages: friendly at 1, firm at 15, final at 30 days."""
    store = store_on_each_engine
    setup_people(store)
    add_dunning_config(store)
    add_customer(store, "C1", name="Acme 1")
    add_invoice(store, "C1", "INV-1A", T - timedelta(days=50), _dpd(20), 1000)
    add_invoice(store, "C1", "INV-1B", T - timedelta(days=35), _dpd(5), 400)
    add_invoice(store, "C1", "INV-1C", T, T + timedelta(days=30), 250)
    add_payment(store, "C1", "PAY-1", T - timedelta(days=1), 100)  # on account
    return store


def _due(store: Store, as_of: date = T) -> list[tuple[str, int]]:
    due = due_stages(store, as_of)
    return sorted(zip(due["document_number"], due["stage_no"], strict=True))


def test_a_one_invoice_dispute_holds_only_that_invoice(books: Store) -> None:
    assert _due(books) == [("INV-1A", 1), ("INV-1B", 1)]
    dispute = open_dispute(books, ANA, "C1", "Damaged goods", None, "logistics", entry_ids=[1])
    assert activity_invoice_ids(books, dispute) == [1]
    # the amount defaults to the chosen invoice's open amount
    assert float(books.scalar("SELECT amount FROM activities WHERE activity_id = :a", {"a": dispute})) == 1000.0
    assert _due(books) == [("INV-1B", 1)]  # the other invoice continues
    [draft] = preview(books, ["C1"], "reminder_friendly", T)
    assert "INV-1B" in draft.body and "INV-1A" not in draft.body
    resolve_dispute(books, ANA, dispute, "rejected")
    assert _due(books) == [("INV-1A", 1), ("INV-1B", 1)]


def test_a_dispute_needs_invoices_or_an_explicit_whole_account(books: Store) -> None:
    before = int(books.scalar("SELECT COUNT(*) FROM activities"))
    with pytest.raises(FollowUpError, match="invoices: none chosen"):
        open_dispute(books, ANA, "C1", "Wrong price", 1200, "sales")
    with pytest.raises(FollowUpError, match="a whole-account dispute names no invoices"):
        open_dispute(books, ANA, "C1", "Wrong price", 1200, "sales", entry_ids=[1], whole_account=True)
    assert int(books.scalar("SELECT COUNT(*) FROM activities")) == before
    two = open_dispute(books, ANA, "C1", "Wrong price", None, "sales", entry_ids=[1, 2])
    assert activity_invoice_ids(books, two) == [1, 2]
    assert float(books.scalar("SELECT amount FROM activities WHERE activity_id = :a", {"a": two})) == 1400.0
    assert _due(books) == []
    resolve_dispute(books, ANA, two, "resolved")
    open_dispute(books, ANA, "C1", "Everything", 1200, "sales", whole_account=True)
    assert _due(books) == []
    [draft] = preview(books, ["C1"], "reminder_firm", T)
    assert draft.problem == "no invoices past due (open, not disputed, not paused by a promise)"


def test_a_promise_pauses_its_invoice_until_the_date_and_a_broken_one_resumes_at_once(books: Store) -> None:
    promise = promise_to_pay(books, ANA, "C1", 500, T + timedelta(days=3), entry_ids=[1])
    assert _due(books) == [("INV-1B", 1)]  # paused: INV-1A's stage 1 waits
    assert _due(books, T + timedelta(days=3)) == [("INV-1B", 1)]  # still paused on the promised date
    # the promised date + 1 day: unpaid, so broken, and dunning resumes at once (before the status is refreshed too)
    assert _due(books, T + timedelta(days=4)) == [("INV-1A", 1), ("INV-1B", 1)]
    refresh_promise_statuses(books, T + timedelta(days=4))
    assert books.scalar("SELECT status FROM activities WHERE activity_id = :a", {"a": promise}) == "broken"
    assert _due(books, T + timedelta(days=4)) == [("INV-1A", 1), ("INV-1B", 1)]
    items = worklist(books, T + timedelta(days=4), "ana.collector")
    assert "broken_promise" in set(items["reason"])  # the broken promise enters the worklist at once
    assert _due(books, T + timedelta(days=2)) == [("INV-1B", 1)]  # the past still reproduces: paused then


def test_a_promise_without_the_pause_and_a_whole_account_promise(books: Store) -> None:
    promise_to_pay(books, ANA, "C1", 500, T + timedelta(days=3), entry_ids=[1], pauses_dunning=False)
    assert _due(books) == [("INV-1A", 1), ("INV-1B", 1)]
    with pytest.raises(FollowUpError, match="amount: required for a promise about the whole account"):
        promise_to_pay(books, ANA, "C1", None, T + timedelta(days=3))
    promise_to_pay(books, ANA, "C1", 900, T + timedelta(days=3))  # names no invoice: the account
    assert _due(books) == []


def test_a_reminder_lists_only_invoices_past_due_and_explains_the_balance(books: Store) -> None:
    head = customer_header(books, "C1", T)
    assert (head["balance"], head["open_invoices_amount"], head["unapplied"]) == (1550.0, 1650.0, 100.0)
    [firm] = preview(books, ["C1"], "reminder_firm", T)
    assert firm.problem is None and firm.entry_ids == [1, 2]
    assert "INV-1A" in firm.body and "INV-1B" in firm.body and "INV-1C" not in firm.body
    assert "Total past due: 1,400.00 USD." in firm.body
    assert "Balance 1,550.00 USD = open invoices 1,650.00 USD − unapplied cash/credits 100.00 USD." in firm.body
    [statement] = preview(books, ["C1"], "statement_letter", T)
    assert statement.entry_ids == [1, 2, 3] and "INV-1C" in statement.body
    [predue] = preview(books, ["C1"], "reminder_predue", T)
    assert predue.entry_ids == [3]


@pytest.fixture
def ledger(store_on_each_engine: Store) -> Store:
    """Customers around the "exactly 4 days past due" case (hand-made):
    K1: one invoice 4 days and one 90 days past due; K2: only 90 days; K3: 4 days, partly paid;
    K4: 4 days, paid in full; K5: 3 and 5 days; K6: 4 days, disputed; K7: due in 4 days (not past due)."""
    store = store_on_each_engine
    setup_people(store)
    add_dunning_config(store)
    for cid in ("K1", "K2", "K3", "K4", "K5", "K6", "K7"):
        add_customer(store, cid, name=f"Kunde {cid}")
    add_invoice(store, "K1", "K1-4", T - timedelta(days=34), _dpd(4), 300)
    add_invoice(store, "K1", "K1-90", T - timedelta(days=120), _dpd(90), 5000)
    add_invoice(store, "K2", "K2-90", T - timedelta(days=120), _dpd(90), 700)
    k3 = add_invoice(store, "K3", "K3-4", T - timedelta(days=34), _dpd(4), 800)
    add_payment(store, "K3", "PAY-K3", T - timedelta(days=1), 200, invoice_id=k3)
    k4 = add_invoice(store, "K4", "K4-4", T - timedelta(days=34), _dpd(4), 100)
    add_payment(store, "K4", "PAY-K4", T - timedelta(days=2), 100, invoice_id=k4)
    add_invoice(store, "K5", "K5-3", T - timedelta(days=33), _dpd(3), 50)
    add_invoice(store, "K5", "K5-5", T - timedelta(days=35), _dpd(5), 60)
    k6 = add_invoice(store, "K6", "K6-4", T - timedelta(days=34), _dpd(4), 90)
    open_dispute(store, ANA, "K6", "Wrong quantity", None, "logistics", entry_ids=[k6])
    add_invoice(store, "K7", "K7-due", T - timedelta(days=26), T + timedelta(days=4), 70)
    return store


def _pandas_exactly(store: Store, days: int) -> dict[str, list[int]]:
    """Independently: invoices open on T (amount - allocations) exactly `days` past due, not disputed."""
    entries = store.read("SELECT entry_id, customer_id, entry_type, due_date, amount FROM ledger_entries")
    allocations = store.read("SELECT to_entry_id, amount FROM allocations")
    disputed = store.read("SELECT ai.entry_id FROM activity_invoices ai JOIN activities a "
                          "ON a.activity_id = ai.activity_id WHERE a.kind = 'dispute' AND a.status = 'open'")
    invoices = entries[entries["entry_type"] == "invoice"].copy()
    paid = allocations.groupby("to_entry_id")["amount"].sum().astype(float)
    invoices["open"] = invoices["amount"].astype(float) - invoices["entry_id"].map(paid).fillna(0.0)
    invoices["dpd"] = (pd.Timestamp(T) - pd.to_datetime(invoices["due_date"])).dt.days
    hit = invoices[(invoices["open"] > 0) & (invoices["dpd"] == days) & ~invoices["entry_id"].isin(disputed["entry_id"])]
    return {c: sorted(int(e) for e in g["entry_id"]) for c, g in hit.groupby("customer_id")}


def test_the_bulk_four_days_filter_selects_the_customers_with_an_invoice_four_days_past_due(ledger: Store) -> None:
    expected = _pandas_exactly(ledger, 4)
    assert sorted(expected) == ["K1", "K3"]  # the hand-made answer, and pandas agrees
    found = select_customers(ledger, T, invoice_days=(4, 4))
    assert dict(zip(found["customer_id"], found["matching_entry_ids"], strict=True)) == expected
    k1 = found.set_index("customer_id").loc["K1"]
    assert (k1["matching_invoices"], k1["matching_amount"], k1["matching_days_from"], k1["matching_days_to"],
            k1["max_days_past_due"], k1["stage_template"]) == (1, 300.0, 4, 4, 90, "reminder_friendly")
    assert found.set_index("customer_id").loc["K3", "matching_amount"] == 600.0
    # "at least 4" adds the 90-day and 5-day customers; the oldest-invoice filter is a separate question
    assert sorted(select_customers(ledger, T, invoice_days=(4, None))["customer_id"]) == ["K1", "K2", "K3", "K5"]
    assert sorted(select_customers(ledger, T, oldest_days=(90, 90))["customer_id"]) == ["K1", "K2"]
    assert sorted(select_customers(ledger, T, invoice_days=(4, 4), oldest_days=(0, 30))["customer_id"]) == ["K3"]


def test_the_bulk_send_lists_only_the_matching_invoices_and_the_preview_count_is_the_send_count(
        ledger: Store, tmp_path) -> None:
    # K2 hit the frequency cap: the old preview called it sendable, the send then blocked it
    with ledger.write() as conn:
        for hours in (1, 2, 3):
            conn.execute(sa.text("INSERT INTO activities (customer_id, kind, occurred_at, author, subject) "
                                 "VALUES ('K2', 'email', :t, 'ben.collector', 'earlier')"),
                         {"t": datetime.now() - timedelta(hours=hours)})
    config = OutreachConfig(mode="outbox", outbox_dir=tmp_path / "outbox", max_emails_per_customer=3)
    found = select_customers(ledger, T, invoice_days=(4, None))
    drafts = bulk_preview(ledger, found, STAGE_TEMPLATE, T, by_invoice=True, config=config)
    problems = {d.customer_id: d.problem for d in drafts if d.problem}
    assert list(problems) == ["K2"] and problems["K2"].startswith("frequency cap: 3 emails")
    k1 = next(d for d in drafts if d.customer_id == "K1")
    assert k1.subject == "FINAL NOTICE: Kunde K1 account K1"  # its 90-day invoice reached stage 3 (30 days)
    assert "K1-4" in k1.body and "K1-90" in k1.body
    sent = bulk_send(ledger, ANA, found, STAGE_TEMPLATE, T, by_invoice=True, action_key="b1", config=config)
    assert int((sent["status"] == "sent").sum()) == sendable(drafts) == 3
    assert sent.set_index("customer_id").loc["K2", "status"] in ("blocked", "not queued")

    exactly = select_customers(ledger, T, invoice_days=(4, 4))
    body = bulk_preview(ledger, exactly, "reminder_friendly", T, by_invoice=True, config=config)
    k1_body = next(d for d in body if d.customer_id == "K1").body
    assert "K1-4" in k1_body and "K1-90" not in k1_body  # only the invoice that matched


def test_the_v15_upgrade_names_each_invoice_and_keeps_account_disputes_whole(store: Store) -> None:
    from analytics import migrations

    setup_people(store)
    add_customer(store, "C1")
    add_invoice(store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 1000)
    with store.write() as conn:  # as a v14 store holds them: no links, no flags
        for kind, entry in (("dispute", None), ("promise", 1), ("note", 1)):
            conn.execute(sa.text("INSERT INTO activities (customer_id, kind, occurred_at, author, entry_id, status) "
                                 "VALUES ('C1', :k, :t, 'ana.collector', :e, 'open')"),
                         {"k": kind, "t": datetime.now(), "e": entry})
        migrations._v15_activity_invoices(conn)
        migrations._v15_activity_invoices(conn)  # twice changes nothing
    assert store.read("SELECT a.kind, l.entry_id FROM activity_invoices l JOIN activities a "
                      "ON a.activity_id = l.activity_id").to_dict("records") == [{"kind": "promise", "entry_id": 1}]
    assert store.read("SELECT kind, whole_account FROM activities ORDER BY activity_id").to_dict("records") == [
        {"kind": "dispute", "whole_account": True}, {"kind": "promise", "whole_account": None},
        {"kind": "note", "whole_account": None}]
