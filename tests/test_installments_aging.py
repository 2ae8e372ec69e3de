"""Invoices with a payment schedule, by hand: each installment ages on its own due date, payments pay
the oldest installment first, the invoice-level total is unchanged, a past date reproduces the past,
and the month-end trend agrees with point-in-time aging. Every test runs on DuckDB and PostgreSQL.

The ledger: customer A, INV1 = 300 posted 2024-01-01 in three installments of 100 due 2024-01-31,
2024-02-29 and 2024-03-31; PAY1 = 150 allocated to INV1 on 2024-02-15. Customer B has one plain
invoice of 80 (no schedule) posted 2024-01-10, due 2024-02-09, and one posted 2024-05-01 (so
2024-04-15 lies before the activity horizon and 2024-06-30 after it: both aging paths run).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics.kpis.aging import aging_buckets, aging_trend, bucket_labels, open_invoices
from analytics.kpis.bad_debt import roll_rates
from analytics.ledger.monthly_summaries import drop_monthly_summaries
from analytics.ledger.months import month_ends
from analytics.ledger.open_items import current_open_amounts, portfolio_summary
from analytics.migrations import connect
from analytics.store.connection import Store, bulk_insert
from tests.conftest import empty_postgres
from tests.ledger_builder import LedgerBuilder

LABELS = ["Current", "1-30", "31-60", "61-90", "91-120", "120+"]


def schedule(store: Store, entry_id: int, rows: list[tuple[str, float]]) -> None:
    with store.write() as conn:
        bulk_insert(conn, "invoice_installments", pd.DataFrame([
            {"entry_id": entry_id, "installment_no": i + 1, "due_date": date.fromisoformat(d), "amount": a}
            for i, (d, a) in enumerate(rows)]))
        drop_monthly_summaries(conn)  # as the LedgerBuilder: the reports read the ledger


def build(store: Store) -> LedgerBuilder:
    b = LedgerBuilder(store)
    b.customer("A").customer("B")
    b.invoice("A", "INV1", posted="2024-01-01", due="2024-01-31", amount=300)
    schedule(store, b.entry_id("A", "INV1"), [("2024-01-31", 100), ("2024-02-29", 100), ("2024-03-31", 100)])
    b.payment("A", "PAY1", posted="2024-02-15", amount=150, applies={"INV1": 150})
    b.invoice("B", "B1", posted="2024-01-10", due="2024-02-09", amount=80)
    b.invoice("B", "B2", posted="2024-05-01", due="2024-05-31", amount=20)
    return b


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_store(request, store: Store):
    if request.param == "duckdb":
        build(store)
        yield store
        return
    pg = connect(empty_postgres(request.getfixturevalue("pg_url")))
    try:
        build(pg)
        yield pg
    finally:
        pg.close()


def _buckets(store: Store, as_of: date, customer: str | None = None) -> dict[str, float]:
    frame = aging_buckets(store, as_of, by="customer")
    if customer is None:
        frame = aging_buckets(store, as_of)
        return {k: float(frame.iloc[0][k]) for k in [*LABELS, "Total"]}
    row = frame[frame.customer_id == customer].iloc[0]
    return {k: float(row[k]) for k in [*LABELS, "Total"]}


def test_installments_age_on_their_own_due_dates(ledger_store: Store) -> None:
    # 2024-04-15 (before the horizon): the 150 paid the first installment (100) and 50 of the second.
    # 2nd: 50 due 02-29, 46 days past due -> 31-60; 3rd: 100 due 03-31, 15 days -> 1-30.
    with ledger_store.engine.connect() as conn:
        assert not current_open_amounts(conn, date(2024, 4, 15))
    assert _buckets(ledger_store, date(2024, 4, 15), "A") == {
        "Current": 0, "1-30": 100, "31-60": 50, "61-90": 0, "91-120": 0, "120+": 0, "Total": 150}
    # 2024-06-30 (after the horizon, the open-now path): 2nd 122 days -> 120+, 3rd 91 days -> 91-120.
    with ledger_store.engine.connect() as conn:
        assert current_open_amounts(conn, date(2024, 6, 30))
    assert _buckets(ledger_store, date(2024, 6, 30), "A") == {
        "Current": 0, "1-30": 0, "31-60": 0, "61-90": 0, "91-120": 100, "120+": 50, "Total": 150}


def test_the_invoice_without_a_schedule_is_unchanged(ledger_store: Store) -> None:
    # B1 80 due 02-09: 66 days at 04-15 -> 61-90; B2 not posted yet.
    assert _buckets(ledger_store, date(2024, 4, 15), "B") == {
        "Current": 0, "1-30": 0, "31-60": 0, "61-90": 80, "91-120": 0, "120+": 0, "Total": 80}


def test_a_past_date_reproduces_the_past(ledger_store: Store) -> None:
    # 2024-02-10, before PAY1: 1st 100 due 01-31, 10 days -> 1-30; 2nd and 3rd current; B1 1 day late.
    assert _buckets(ledger_store, date(2024, 2, 10), "A") == {
        "Current": 200, "1-30": 100, "31-60": 0, "61-90": 0, "91-120": 0, "120+": 0, "Total": 300}
    # 2024-02-15, the payment's day: 1st paid, 50 of the 2nd open (current), 3rd current.
    assert _buckets(ledger_store, date(2024, 2, 15), "A") == {
        "Current": 150, "1-30": 0, "31-60": 0, "61-90": 0, "91-120": 0, "120+": 0, "Total": 150}
    # before the invoice: nothing
    assert aging_buckets(ledger_store, date(2023, 12, 31), by="customer").empty


def test_drill_down_lists_each_open_installment(ledger_store: Store) -> None:
    frame = open_invoices(ledger_store, date(2024, 4, 15))
    mine = frame[frame.document_number == "INV1"]
    assert mine[["due_date", "open_amount", "days_past_due", "bucket"]].astype(
        {"open_amount": float}).to_dict("records") == [
        {"due_date": date(2024, 2, 29), "open_amount": 50.0, "days_past_due": 46, "bucket": "31-60"},
        {"due_date": date(2024, 3, 31), "open_amount": 100.0, "days_past_due": 15, "bucket": "1-30"},
    ]
    assert set(mine.amount.astype(float)) == {300.0}  # the invoice's amount, on each of its installments


@pytest.mark.parametrize("as_of", ["2024-01-01", "2024-01-31", "2024-02-01", "2024-02-14", "2024-02-15",
                                   "2024-03-31", "2024-04-01", "2024-05-01", "2024-06-30"])
def test_buckets_sum_to_open_ar(ledger_store: Store, as_of: str) -> None:
    d = date.fromisoformat(as_of)
    total = _buckets(ledger_store, d)
    assert round(sum(total[k] for k in LABELS), 2) == total["Total"]
    assert total["Total"] == float(portfolio_summary(ledger_store, d).iloc[0]["open_ar"])
    paid = 150 if d >= date(2024, 2, 15) else 0  # the invoice-level open amount is unchanged
    expected = 300 - paid + (80 if d >= date(2024, 1, 10) else 0) + (20 if d >= date(2024, 5, 1) else 0)
    assert total["Total"] == expected


def test_trend_agrees_with_point_in_time_aging(ledger_store: Store) -> None:
    trend = aging_trend(ledger_store, date(2024, 1, 1), date(2024, 6, 30))
    for point in month_ends(date(2024, 1, 1), date(2024, 6, 30)):
        at = trend[trend.month_end == point].set_index("bucket")["amount"].to_dict()
        point_in_time = _buckets(ledger_store, point)
        assert {k: at[k] for k in bucket_labels("due")} == {k: point_in_time[k] for k in LABELS}, point
    # by hand at 2024-03-31: 2nd 50 (31 days -> 31-60), 3rd 100 due that day (Current), B1 80 (51 days)
    march = trend[trend.month_end == date(2024, 3, 31)].set_index("bucket")["amount"].to_dict()
    assert march == {"Current": 100, "1-30": 0, "31-60": 130, "61-90": 0, "91-120": 0, "120+": 0}


def test_a_payment_after_the_schedule_pays_the_oldest_installment_first(ledger_store: Store) -> None:
    b = LedgerBuilder(ledger_store)
    b.entries[("A", "INV1")] = int(ledger_store.read(
        "SELECT entry_id FROM ledger_entries WHERE document_number = 'INV1'").iloc[0]["entry_id"])
    b.currency["A"] = "USD"
    b.payment("A", "PAY2", posted="2024-06-01", amount=120, applies={"INV1": 120})
    # paid 270: 1st and 2nd paid, 30 of the 3rd open (91 days at 06-30 -> 91-120)
    assert _buckets(ledger_store, date(2024, 6, 30), "A") == {
        "Current": 0, "1-30": 0, "31-60": 0, "61-90": 0, "91-120": 30, "120+": 0, "Total": 30}
    trend = aging_trend(ledger_store, date(2024, 1, 1), date(2024, 6, 30))
    june = trend[trend.month_end == date(2024, 6, 30)].set_index("bucket")["amount"].to_dict()
    assert june["91-120"] == 30 + 20 * 0  # B2 (20, due 05-31) is 30 days late: 1-30
    assert june["1-30"] == 20
    assert june["120+"] == 80  # B1, due 02-09


def test_roll_rates_follow_each_installment(ledger_store: Store) -> None:
    # Jan 31: the three installments and B1 are current (380). Feb 29: the 1st is paid, B1 is 1-30.
    # Invoice-level, INV1 (150 open, due 01-31) would have rolled too (230); by installment only B1 rolls.
    rolls = roll_rates(ledger_store, date(2024, 2, 1), date(2024, 4, 30))
    got = {(r.month_end, r.from_bucket): (r.from_balance, r.rolled_balance)
           for r in rolls.itertuples() if r.from_balance}
    assert got == {
        (date(2024, 2, 29), "Current"): (380.0, 80.0),
        (date(2024, 3, 31), "Current"): (150.0, 0.0),  # 2nd (50) jumps to 31-60, 3rd (100) is due that day
        (date(2024, 3, 31), "1-30"): (80.0, 80.0),
        (date(2024, 4, 30), "Current"): (100.0, 100.0),
        (date(2024, 4, 30), "31-60"): (130.0, 130.0),
    }
