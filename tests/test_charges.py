"""Interest and dunning fees (analytics/collections/charges.py), hand-computed, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics.access.roles import Actor, PermissionDenied
from analytics.collections.charges import (
    ChargesError,
    book_charges,
    charges_summary,
    interest_due,
    stage_fee,
)
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder

COLLECTOR = Actor("ana", "collector", "Ana")


def _ledger(store: Store) -> LedgerBuilder:
    b = LedgerBuilder(store)
    # ERPNext's case: 100 outstanding, due 15 days before the as-of date
    b.customer("E").invoice("E", "SINV-1", posted="2026-02-01", due="2026-03-17", amount=100)
    # Piecewise: 1000 due 31 Jan; 400 paid 2 Mar (30 days overdue); as of 1 Apr another 30 days on 600
    b.customer("P").invoice("P", "INV-P", posted="2026-01-01", due="2026-01-31", amount=1000)
    b.payment("P", "PAY-P", posted="2026-03-02", amount=400, applies={"INV-P": 400})
    # Not overdue on 1 Apr (due that day), and one paid before its due date: no interest
    b.customer("Q").invoice("Q", "INV-Q1", posted="2026-03-01", due="2026-04-01", amount=500)
    b.invoice("Q", "INV-Q2", posted="2026-01-01", due="2026-02-01", amount=70)
    b.payment("Q", "PAY-Q", posted="2026-01-20", amount=70, applies={"INV-Q2": 70})
    return b


AS_OF = date(2026, 4, 1)


def test_erpnext_case_100_at_10_percent_for_15_days_plus_a_10_fee_is_110_41(store_on_each_engine: Store) -> None:
    _ledger(store_on_each_engine)
    items = interest_due(store_on_each_engine, "E", AS_OF, 0.10)
    # 100 × 0.10 / 365 × 15 = 0.41095...
    assert items[["document_number", "open_amount", "days_overdue", "interest"]].to_dict("records") == [
        {"document_number": "SINV-1", "open_amount": 100.0, "days_overdue": 15, "interest": 0.41}]
    assert charges_summary(store_on_each_engine, "E", AS_OF, 0.10, 10) == {
        "overdue": 100.0, "interest": 0.41, "fee": 10.0, "total": 110.41, "annual_rate": 0.10}


def test_interest_is_piecewise_between_payments(store_on_each_engine: Store) -> None:
    _ledger(store_on_each_engine)
    everyone = interest_due(store_on_each_engine, None, AS_OF, 0.12)
    # 1000 × 30 days + 600 × 30 days = 48,000 amount-days × 0.12 / 365 = 15.7808...
    assert everyone[["customer_id", "document_number", "open_amount", "days_overdue", "interest"]].to_dict(
        "records") == [
        {"customer_id": "E", "document_number": "SINV-1", "open_amount": 100.0, "days_overdue": 15,
         "interest": 0.49},  # 100 × 15 × 0.12 / 365 = 0.4931
        {"customer_id": "P", "document_number": "INV-P", "open_amount": 600.0, "days_overdue": 60,
         "interest": 15.78}]
    # On 2 Mar, the day of the payment: 1000 × 30 days only; the payment counts from its date
    assert interest_due(store_on_each_engine, "P", date(2026, 3, 2), 0.12)["interest"].tolist() == [9.86]
    # No rate: the same invoices, no interest; an invoice due today is not overdue
    assert interest_due(store_on_each_engine, "Q", AS_OF, 0.12).empty
    assert interest_due(store_on_each_engine, "P", AS_OF, None)["interest"].tolist() == [0.0]


def test_a_partial_payment_before_the_due_date_lowers_the_whole_base(store_on_each_engine: Store) -> None:
    b = LedgerBuilder(store_on_each_engine)
    b.customer("R").invoice("R", "INV-R", posted="2026-01-01", due="2026-03-02", amount=300)
    b.payment("R", "PAY-R", posted="2026-02-15", amount=100, applies={"INV-R": 100})
    # 200 × 30 days × 0.10 / 365 = 1.6438 (the early payment never accrued)
    assert interest_due(store_on_each_engine, "R", AS_OF, 0.10)["interest"].tolist() == [1.64]


def test_fees_and_rates_are_checked() -> None:
    assert stage_fee(None) == stage_fee(0) == 0
    assert str(stage_fee(12.345)) == "12.35"
    with pytest.raises(ChargesError, match="cannot be negative"):
        stage_fee(-1)
    with pytest.raises(ChargesError, match="between 0 and 1"):
        interest_due(None, None, AS_OF, 10)  # 10 meant as 10 %: refused before any read


def _open_ar(store: Store) -> float:
    sql = f"WITH items AS ({OPEN_ITEMS_SQL}) SELECT COALESCE(SUM(open_amount), 0) FROM items WHERE open_amount > 0"  # noqa: S608
    return float(store.scalar(sql, {"as_of": AS_OF, "reporting": "USD"}))


def test_charges_are_not_booked_by_default_and_booking_is_once_a_day_and_audited(
        store_on_each_engine: Store) -> None:
    store = store_on_each_engine
    _ledger(store)
    before = _open_ar(store)
    charges_summary(store, "E", AS_OF, 0.10, 10)  # shown only: nothing written
    assert _open_ar(store) == before
    with pytest.raises(PermissionDenied):
        book_charges(store, Actor("ann", "analyst"), AS_OF, annual_rate=0.10, fee=10)

    booked = book_charges(store, COLLECTOR, AS_OF, annual_rate=0.10, fee=10, customer_ids=["E", "P"],
                          stage_name="Reminder")
    # P: 1000 × 30 + 600 × 30 = 48,000 × 0.10 / 365 = 13.15
    assert sorted(zip(booked.document_number.str.slice(0, 4), booked.customer_id, booked.amount, strict=True)) == [
        ("FEE-", "E", 10.0), ("FEE-", "P", 10.0), ("INT-", "E", 0.41), ("INT-", "P", 13.15)]
    assert round(_open_ar(store) - before, 2) == 33.56
    rows = store.read("SELECT document_number, due_date, related_document, reference FROM ledger_entries "
                      "WHERE source = 'dunning charges' ORDER BY document_number")
    assert rows.related_document.tolist() == ["SINV-1", "INV-P", "SINV-1", "INV-P"]
    assert rows.document_number.tolist()[0] == "FEE-20260401-E"
    assert set(rows.reference) == {"Dunning fee: Reminder", "Interest at 10.00 % a year to 2026-04-01"}
    assert int(store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'charge.book'")) == 4

    # The same day again: nothing new. Ten days later: only the interest accrued since, and a new fee.
    assert book_charges(store, COLLECTOR, AS_OF, annual_rate=0.10, fee=10, customer_ids=["E", "P"]).empty
    later = book_charges(store, COLLECTOR, date(2026, 4, 11), annual_rate=0.10, fee=0, customer_ids=["P"])
    # P on 11 Apr: 48,000 + 600 × 10 = 54,000 × 0.10 / 365 = 14.79, less 13.15 booked = 1.64
    assert later[["customer_id", "amount"]].to_dict("records") == [{"customer_id": "P", "amount": 1.64}]


def test_interest_matches_a_day_by_day_pandas_recomputation_on_the_demo(demo_store: Store) -> None:
    """Independent check: Σ over each overdue day d in [due, D) of (amount − allocations dated ≤ d)."""
    as_of = date(2026, 10, 31)
    got = interest_due(demo_store, None, as_of, 0.10).set_index("entry_id")["interest"]
    inv = demo_store.read("SELECT entry_id, amount, due_date, posting_date FROM ledger_entries "
                          "WHERE entry_type = 'invoice'")
    alloc = demo_store.read("SELECT to_entry_id AS entry_id, amount AS paid, allocation_date FROM allocations")
    inv["due_date"], inv["posting_date"] = pd.to_datetime(inv["due_date"]), pd.to_datetime(inv["posting_date"])
    alloc["allocation_date"] = pd.to_datetime(alloc["allocation_date"])
    end = pd.Timestamp(as_of)
    paid_by_end = alloc[alloc.allocation_date <= end].groupby("entry_id")["paid"].sum()
    inv["open"] = inv["amount"] - inv["entry_id"].map(paid_by_end).fillna(0)
    due = inv[(inv.due_date < end) & (inv.posting_date <= end) & (inv.open > 0.004)].copy()
    due["day"] = [pd.date_range(d, end - pd.Timedelta(days=1)) for d in due.due_date]
    days = due[["entry_id", "amount", "day"]].explode("day")
    days["day"] = pd.to_datetime(days["day"])
    paid = days.merge(alloc, on="entry_id")
    paid = paid[paid.allocation_date <= paid.day].groupby(["entry_id", "day"])["paid"].sum()
    days = days.set_index(["entry_id", "day"])
    days["balance"] = days["amount"] - paid.reindex(days.index).fillna(0)
    expected = (days.groupby(level="entry_id")["balance"].sum() * 0.10 / 365).round(2)
    assert len(got) > 100 and sorted(got.index) == sorted(expected.index)
    assert (got - expected.reindex(got.index)).abs().max() < 1e-9  # the same cents
