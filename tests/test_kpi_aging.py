"""Aging by hand: bucket edges, partial and split payments, credit notes, unapplied cash, write-offs,
a past as-of date, invoice-date basis, two currencies, filters, drill-down and the month-end trend."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from analytics.kpis.aging import aging_buckets, aging_trend, bucket_labels, open_invoices
from analytics.ledger.filters import Filters, filter_sql
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder

D = date(2024, 6, 30)
LABELS = ["Current", "1-30", "31-60", "61-90", "91-120", "120+"]


def _due(days_past_due: int) -> date:
    return D - timedelta(days=days_past_due)


@pytest.fixture
def ledger(store: Store) -> LedgerBuilder:
    """Customer A (USD): one invoice at each bucket edge; B (EUR at 1.10 on D)."""
    b = LedgerBuilder(store)
    b.customer("A", currency="USD", segment="enterprise", country="US", collector="ann", name="Acme")
    b.customer("B", currency="EUR", segment="mid-market", country="DE", collector="bob", name="Bosch")
    b.fx("EUR", "2024-01-01", 1.05).fx("EUR", "2024-06-01", 1.10).fx("EUR", "2024-07-01", 1.20)
    for days, amount in [(0, 100), (1, 200), (30, 300), (31, 400), (90, 500), (91, 600), (120, 700), (121, 800)]:
        due = _due(days)
        b.invoice("A", f"A{days}", posted=due - timedelta(days=30), due=due, amount=amount)
    b.payment("A", "PAY1", posted="2024-06-10", amount=250, applies={"A31": 150, "A90": 100})  # one payment, two invoices
    b.credit_note("A", "CN1", posted="2024-06-15", amount=50, applies={"A0": 50})  # applied credit note
    b.credit_note("A", "CN2", posted="2024-06-20", amount=30)  # open credit note
    b.payment("A", "PAY2", posted="2024-06-25", amount=70)  # unapplied cash
    b.payment("A", "PAY4", posted="2024-06-28", amount=100, applies={"A1": (100, "2024-07-02")})  # applied after D
    b.write_off("A", "WO1", posted="2024-06-30", amount=600, applies={"A91": 600})  # on D: counts
    b.payment("A", "PAY3", posted="2024-07-05", amount=800, applies={"A121": 800})  # after D: ignored
    b.invoice("B", "B1", posted="2024-05-01", due="2024-05-31", amount=1000)
    b.payment("B", "PB1", posted="2024-06-05", amount=400, applies={"B1": 400})
    b.invoice("B", "B2", posted="2024-06-20", due="2024-07-20", amount=500)
    return b


def _row(values: list[float], unapplied: float, labels: list[str] = LABELS) -> dict:
    total = round(sum(values), 2)
    return dict(zip(labels, values, strict=True)) | {"Total": total, "Unapplied": unapplied,
                                                      "Net balance": round(total + unapplied, 2)}


def test_bucket_labels_come_from_config_edges() -> None:
    assert bucket_labels() == LABELS
    assert bucket_labels("invoice") == ["0-30", "31-60", "61-90", "91-120", "120+"]


def test_aging_by_customer_hand_computed(store: Store, ledger: LedgerBuilder) -> None:
    frame = aging_buckets(store, D, by="customer")
    assert frame.to_dict("records") == [
        {"customer_id": "A", "customer_name": "Acme"} | _row([50, 500, 250, 400, 700, 800], -200),
        {"customer_id": "B", "customer_name": "Bosch"} | _row([550, 660, 0, 0, 0, 0], 0),
    ]
    assert frame.attrs["missing_fx"] == 0


def test_aging_total_and_groupings(store: Store, ledger: LedgerBuilder) -> None:
    total = aging_buckets(store, D)
    assert total.to_dict("records") == [_row([600, 1160, 250, 400, 700, 800], -200)]
    by_currency = aging_buckets(store, D, by="currency")
    assert by_currency[["currency", "Total", "Unapplied"]].to_dict("records") == [
        {"currency": "EUR", "Total": 1210.0, "Unapplied": 0.0},
        {"currency": "USD", "Total": 2700.0, "Unapplied": -200.0},
    ]
    assert aging_buckets(store, D, by="collector")["collector"].tolist() == ["ann", "bob"]
    assert aging_buckets(store, D, by="segment")["segment"].tolist() == ["enterprise", "mid-market"]
    assert aging_buckets(store, D, by="country")["country"].tolist() == ["DE", "US"]


def test_invoice_date_basis(store: Store, ledger: LedgerBuilder) -> None:
    frame = aging_buckets(store, D, basis="invoice")
    labels = bucket_labels("invoice")
    assert frame.to_dict("records") == [_row([600, 1160, 250, 400, 1500], -200, labels)]


def test_past_as_of_ignores_later_payments_and_later_rates(store: Store, ledger: LedgerBuilder) -> None:
    # As of 2024-06-04 nothing of June's credits exists yet; EUR converts at 1.10 (rate of 06-01).
    frame = aging_buckets(store, date(2024, 6, 4), by="customer")
    a = frame[frame.customer_id == "A"].iloc[0]
    assert a["Total"] == 100 + 200 + 300 + 400 + 500 + 600 + 700 + 800
    assert a["Unapplied"] == 0
    b = frame[frame.customer_id == "B"].iloc[0]
    assert b["Total"] == 1100.0  # B1 only (1000 EUR), B2 not posted yet
    # As of 2024-07-05 the later payment and the July allocation count, at the July rate.
    later = aging_buckets(store, date(2024, 7, 5), by="customer").set_index("customer_id")
    assert later.loc["A", "Total"] == 2700 - 800 - 100
    assert later.loc["A", "Unapplied"] == -100  # CN2 and PAY2; PAY4 now applied
    assert later.loc["B", "Total"] == pytest.approx(1100 * 1.20)


def test_filters_narrow_to_matching_customers(store: Store, ledger: LedgerBuilder) -> None:
    only_b = aging_buckets(store, D, Filters(collector="bob"))
    assert only_b.to_dict("records") == [_row([550, 660, 0, 0, 0, 0], 0)]
    both = aging_buckets(store, D, Filters(country=["US", "DE"]))
    assert both["Total"].tolist() == [3910.0]
    nobody = aging_buckets(store, D, Filters(segment="public sector"))
    assert nobody.to_dict("records") == [_row([0, 0, 0, 0, 0, 0], 0)]
    assert aging_buckets(store, D, Filters(customer_id="ZZ"), by="customer").empty


def test_filter_sql_is_parameterised() -> None:
    fragment, params = filter_sql(Filters(segment="x'; DROP TABLE customers; --", country=("US", "DE")))
    assert "DROP" not in fragment
    assert params == {"f_segment_0": "x'; DROP TABLE customers; --", "f_country_0": "US", "f_country_1": "DE"}
    assert filter_sql(Filters()) == ("", {})
    assert Filters(segment=[]).is_empty and Filters(segment="").is_empty


def test_open_invoices_drill_down(store: Store, ledger: LedgerBuilder) -> None:
    cell = open_invoices(store, D, bucket="91-120")
    assert cell[["document_number", "customer_name", "days_past_due", "open_amount"]].to_dict("records") == [
        {"document_number": "A120", "customer_name": "Acme", "days_past_due": 120, "open_amount": 700.0},
    ]
    eur = open_invoices(store, D, Filters(currency="EUR"))
    assert eur[["document_number", "bucket", "open_amount", "open_amount_reporting"]].to_dict("records") == [
        {"document_number": "B1", "bucket": "1-30", "open_amount": 600.0, "open_amount_reporting": 660.0},
        {"document_number": "B2", "bucket": "Current", "open_amount": 500.0, "open_amount_reporting": 550.0},
    ]
    credits = open_invoices(store, D, bucket="Unapplied")
    assert sorted(credits["document_number"]) == ["CN2", "PAY2", "PAY4"]
    assert open_invoices(store, D)["open_amount_reporting"].sum() == pytest.approx(3910)
    with pytest.raises(ValueError, match="bucket must be one of"):
        open_invoices(store, D, bucket="1-29")


def test_leap_year_day_counts(store: Store) -> None:
    b = LedgerBuilder(store).customer("L")
    b.invoice("L", "J30", posted="2023-12-31", due="2024-01-30", amount=10)
    b.invoice("L", "J31", posted="2024-01-01", due="2024-01-31", amount=20)
    frame = aging_buckets(store, date(2024, 3, 1))  # Feb 2024 has 29 days
    assert (frame.loc[0, "1-30"], frame.loc[0, "31-60"]) == (20.0, 10.0)


def test_aging_trend_matches_point_in_time_aging(store: Store, ledger: LedgerBuilder) -> None:
    trend = aging_trend(store, date(2024, 1, 1), date(2024, 7, 10))
    points = sorted(set(trend["month_end"]))
    assert points == [date(2024, m, d) for m, d in [(1, 31), (2, 29), (3, 31), (4, 30), (5, 31), (6, 30)]] + [
        date(2024, 7, 10)]
    for point in points:
        expected = aging_buckets(store, point).iloc[0][LABELS].to_dict()
        got = trend[trend.month_end == point].set_index("bucket")["amount"].to_dict()
        assert got == pytest.approx(expected), point
    june = trend[trend.month_end == D].set_index("bucket")["amount"].to_dict()
    assert june == {"Current": 600, "1-30": 1160, "31-60": 250, "61-90": 400, "91-120": 700, "120+": 800}
