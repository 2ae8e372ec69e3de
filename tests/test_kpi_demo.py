"""Smoke test on realistic demo data: every report runs and the reports agree with each other."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.kpis.aging import aging_buckets, aging_trend, bucket_labels, open_invoices
from analytics.kpis.bad_debt import bad_debt_monthly, roll_rates
from analytics.kpis.collector_kpis import collector_kpis
from analytics.kpis.dso import days_to_pay, dso_monthly
from analytics.kpis.dunning_effectiveness import dunning_effectiveness, recovery_curve
from analytics.kpis.summary import kpi_summary, top_overdue_customers
from analytics.ledger.filters import Filters
from analytics.ledger.open_items import portfolio_summary
from analytics.store.connection import Store

AS_OF, START = date(2026, 10, 31), date(2025, 11, 1)


@pytest.mark.slow  # builds the session demo store when no other test has
def test_reports_agree_on_demo_data(demo_store: Store) -> None:
    total = aging_buckets(demo_store, AS_OF).iloc[0]
    assert total["Total"] > 0 and total["Unapplied"] <= 0
    assert sum(total[label] for label in bucket_labels()) == pytest.approx(total["Total"], abs=0.1)
    portfolio = portfolio_summary(demo_store, AS_OF).iloc[0]
    assert total["Total"] == pytest.approx(portfolio["open_ar"], abs=0.01)
    assert total["Unapplied"] == pytest.approx(portfolio["unapplied_credits"], abs=0.01)
    by_customer = aging_buckets(demo_store, AS_OF, by="customer")
    assert by_customer["Total"].sum() == pytest.approx(total["Total"], abs=1)
    assert open_invoices(demo_store, AS_OF)["open_amount_reporting"].sum() == pytest.approx(total["Total"], abs=1)

    summary = kpi_summary(demo_store, AS_OF)
    assert summary["open_ar"].iloc[0] == pytest.approx(total["Total"], abs=0.01)
    series = dso_monthly(demo_store, START, AS_OF)
    assert len(series) == 12 and series["ar_end"].iloc[-1] == pytest.approx(total["Total"], abs=0.01)
    assert (series["dso_standard"] > 0).all() and (series["bpdso"] <= series["dso_standard"] + 0.01).all()
    trend = aging_trend(demo_store, START, AS_OF)
    last = trend[trend.month_end == AS_OF].set_index("bucket")["amount"]
    assert last.to_dict() == pytest.approx(total[bucket_labels()].to_dict(), abs=0.05)

    # every segment's aging adds up to the total
    assert sum(aging_buckets(demo_store, AS_OF, Filters(segment=s)).iloc[0]["Total"]
               for s in aging_buckets(demo_store, AS_OF, by="segment")["segment"]) == pytest.approx(
        total["Total"], abs=1)

    assert not top_overdue_customers(demo_store, AS_OF).empty
    assert not days_to_pay(demo_store, START, AS_OF).empty
    bad = bad_debt_monthly(demo_store, START, AS_OF)
    assert bad["ar_end"].tolist() == pytest.approx(series["ar_end"].tolist(), abs=0.01)
    rates = roll_rates(demo_store, START, AS_OF)
    assert ((rates["roll_rate"].dropna() >= 0) & (rates["roll_rate"].dropna() <= 100.01)).all()
    dunning = dunning_effectiveness(demo_store, START, AS_OF)
    assert not dunning.empty and (dunning["paid_30d_pct"].dropna() <= 100.01).all()
    assert not recovery_curve(demo_store, START, AS_OF, max_days=30).empty
    team = collector_kpis(demo_store, START, AS_OF)
    assert not team.empty and team["customers"].sum() > 0
