"""The portal's data functions (issue 17): a customer sees and writes only its own invoices,
statement and thread; a portal dispute, promise or "I have paid" holds the invoices out of dunning
and is on the collector's worklist; the collector's reply reaches the thread."""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics.access.roles import Actor, PermissionDenied, allowed_pages
from analytics.collections import followups
from analytics.collections.dunning_schedule import due_stages
from analytics.collections.worklist import worklist
from analytics.migrations import connect
from analytics.portal.account import (
    DISPUTE_REASONS,
    PortalError,
    portal_dispute,
    portal_invoices,
    portal_message,
    portal_promise,
    portal_remittance,
    portal_statement_excel,
    portal_statement_pdf,
    portal_thread,
    reply_to_portal,
)
from analytics.portal.identity import PortalCustomer, portal_actor
from analytics.settings import Settings, portal_days
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, add_payment, setup_people

T = date.today()
A, B = PortalCustomer("C001"), PortalCustomer("C002")
ANA = Actor("ana.collector", "collector", "Ana Collector")


def _books(store: Store) -> Store:
    """A (C001, Acme A): INV-A1 1,000.00 ten days past due, INV-A2 500.00 twenty days, INV-A3 300.00
    paid in full 5 days ago. B (C002, Bravo B): INV-B1 2,000.00 ten days past due, INV-B2 700.00
    three days. Both Ana's, under the standard stages (friendly at 1 day: all four open are due)."""
    setup_people(store)
    add_dunning_config(store)
    add_customer(store, "C001", name="Acme A")
    add_customer(store, "C002", name="Bravo B")
    add_invoice(store, "C001", "INV-A1", T - timedelta(days=40), T - timedelta(days=10), 1000)
    add_invoice(store, "C001", "INV-A2", T - timedelta(days=50), T - timedelta(days=20), 500)
    a3 = add_invoice(store, "C001", "INV-A3", T - timedelta(days=70), T - timedelta(days=40), 300)
    add_payment(store, "C001", "PAY-A3", T - timedelta(days=5), 300, invoice_id=a3)
    add_invoice(store, "C002", "INV-B1", T - timedelta(days=40), T - timedelta(days=10), 2000)
    add_invoice(store, "C002", "INV-B2", T - timedelta(days=33), T - timedelta(days=3), 700)
    return store


def _due(store: Store, as_of: date) -> list[str]:
    frame = due_stages(store, as_of)
    return sorted(frame["document_number"]) if len(frame) else []


def _items(store: Store) -> dict[str, list[str]]:
    items = worklist(store, T, "ana.collector")
    return {r: sorted(items.loc[items["reason"] == r, "detail"]) for r in
            ("portal_dispute", "expected_payment", "portal_message")}


def test_portal_writes_hold_dunning_reach_the_worklist_and_the_thread(store_on_each_engine: Store) -> None:
    store = _books(store_on_each_engine)
    assert _due(store, T) == ["INV-A1", "INV-A2", "INV-B1", "INV-B2"]

    dispute = portal_dispute(store, A, "INV-A1", "Goods damaged or faulty", 250, "Two pallets broken")
    promise = portal_promise(store, A, ["INV-A2"], 500, T + timedelta(days=5))
    remit = portal_remittance(store, B, ["INV-B1"], T - timedelta(days=1), 2000, "WIRE 77")
    portal_message(store, A, "When is the credit note coming?")

    rows = store.read("SELECT activity_id, kind, author, department, amount, due_date, paid_on, reason, status "
                      "FROM activities ORDER BY activity_id").set_index("activity_id")
    assert rows.loc[dispute, ["kind", "author", "department", "status"]].tolist() == [
        "dispute", "portal:C001", "quality", "open"]  # routed by its reason
    assert float(rows.loc[dispute, "amount"]) == 250.00
    assert rows.loc[promise, "kind"] == "promise" and float(rows.loc[promise, "amount"]) == 500.00
    assert pd.Timestamp(rows.loc[remit, "due_date"]).date() == T + timedelta(days=6)  # paid T-1, 7 days' pause
    assert pd.Timestamp(rows.loc[remit, "paid_on"]).date() == T - timedelta(days=1)
    assert rows.loc[remit, "reason"] == "WIRE 77"
    audit = store.read("SELECT actor, action FROM audit_log WHERE action LIKE 'activity.%' ORDER BY audit_id")
    assert audit.values.tolist() == [["portal:C001", "activity.dispute"], ["portal:C001", "activity.promise"],
                                     ["portal:C002", "activity.remittance"], ["portal:C001", "activity.portal_message"]]

    # Dunning: the disputed invoice leaves the run; the promised one pauses through the promised date
    # (back on date + 1); the remitted one for 7 days from the stated payment date.
    assert _due(store, T) == ["INV-B2"]
    assert _due(store, T + timedelta(days=5)) == ["INV-B2"]
    assert _due(store, T + timedelta(days=6)) == ["INV-A2", "INV-B1", "INV-B2"]

    statuses = {inv: dict(zip(f["document_number"], f["status"], strict=True))
                for inv, f in (("A", portal_invoices(store, A, T)), ("B", portal_invoices(store, B, T)))}
    assert statuses == {"A": {"INV-A1": "disputed", "INV-A2": "promised", "INV-A3": "paid"},
                        "B": {"INV-B1": "remitted", "INV-B2": "open"}}

    paid_on = (T - timedelta(days=1)).isoformat()
    assert _items(store) == {
        "portal_dispute": ["Customer disputed INV-A1 from the portal: Goods damaged or faulty"],
        "expected_payment": [f"Expected payment: Paid 2,000.00 on {paid_on} for INV-B1 (reference WIRE 77)"],
        "portal_message": ["Message from the portal: When is the credit note coming?"]}

    reply_to_portal(store, ANA, "C001", "It goes out on Friday.")
    thread = portal_thread(store, A)
    assert thread[["author", "body"]].values.tolist() == [["you", "When is the credit note coming?"],
                                                          ["Ana Collector", "It goes out on Friday."]]
    assert portal_thread(store, B).empty
    after = _items(store)  # the reply acted on A's items; B's expected payment stays
    assert after["portal_dispute"] == [] and after["portal_message"] == []
    assert after["expected_payment"] == [f"Expected payment: Paid 2,000.00 on {paid_on} for INV-B1 (reference WIRE 77)"]


def test_the_remittance_pause_follows_the_setting(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """[portal] remittance_pause_days = 2: paid yesterday holds through today only; 0 holds nothing."""
    _books(store)
    monkeypatch.setattr("analytics.portal.account.portal_days", lambda name: {"remittance_pause_days": 2}[name])
    portal_remittance(store, B, ["INV-B1"], T - timedelta(days=1), 1500, "")
    assert _due(store, T) == ["INV-A1", "INV-A2", "INV-B2"]
    assert _due(store, T + timedelta(days=1)) == ["INV-A1", "INV-A2", "INV-B1", "INV-B2"]
    monkeypatch.setattr("analytics.portal.account.portal_days", lambda name: {"remittance_pause_days": 0}[name])
    portal_remittance(store, A, ["INV-A1"], T, 1000, "")
    assert _due(store, T) == ["INV-A1", "INV-A2", "INV-B2"]
    assert dict(zip(*portal_invoices(store, A, T)[["document_number", "status"]].T.values, strict=True)) == {
        "INV-A1": "open", "INV-A2": "open", "INV-A3": "paid"}


# -- isolation: a session for A never reads or writes B ------------------------------------------------

@pytest.fixture(scope="module")
def two_customers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The books above, with B's own message and dispute already there (B's data to keep untouched)."""
    store = _books(connect(str(tmp_path_factory.mktemp("portal") / "ardesk.duckdb")))
    portal_message(store, B, "Bravo's private question")
    portal_dispute(store, B, "INV-B2", "Wrong quantity delivered", None, "Bravo short shipped")
    portal_message(store, A, "Acme's own question")
    yield store
    store.close()


def _snapshot(store: Store) -> list[list[object]]:
    return store.read("SELECT a.activity_id, a.customer_id, a.kind, a.amount, a.status, a.body, "
                      "(SELECT COUNT(*) FROM activity_invoices i WHERE i.activity_id = a.activity_id) AS n "
                      "FROM activities a ORDER BY a.activity_id").astype(str).values.tolist()


REFUSED_WRITES: dict[str, Callable[[Store], object]] = {
    "dispute of B's invoice": lambda s: portal_dispute(s, A, "INV-B1", "Other", 10, "not mine"),
    "promise on B's invoice": lambda s: portal_promise(s, A, ["INV-B1"], 10, T + timedelta(days=3)),
    "promise on A's and B's": lambda s: portal_promise(s, A, ["INV-A1", "INV-B1"], 10, T + timedelta(days=3)),
    "remittance for B's invoice": lambda s: portal_remittance(s, A, ["INV-B2"], T, 700, "ref"),
    "unknown number": lambda s: portal_dispute(s, A, "INV-NOPE", "Other", 10, ""),
}


@pytest.mark.parametrize("call", list(REFUSED_WRITES.values()), ids=list(REFUSED_WRITES))
def test_another_customers_invoice_is_no_such_invoice(two_customers: Store, call: Callable[[Store], object]) -> None:
    before = _snapshot(two_customers)
    with pytest.raises(PortalError) as refused:
        call(two_customers)
    assert re.fullmatch(r"invoice 'INV-(B1|B2|NOPE)': no such invoice\.", str(refused.value))
    assert _snapshot(two_customers) == before  # nothing written, B's rows untouched


ENGINE_GUARDS: dict[str, Callable[[Store], object]] = {
    "dispute on B as A": lambda s: followups.open_dispute(s, portal_actor(A), "C002", "Other", 10, "collections",
                                                         whole_account=True),
    "note as a customer": lambda s: followups.add_note(s, portal_actor(A), "C001", "a note"),
    "reply as a customer": lambda s: reply_to_portal(s, portal_actor(A), "C001", "hello"),
    "reply by a viewer": lambda s: reply_to_portal(s, Actor("val.viewer", "viewer"), "C001", "hello"),
}


@pytest.mark.parametrize("call", list(ENGINE_GUARDS.values()), ids=list(ENGINE_GUARDS))
def test_the_engine_refuses_a_portal_actor_outside_its_own_account(two_customers: Store,
                                                                   call: Callable[[Store], object]) -> None:
    before = _snapshot(two_customers)
    with pytest.raises(PermissionDenied):
        call(two_customers)
    assert _snapshot(two_customers) == before


def _pdf_text(pdf: bytes) -> str:
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
    return " ".join(zlib.decompress(s).decode("latin-1", "replace") for s in streams if s[:1] == b"x")


def _xlsx_text(data: bytes) -> str:
    from openpyxl import load_workbook
    sheet = load_workbook(io.BytesIO(data)).active
    return " ".join(str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None)


READS: dict[str, tuple[Callable[[Store, PortalCustomer], str], str]] = {
    "invoices": (lambda s, who: portal_invoices(s, who, T).to_csv(), "INV-A3"),
    "statement PDF": (lambda s, who: _pdf_text(portal_statement_pdf(s, who, T)), "INV-A2"),
    "statement Excel": (lambda s, who: _xlsx_text(portal_statement_excel(s, who, T)), "1500"),
    "thread": (lambda s, who: portal_thread(s, who).to_csv(), "Acme's own question"),
}


@pytest.mark.parametrize("read,own", list(READS.values()), ids=list(READS))
def test_a_customer_reads_only_its_own(two_customers: Store, read: Callable[[Store, PortalCustomer], str],
                                       own: str) -> None:
    text = read(two_customers, A)
    assert own in text  # its own data is there...
    for other in ("INV-B1", "INV-B2", "Bravo", "2,000", "2000"):
        assert other not in text  # ...and none of B's


def test_statement_and_invoice_list_to_the_cent(two_customers: Store) -> None:
    frame = portal_invoices(two_customers, A, T)
    assert frame[["document_number", "amount", "open_amount", "days_overdue", "currency"]].values.tolist() == [
        ["INV-A2", 500.0, 500.0, 20, "USD"], ["INV-A1", 1000.0, 1000.0, 10, "USD"], ["INV-A3", 300.0, 0.0, 0, "USD"]]
    assert _xlsx_text(portal_statement_excel(two_customers, A, T)).endswith("INV-A1 " + " ".join(
        f"{T - timedelta(days=d)} 00:00:00" for d in (40, 10)) + " 1000 1000 10 Total open 1500")


@pytest.mark.parametrize("call,reason", [
    (lambda s: portal_dispute(s, A, "INV-A3", "Other", None, ""), "it is paid"),
    (lambda s: portal_dispute(s, A, "INV-A1", "Other", 1000.01, ""), "more than the invoice's open amount 1,000.00"),
    (lambda s: portal_dispute(s, A, "INV-A1", "Because", 10, ""), "choose one of"),
    (lambda s: portal_remittance(s, A, ["INV-A1"], T + timedelta(days=1), 10, ""), "must be a date from"),
    (lambda s: portal_remittance(s, A, [], T, 10, ""), "choose at least one invoice"),
    (lambda s: portal_remittance(s, A, ["INV-A1"], T, 0, ""), "greater than 0"),
    (lambda s: portal_promise(s, A, ["INV-A1"], 10, T - timedelta(days=1)), "promised date"),
    (lambda s: portal_message(s, A, "   "), "write something"),
], ids=["paid", "too much", "reason", "future payment", "no invoice", "zero", "past promise", "empty message"])
def test_bad_input_says_why(two_customers: Store, call: Callable[[Store], object], reason: str) -> None:
    before = _snapshot(two_customers)
    with pytest.raises(PortalError, match=re.escape(reason)):
        call(two_customers)
    assert _snapshot(two_customers) == before


def test_the_portal_role_opens_no_page_and_names_the_customer(two_customers: Store) -> None:
    assert allowed_pages("portal") == []
    assert portal_actor(A, two_customers) == Actor("portal:C001", "portal", "Acme A")
    assert "Other" in DISPUTE_REASONS and len(DISPUTE_REASONS) == len(set(DISPUTE_REASONS))
    audit = two_customers.read("SELECT new_values FROM audit_log WHERE actor = 'portal:C002' "
                               "AND action = 'activity.dispute'")
    assert json.loads(audit["new_values"].iloc[0])["department"] == "logistics"


def test_portal_settings_are_checked() -> None:
    assert portal_days("link_days", Settings({})) == 25
    assert portal_days("remittance_pause_days", Settings({})) == 7
    assert portal_days("remittance_pause_days", Settings({"portal": {"remittance_pause_days": 0}})) == 0
    for name, bad in (("link_days", 0), ("link_days", 1001), ("remittance_pause_days", 61),
                      ("remittance_pause_days", "7"), ("link_days", True)):
        with pytest.raises(ValueError, match=rf"\[portal\] {name} must be a whole number of days"):
            portal_days(name, Settings({"portal": {name: bad}}))
    assert portal_days("link_days") == 25  # config/settings.toml


def test_project_settings_file_has_the_portal_section() -> None:
    text = (Path(__file__).resolve().parent.parent / "config" / "settings.toml").read_text()
    assert "[portal]" in text and "remittance_pause_days = 7" in text and "link_days = 25" in text
