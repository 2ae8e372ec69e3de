"""Property tests (hypothesis): the open-as-of-D rule holds for any ledger and any date.

- the buckets sum to open AR;
- open AR as of D = invoices posted by D - allocations to them dated by D (an independent
  Python oracle), both point in time (aging) and through the month-end engine (trend, DSO);
- adding entries dated after D changes nothing as of D;
- open amounts read back from `open_now` equal the allocation sums on any date.
One DuckDB file per test, emptied before each example (a fresh file per example is too slow).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.kpis.aging import aging_buckets, aging_trend, bucket_labels
from analytics.kpis.dso import dso_monthly
from analytics.ledger.fx import reporting_params
from analytics.ledger.monthly_summaries import refresh_monthly_summaries
from analytics.ledger.months import month_ends
from analytics.ledger.open_items import (
    activity_horizon,
    current_open_amounts,
    open_amounts_sql,
    open_items_sql,
)
from analytics.ledger.settlement import refresh_settled_on
from analytics.migrations import connect
from analytics.store.connection import Store, bulk_insert

pytestmark = pytest.mark.slow  # about 20 s for the three properties x 40 examples

BASE = date(2024, 1, 1)
RATES = {"USD": 1.0, "EUR": 1.1}
CUSTOMERS = {"U": "USD", "E": "EUR"}

invoices_st = st.lists(
    st.tuples(st.sampled_from(sorted(CUSTOMERS)), st.integers(0, 200), st.integers(0, 60), st.integers(1, 500_000)),
    min_size=1, max_size=12)
payments_st = st.lists(
    st.tuples(st.integers(0, 11), st.integers(1, 100), st.integers(0, 120), st.integers(0, 15)), max_size=12)
credits_st = st.lists(st.tuples(st.sampled_from(sorted(CUSTOMERS)), st.integers(0, 240), st.integers(1, 100_000)),
                      max_size=3)


@pytest.fixture(scope="module")
def prop_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = connect(str(Path(tmp_path_factory.mktemp("prop")) / "prop.duckdb"))
    with s.write() as conn:
        bulk_insert(conn, "customers", pd.DataFrame([
            {"customer_id": c, "name": c, "segment": "enterprise", "currency": cur, "payment_terms_days": 30,
             "created_at": pd.Timestamp("2020-01-01")} for c, cur in CUSTOMERS.items()]))
        bulk_insert(conn, "fx_rates", pd.DataFrame([{"rate_date": date(2023, 1, 1), "currency": "EUR", "rate": 1.1}]))
    yield s
    s.close()


class Ledger:
    """The generated ledger as plain rows, written to the store, with a Python oracle."""

    def __init__(self, invoices, payments, credits) -> None:
        self.entries: list[dict] = []
        self.allocations: list[dict] = []
        for i, (cust, posted, terms, cents) in enumerate(invoices):
            self._entry(cust, "invoice", f"I{i}", BASE + timedelta(days=posted), cents / 100,
                        BASE + timedelta(days=posted + terms))
        invoice_rows = list(self.entries)
        remaining = {row["entry_id"]: row["amount"] for row in invoice_rows}
        for j, (index, percent, delay, later) in enumerate(payments):
            inv = invoice_rows[index % len(invoice_rows)]
            amount = round(min(remaining[inv["entry_id"]], inv["amount"] * percent / 100), 2)
            if amount <= 0:
                continue
            remaining[inv["entry_id"]] = round(remaining[inv["entry_id"]] - amount, 2)
            posted = inv["posting_date"] + timedelta(days=delay)
            pay = self._entry(inv["customer_id"], "payment", f"P{j}", posted, -amount, None)
            self._allocate(pay, inv, amount, posted + timedelta(days=later))
        for k, (cust, posted, cents) in enumerate(credits):
            self._entry(cust, "credit_note", f"C{k}", BASE + timedelta(days=posted), -cents / 100, None)

    def _entry(self, customer: str, kind: str, doc: str, posted: date, amount: float, due: date | None) -> dict:
        row = {"entry_id": len(self.entries) + 1, "customer_id": customer, "entry_type": kind, "document_number": doc,
               "posting_date": posted, "due_date": due, "amount": amount, "currency": CUSTOMERS[customer]}
        self.entries.append(row)
        return row

    def _allocate(self, credit: dict, invoice: dict, amount: float, on: date) -> None:
        self.allocations.append({"allocation_id": len(self.allocations) + 1, "customer_id": invoice["customer_id"],
                                 "from_entry_id": credit["entry_id"], "to_entry_id": invoice["entry_id"],
                                 "amount": amount, "allocation_date": on})

    def write(self, store: Store) -> None:
        with store.write() as conn:
            conn.exec_driver_sql("DELETE FROM allocations")
            conn.exec_driver_sql("DELETE FROM ledger_entries")
            bulk_insert(conn, "ledger_entries", pd.DataFrame(self.entries).astype({"due_date": "datetime64[s]"}))
            if self.allocations:
                bulk_insert(conn, "allocations", pd.DataFrame(self.allocations))
            refresh_settled_on(conn)
            refresh_monthly_summaries(conn)

    def open_ar(self, as_of: date) -> float:
        """Oracle: invoices posted by D minus allocations to them dated by D, in the reporting currency."""
        total = 0.0
        for inv in self.entries:
            if inv["amount"] > 0 and inv["posting_date"] <= as_of:
                applied = sum(a["amount"] for a in self.allocations
                              if a["to_entry_id"] == inv["entry_id"] and a["allocation_date"] <= as_of)
                total += (inv["amount"] - applied) * RATES[inv["currency"]]
        return total


common = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@common
@given(invoices=invoices_st, payments=payments_st, credits=credits_st, offset=st.integers(0, 260))
def test_buckets_sum_to_open_ar_and_match_the_oracle(prop_store: Store, invoices, payments, credits, offset) -> None:
    ledger = Ledger(invoices, payments, credits)
    ledger.write(prop_store)
    as_of = BASE + timedelta(days=offset)
    row = aging_buckets(prop_store, as_of).iloc[0]
    assert sum(row[label] for label in bucket_labels()) == pytest.approx(row["Total"], abs=0.06)
    assert row["Total"] == pytest.approx(ledger.open_ar(as_of), abs=0.01)
    by_customer = aging_buckets(prop_store, as_of, by="customer")
    # Each row is rounded to the cent (error <= 0.005), so the per-customer sum may differ from the
    # rounded total by half a cent per row, plus the total's own half cent.
    assert by_customer["Net balance"].sum() == pytest.approx(row["Net balance"], abs=0.005 * (len(by_customer) + 1) + 1e-9)


@common
@given(invoices=invoices_st, payments=payments_st, credits=credits_st)
def test_month_end_engine_matches_the_oracle(prop_store: Store, invoices, payments, credits) -> None:
    ledger = Ledger(invoices, payments, credits)
    ledger.write(prop_store)
    start, end = date(2024, 1, 1), date(2024, 9, 12)
    trend = aging_trend(prop_store, start, end).groupby("month_end")["amount"].sum()
    dso = dso_monthly(prop_store, start, end).set_index("month_end")["ar_end"]
    for point in month_ends(start, end):
        expected = ledger.open_ar(point)
        assert trend[point] == pytest.approx(expected, abs=0.06), point
        assert dso[point] == pytest.approx(expected, abs=0.01), point


@common
@given(invoices=invoices_st, payments=payments_st, credits=credits_st, offset=st.integers(0, 200),
       later=st.lists(st.tuples(st.integers(1, 60), st.integers(1, 100_000)), min_size=1, max_size=4))
def test_entries_after_as_of_change_nothing(prop_store: Store, invoices, payments, credits, offset, later) -> None:
    ledger = Ledger(invoices, payments, credits)
    ledger.write(prop_store)
    as_of = BASE + timedelta(days=offset)
    before = aging_buckets(prop_store, as_of, by="customer")
    before_trend = aging_trend(prop_store, BASE, as_of)
    open_invoices = [e for e in ledger.entries if e["amount"] > 0]
    for n, (days, cents) in enumerate(later):
        when = as_of + timedelta(days=days)
        ledger._entry("U", "invoice", f"L{n}", when, cents / 100, when + timedelta(days=30))
        target = open_invoices[n % len(open_invoices)]
        credit = ledger._entry(target["customer_id"], "payment", f"LP{n}", when, -0.01, None)
        ledger._allocate(credit, target, 0.01, when)
    ledger.write(prop_store)
    pd.testing.assert_frame_equal(aging_buckets(prop_store, as_of, by="customer"), before)
    pd.testing.assert_frame_equal(aging_trend(prop_store, BASE, as_of), before_trend)


@common
@given(invoices=invoices_st, payments=payments_st, credits=credits_st, after=st.integers(0, 400))
def test_on_and_after_the_horizon_open_now_equals_the_allocation_sums(prop_store: Store, invoices, payments,
                                                                       credits, after) -> None:
    ledger = Ledger(invoices, payments, credits)
    ledger.write(prop_store)
    with prop_store.engine.connect() as conn:
        horizon = activity_horizon(conn)
        as_of = (horizon or BASE) + timedelta(days=after)
        assert current_open_amounts(conn, as_of)

    def per_currency(current: bool) -> list[dict]:
        items, _ = open_amounts_sql(current=current)
        return prop_store.read(f"""SELECT currency, SUM(open_amount) AS amount, COUNT(*) AS items,
            SUM(days_past_due) AS days FROM ({items}) i GROUP BY currency ORDER BY currency""",  # noqa: S608
            {"as_of": as_of}).to_dict("records")

    assert per_currency(current=True) == per_currency(current=False)
    if horizon is not None:
        with prop_store.engine.connect() as conn:
            assert not current_open_amounts(conn, horizon - timedelta(days=1))


@common
@given(invoices=invoices_st, payments=payments_st, credits=credits_st, days=st.integers(0, 420))
def test_open_amounts_read_back_from_now_equal_the_allocation_sums_on_any_date(prop_store: Store, invoices, payments,
                                                                                credits, days) -> None:
    """Open as of D read back from `open_now` (plus the allocations dated after D) gives exactly the
    items and amounts of the allocations dated by D, before, on and after the horizon."""
    Ledger(invoices, payments, credits).write(prop_store)
    as_of = BASE + timedelta(days=days)

    def items(path: str) -> list[dict]:
        sql, _ = open_items_sql(path=path)
        return prop_store.read(f"SELECT * FROM ({sql}) i ORDER BY entry_id", reporting_params(as_of)).to_dict("records")

    def per_currency(path: str) -> list[dict]:
        sql, _ = open_amounts_sql(path=path, debit=True)
        return prop_store.read(f"""SELECT currency, debit, SUM(open_amount) AS amount, COUNT(*) AS items,
            SUM(days_past_due) AS days, SUM(age_days) AS age FROM ({sql}) i GROUP BY currency, debit
            ORDER BY currency, debit""", {"as_of": as_of}).to_dict("records")  # noqa: S608

    assert items("read back") == items("allocations")
    assert per_currency("read back") == per_currency("allocations")
