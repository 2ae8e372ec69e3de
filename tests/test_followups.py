"""Follow-ups: validated, audited, idempotent writes; promise status following payments; concurrency."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta

import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.collections.followups import (
    FollowUpError,
    add_note,
    add_task,
    complete_task,
    escalate,
    log_call,
    open_dispute,
    promise_to_pay,
    reassign,
    refresh_promise_statuses,
    resolve_dispute,
    snooze,
)
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_invoice, add_payment, setup_people

T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")
SAM = Actor("sam.sales", "sales", "Sam Sales")


@pytest.fixture
def books(store: Store) -> Store:
    setup_people(store)
    add_customer(store, "C1")
    add_customer(store, "C2", collector="ben.collector")
    add_invoice(store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 1000)
    add_invoice(store, "C2", "INV-2", T - timedelta(days=40), T - timedelta(days=10), 500)
    return store


def _rows(store: Store, sql: str) -> list[dict]:
    frame = store.read(sql).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def _counts(store: Store) -> tuple[int, int]:
    return (int(store.scalar("SELECT COUNT(*) FROM activities")), int(store.scalar("SELECT COUNT(*) FROM audit_log")))


def test_each_follow_up_lands_on_the_timeline_with_its_fields(books: Store) -> None:
    log_call(books, ANA, "C1", "reached", "Will pay Friday")
    add_note(books, SAM, "C1", "Customer changed AP system")
    promise_to_pay(books, ANA, "C1", 600, T + timedelta(days=5), entry_id=1)
    dispute = open_dispute(books, ANA, "C1", "Damaged goods", 200, "logistics", entry_id=1)
    add_task(books, ANA, "C1", "Send copy invoice", T + timedelta(days=2))
    snooze(books, ANA, "C1", T + timedelta(days=3), "Waiting for AP", item="newly_past_due")
    resolve_dispute(books, ANA, dispute, "resolved", "Credit note issued")
    assert _rows(books, """
        SELECT kind, author, department, subject, outcome, amount, CAST(due_date AS VARCHAR) AS due_date, status, reason, assignee, target, entry_id
        FROM activities ORDER BY activity_id""") == [
        {"kind": "call", "author": "ana.collector", "department": "collections", "subject": "Call: reached",
         "outcome": "reached", "amount": None, "due_date": None, "status": None, "reason": None, "assignee": None,
         "target": None, "entry_id": None},
        {"kind": "note", "author": "sam.sales", "department": "sales", "subject": "Customer changed AP system",
         "outcome": None, "amount": None, "due_date": None, "status": None, "reason": None, "assignee": None,
         "target": None, "entry_id": None},
        {"kind": "promise", "author": "ana.collector", "department": "collections",
         "subject": f"Promise to pay 600.00 by {T + timedelta(days=5)}", "outcome": None, "amount": 600.0,
         "due_date": str(T + timedelta(days=5)), "status": "pending", "reason": None, "assignee": None, "target": None,
         "entry_id": 1},
        {"kind": "dispute", "author": "ana.collector", "department": "logistics",
         "subject": "Dispute (logistics): Damaged goods", "outcome": None, "amount": 200.0, "due_date": None,
         "status": "resolved", "reason": "Damaged goods", "assignee": None, "target": None, "entry_id": 1},
        {"kind": "task", "author": "ana.collector", "department": "collections", "subject": "Send copy invoice",
         "outcome": None, "amount": None, "due_date": str(T + timedelta(days=2)), "status": "open", "reason": None,
         "assignee": "ana.collector", "target": None, "entry_id": None},
        {"kind": "snooze", "author": "ana.collector", "department": "collections",
         "subject": f"Snoozed until {T + timedelta(days=3)}: Waiting for AP", "outcome": None, "amount": None,
         "due_date": str(T + timedelta(days=3)), "status": None, "reason": "Waiting for AP", "assignee": None,
         "target": "newly_past_due", "entry_id": None},
        {"kind": "note", "author": "ana.collector", "department": "collections",
         "subject": "Dispute resolved: Damaged goods", "outcome": None, "amount": None, "due_date": None,
         "status": "resolved", "reason": None, "assignee": None, "target": None, "entry_id": None},
    ]
    assert _rows(books, "SELECT action, actor FROM audit_log WHERE action NOT LIKE 'user.%' ORDER BY audit_id") == [
        {"action": "activity.call", "actor": "ana.collector"}, {"action": "activity.note", "actor": "sam.sales"},
        {"action": "activity.promise", "actor": "ana.collector"}, {"action": "activity.dispute", "actor": "ana.collector"},
        {"action": "activity.task", "actor": "ana.collector"}, {"action": "activity.snooze", "actor": "ana.collector"},
        {"action": "dispute.resolve", "actor": "ana.collector"}, {"action": "activity.note", "actor": "ana.collector"},
    ]


def test_same_idempotency_key_returns_the_first_result_and_writes_nothing(books: Store) -> None:
    first = log_call(books, ANA, "C1", "no answer", idempotency_key="call-form-1")
    before = _counts(books)
    assert log_call(books, ANA, "C1", "no answer", idempotency_key="call-form-1") == first
    assert promise_to_pay(books, ANA, "C1", 10, T, idempotency_key="call-form-1") == first
    assert _counts(books) == before
    task = add_task(books, ANA, "C1", "Call back", T)
    assert complete_task(books, ANA, task) is True
    before = _counts(books)
    assert complete_task(books, ANA, task) is False
    assert _counts(books) == before


def test_escalation_and_reassignment_change_the_account_and_are_audited(books: Store) -> None:
    escalate(books, ANA, "C1", "agency", "No answer for 90 days")
    reassign(books, SYSTEM, "C2", "ana.collector", "Ben on leave")
    assert _rows(books, "SELECT customer_id, status, collector FROM customers ORDER BY customer_id") == [
        {"customer_id": "C1", "status": "with_agency", "collector": "ana.collector"},
        {"customer_id": "C2", "status": "active", "collector": "ana.collector"},
    ]
    changes = _rows(books, "SELECT action, entity_id, old_values, new_values FROM audit_log "
                           "WHERE entity = 'customer' ORDER BY audit_id")
    assert [(c["action"], c["entity_id"], json.loads(c["old_values"]), json.loads(c["new_values"])) for c in changes] == [
        ("customer.status", "C1", {"status": "active"}, {"status": "with_agency"}),
        ("customer.collector", "C2", {"collector": "ben.collector"}, {"collector": "ana.collector"}),
    ]


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: promise_to_pay(s, ANA, "C1", 0, T), "amount 0: must be greater than 0"),
    (lambda s: promise_to_pay(s, ANA, "C1", 10, T - timedelta(days=1)), f"promised date {T - timedelta(days=1)}"),
    (lambda s: promise_to_pay(s, ANA, "C1", 10, T + timedelta(days=400)), "must be between"),
    (lambda s: promise_to_pay(s, ANA, "C1", 10, T, entry_id=2), "entry_id 2: the invoice belongs to C2, not C1"),
    (lambda s: log_call(s, ANA, "NOPE", "reached"), "customer_id 'NOPE': there is no such customer"),
    (lambda s: log_call(s, ANA, "C1", "shouted"), "outcome 'shouted': choose one of"),
    (lambda s: open_dispute(s, ANA, "C1", "", 10, "sales"), "reason: required"),
    (lambda s: open_dispute(s, ANA, "C1", "x", 10, "marketing"), "department 'marketing'"),
    (lambda s: escalate(s, ANA, "C1", "police", "x"), "target 'police'"),
    (lambda s: add_task(s, ANA, "C1", "x", T - timedelta(days=1)), "must not be before"),
    (lambda s: add_task(s, ANA, "C1", "x", T, assignee="ghost"), "assignee 'ghost': there is no such user"),
    (lambda s: snooze(s, ANA, "C1", T, "x"), f"snooze until {T}: must be after"),
    (lambda s: reassign(s, SYSTEM, "C1", "sam.sales"), "new collector 'sam.sales': not an active collector"),
])
def test_bad_input_is_refused_naming_field_value_and_reason(books: Store, call, message: str) -> None:
    before = _counts(books)
    with pytest.raises(FollowUpError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(books)
    assert _counts(books) == before


@pytest.mark.parametrize(("actor", "call"), [
    (Actor("val.viewer", "viewer"), lambda s, a: add_note(s, a, "C1", "hello")),
    (SAM, lambda s, a: log_call(s, a, "C1", "reached")),
    (SAM, lambda s, a: promise_to_pay(s, a, "C1", 10, T)),
    (Actor("cf", "cfo"), lambda s, a: escalate(s, a, "C1", "manager", "x")),
    (ANA, lambda s, a: reassign(s, a, "C1", "ben.collector")),
])
def test_forbidden_writes_raise_and_write_nothing(books: Store, actor: Actor, call) -> None:
    before = _counts(books)
    with pytest.raises(PermissionDenied):
        call(books, actor)
    assert _counts(books) == before


def test_two_threads_logging_for_the_same_customer_both_persist(books: Store) -> None:
    errors: list[BaseException] = []

    def work(prefix: str) -> None:
        try:
            for i in range(15):
                log_call(books, ANA, "C1", "reached", f"{prefix} {i}", idempotency_key=f"{prefix}-{i}")
                add_note(books, SAM, "C1", f"{prefix} note {i}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert int(books.scalar("SELECT COUNT(*) FROM activities WHERE customer_id = 'C1'")) == 60
    assert int(books.scalar("SELECT COUNT(DISTINCT body) FROM activities WHERE kind = 'call'")) == 30


def test_promise_status_follows_payments(books: Store) -> None:
    on_invoice = promise_to_pay(books, ANA, "C1", 600, T + timedelta(days=5), entry_id=1)
    on_account = promise_to_pay(books, ANA, "C2", 500, T + timedelta(days=5))
    broken = promise_to_pay(books, ANA, "C2", 100, T + timedelta(days=2), entry_id=2)

    def status() -> dict[int, str]:
        frame = books.read("SELECT activity_id, status FROM activities WHERE kind = 'promise'")
        return dict(zip(frame.activity_id.astype(int), frame.status, strict=True))

    add_payment(books, "C1", "PAY-1", T + timedelta(days=1), 400, invoice_id=1)  # part only
    assert refresh_promise_statuses(books, T + timedelta(days=1)) == {"kept": 0, "broken": 0}
    assert status() == {on_invoice: "pending", on_account: "pending", broken: "pending"}
    add_payment(books, "C1", "PAY-2", T + timedelta(days=4), 200, invoice_id=1)  # 600 in full by the date
    add_payment(books, "C2", "PAY-3", T + timedelta(days=3), 500)  # unapplied cash on account
    assert refresh_promise_statuses(books, T + timedelta(days=4)) == {"kept": 2, "broken": 1}
    assert status() == {on_invoice: "kept", on_account: "kept", broken: "broken"}
    assert refresh_promise_statuses(books, T + timedelta(days=30)) == {"kept": 0, "broken": 0}


def test_a_payment_after_the_promised_date_does_not_keep_it(books: Store) -> None:
    late = promise_to_pay(books, ANA, "C1", 1000, T + timedelta(days=2), entry_id=1)
    add_payment(books, "C1", "PAY-L", T + timedelta(days=3), 1000, invoice_id=1)
    assert refresh_promise_statuses(books, T + timedelta(days=10)) == {"kept": 0, "broken": 1}
    assert books.scalar("SELECT status FROM activities WHERE activity_id = :a", {"a": late}) == "broken"
