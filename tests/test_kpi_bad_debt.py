"""Bad debt %, rolling 12 months, 90+ balance, roll rates (exact per due date) and the KPI summary."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from analytics.kpis.bad_debt import bad_debt_monthly, roll_rates
from analytics.kpis.summary import kpi_summary, top_overdue_customers
from analytics.ledger.filters import Filters
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder
from tests.test_kpi_aging import ledger as aging_ledger  # noqa: F401 - fixture
from tests.test_kpi_dso import ledger  # noqa: F401 - fixture


def test_bad_debt_monthly_and_rolling(store: Store, ledger: LedgerBuilder) -> None:  # noqa: F811
    frame = bad_debt_monthly(store, date(2024, 1, 1), date(2024, 3, 31), Filters(customer_id="A"))
    assert frame.to_dict("records") == [
        {"month_end": date(2024, 1, 31), "write_offs": 0.0, "credit_sales": 3100.0, "bad_debt_pct": 0.0,
         "write_offs_12m": 0.0, "credit_sales_12m": 3100.0, "bad_debt_pct_12m": 0.0, "ar_end": 3100.0,
         "ar_90_plus": 0.0},
        {"month_end": date(2024, 2, 29), "write_offs": 0.0, "credit_sales": 2900.0, "bad_debt_pct": 0.0,
         "write_offs_12m": 0.0, "credit_sales_12m": 6000.0, "bad_debt_pct_12m": 0.0, "ar_end": 2900.0,
         "ar_90_plus": 0.0},
        {"month_end": date(2024, 3, 31), "write_offs": 500.0, "credit_sales": 6200.0,
         "bad_debt_pct": round(500 / 6200 * 100, 2), "write_offs_12m": 500.0, "credit_sales_12m": 12200.0,
         "bad_debt_pct_12m": round(500 / 12200 * 100, 2), "ar_end": 7600.0, "ar_90_plus": 0.0},
    ]
    everyone = bad_debt_monthly(store, date(2024, 3, 1), date(2024, 3, 31))
    # 12 months to March 2024 include B's November 2023 invoice and C's March invoice.
    assert everyone["credit_sales_12m"].tolist() == [1000 + 3100 + 2900 + 6200 + 100]
    assert everyone["ar_90_plus"].tolist() == [1000.0]


def test_roll_rates_follow_each_due_date(store: Store) -> None:
    b = LedgerBuilder(store).customer("R")
    for doc, due, amount in [("X1", "2024-01-20", 1000), ("X2", "2024-01-31", 500), ("X3", "2024-02-15", 200),
                             ("X4", "2024-01-01", 400), ("Y", "2024-01-30", 100)]:
        b.invoice("R", doc, posted=date.fromisoformat(due) - timedelta(days=30), due=due, amount=amount)
    b.payment("R", "P1", posted="2024-02-10", amount=300, applies={"X1": 300})
    b.payment("R", "P2", posted="2024-02-14", amount=200, applies={"X3": 200})
    frame = roll_rates(store, date(2024, 2, 1), date(2024, 2, 29))
    assert frame.head(2).to_dict("records") == [
        # Current at 01-31: X2 500 + X3 200; X3 was paid before it fell due.
        {"month_end": date(2024, 2, 29), "from_bucket": "Current", "to_bucket": "1-30", "from_balance": 700.0,
         "rolled_balance": 500.0, "roll_rate": round(500 / 700 * 100, 2)},
        # 1-30 at 01-31: X1 1000, X4 400, Y 100; Y is 30 days past due on 02-29, still 1-30.
        {"month_end": date(2024, 2, 29), "from_bucket": "1-30", "to_bucket": "31-60", "from_balance": 1500.0,
         "rolled_balance": 1100.0, "roll_rate": round(1100 / 1500 * 100, 2)},
    ]
    assert frame["from_bucket"].tolist() == ["Current", "1-30", "31-60", "61-90", "91-120"]
    assert frame["roll_rate"].iloc[2:].isna().all() and (frame["from_balance"].iloc[2:] == 0).all()


def test_kpi_summary_current_and_previous(store: Store, ledger: LedgerBuilder) -> None:  # noqa: F811
    frame = kpi_summary(store, date(2024, 3, 31), Filters(customer_id="A"))
    assert frame.to_dict("records") == [
        {"period": "current", "as_of": date(2024, 3, 31), "period_start": date(2024, 3, 1), "open_ar": 7600.0,
         "overdue_ar": 1400.0, "overdue_pct": round(1400 / 7600 * 100, 2), "dso": 38.0, "bpdso": 31.0, "add": 7.0,
         "cei": round(1500 / 2900 * 100, 2), "bad_debt_pct": round(500 / 12200 * 100, 2), "share_90_plus": 0.0,
         "credit_sales": 6200.0, "collections": 1000.0},
        {"period": "previous", "as_of": date(2024, 2, 29), "period_start": date(2024, 2, 1), "open_ar": 2900.0,
         "overdue_ar": 0.0, "overdue_pct": 0.0, "dso": 29.0, "bpdso": 29.0, "add": 0.0, "cei": 100.0,
         "bad_debt_pct": 0.0, "share_90_plus": 0.0, "credit_sales": 2900.0, "collections": 3100.0},
    ]
    mid_month = kpi_summary(store, date(2024, 3, 15), Filters(customer_id="A"))
    assert mid_month[["as_of", "period_start", "open_ar"]].to_dict("records") == [
        {"as_of": date(2024, 3, 15), "period_start": date(2024, 3, 1), "open_ar": 2900 - 1000 + 6200.0},
        {"as_of": date(2024, 2, 29), "period_start": date(2024, 2, 1), "open_ar": 2900.0},
    ]


def test_top_overdue_customers(store: Store, aging_ledger: LedgerBuilder) -> None:  # noqa: F811
    frame = top_overdue_customers(store, date(2024, 6, 30))
    assert frame.to_dict("records") == [
        {"customer_id": "A", "customer_name": "Acme", "segment": "enterprise", "collector": "ann",
         "open_ar": 2700.0, "overdue_ar": 2650.0, "over_90_ar": 1500.0, "oldest_days_past_due": 121,
         "unapplied": -200.0},
        {"customer_id": "B", "customer_name": "Bosch", "segment": "mid-market", "collector": "bob",
         "open_ar": 1210.0, "overdue_ar": 660.0, "over_90_ar": 0.0, "oldest_days_past_due": 30, "unapplied": 0.0},
    ]
    assert top_overdue_customers(store, date(2024, 6, 30), n=1)["customer_id"].tolist() == ["A"]


@pytest.mark.parametrize("as_of", [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)])
def test_summary_open_ar_matches_aging(store: Store, ledger: LedgerBuilder, as_of: date) -> None:  # noqa: F811
    from analytics.kpis.aging import aging_buckets

    assert kpi_summary(store, as_of).loc[0, "open_ar"] == aging_buckets(store, as_of).loc[0, "Total"]
