"""DSO standard and countback, BPDSO, ADD, CEI, % over 90 and days to pay, by hand (leap February)."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.kpis.dso import days_to_pay, dso_monthly
from analytics.ledger.filters import Filters
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder


@pytest.fixture
def ledger(store: Store) -> LedgerBuilder:
    b = LedgerBuilder(store)
    b.customer("A", segment="enterprise").customer("B", segment="public sector").customer("C", segment="mid-market")
    b.invoice("A", "I1", posted="2024-01-10", due="2024-02-09", amount=3100)
    b.invoice("A", "I2", posted="2024-02-15", due="2024-03-16", amount=2900)
    b.payment("A", "P1", posted="2024-02-20", amount=3100, applies={"I1": 3100})
    b.invoice("A", "I3", posted="2024-03-05", due="2024-04-04", amount=6200)
    b.payment("A", "P2", posted="2024-03-10", amount=1000, applies={"I2": 1000})
    b.write_off("A", "W1", posted="2024-03-31", amount=500, applies={"I2": 500})
    b.invoice("B", "OLD", posted="2023-11-01", due="2023-12-01", amount=1000)  # never paid
    b.invoice("C", "I4", posted="2024-03-01", due="2024-03-31", amount=100)
    b.payment("C", "P3", posted="2024-03-20", amount=100, applies={"I4": 100})
    return b


def _pick(frame, columns):
    return [{c: row[c] for c in columns} for row in frame.to_dict("records")]


def test_dso_cei_for_one_customer(store: Store, ledger: LedgerBuilder) -> None:
    frame = dso_monthly(store, date(2024, 1, 1), date(2024, 3, 31), Filters(customer_id="A"))
    columns = ["month_end", "days", "ar_start", "ar_end", "current_ar_end", "overdue_ar_end", "credit_sales",
               "collections", "write_offs", "dso_standard", "dso_countback", "bpdso", "add", "pct_over_90"]
    assert _pick(frame, columns) == [
        dict(zip(columns, values, strict=True)) for values in [
            (date(2024, 1, 31), 31, 0.0, 3100.0, 3100.0, 0.0, 3100.0, 0.0, 0.0, 31.0, 31.0, 31.0, 0.0, 0.0),
            (date(2024, 2, 29), 29, 3100.0, 2900.0, 2900.0, 0.0, 2900.0, 3100.0, 0.0, 29.0, 29.0, 29.0, 0.0, 0.0),
            (date(2024, 3, 31), 31, 2900.0, 7600.0, 6200.0, 1400.0, 6200.0, 1000.0, 500.0, 38.0, 45.0, 31.0, 7.0,
             0.0),
        ]
    ]
    # CEI = (AR start + sales - AR end) / (AR start + sales - current AR end) x 100; Jan is 0/0.
    assert frame["cei"].isna().tolist() == [True, False, False]
    assert frame["cei"].tolist()[1:] == [100.0, round(1500 / 2900 * 100, 2)]


def test_over_90_edge_and_countback_across_months(store: Store, ledger: LedgerBuilder) -> None:
    frame = dso_monthly(store, date(2024, 1, 1), date(2024, 3, 31), Filters(segment=["enterprise", "public sector"]))
    # B's invoice is 90 days past due on 2024-02-29 (not over 90) and 121 on 2024-03-31.
    assert frame["over_90_ar_end"].tolist() == [0.0, 0.0, 1000.0]
    assert frame["pct_over_90"].tolist() == [0.0, 0.0, round(1000 / 8600 * 100, 2)]
    # 8600 against March sales 6200 (31 days), then 2400 of February's 2900 (29 days).
    assert frame["dso_countback"].tolist()[-1] == round(31 + 2400 / 2900 * 29, 2)
    assert frame["dso_standard"].tolist()[-1] == round(8600 / 6200 * 31, 2)


def test_month_to_date_last_point_and_no_sales(store: Store, ledger: LedgerBuilder) -> None:
    frame = dso_monthly(store, date(2024, 4, 1), date(2024, 4, 15), Filters(customer_id="A"))
    assert _pick(frame, ["month_end", "period_start", "days", "ar_end", "credit_sales"]) == [
        {"month_end": date(2024, 4, 15), "period_start": date(2024, 4, 1), "days": 15, "ar_end": 7600.0,
         "credit_sales": 0.0}]
    assert frame["dso_standard"].isna().all() and frame["dso_countback"].isna().all()


def test_days_to_pay_weighted_and_excludes_write_offs(store: Store, ledger: LedgerBuilder) -> None:
    frame = days_to_pay(store, date(2024, 1, 1), date(2024, 3, 31))
    assert frame.iloc[1:].to_dict("records") == [
        {"month_end": date(2024, 2, 29), "invoices_paid": 1, "amount_paid": 3100.0, "avg_days_to_pay": 41.0,
         "avg_days_late": 11.0, "paid_late_pct": 100.0},
        {"month_end": date(2024, 3, 31), "invoices_paid": 1, "amount_paid": 100.0, "avg_days_to_pay": 19.0,
         "avg_days_late": 0.0, "paid_late_pct": 0.0},
    ]
    assert frame.iloc[0][["month_end", "invoices_paid", "amount_paid"]].tolist() == [date(2024, 1, 31), 0, 0.0]
    assert frame.iloc[0][["avg_days_to_pay", "avg_days_late", "paid_late_pct"]].isna().all()
    # Two invoices paid in one month: weighted by amount.
    b = ledger
    b.invoice("C", "I5", posted="2024-03-01", due="2024-03-31", amount=300)
    b.payment("C", "P5", posted="2024-03-29", amount=300, applies={"I5": 300})  # 28 days
    march = days_to_pay(store, date(2024, 3, 1), date(2024, 3, 31), Filters(customer_id="C"))
    assert march["avg_days_to_pay"].tolist() == [(100 * 19 + 300 * 28) / 400]
