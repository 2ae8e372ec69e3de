"""Provision matrix (IFRS 9 simplified approach / CECL) against the published worked examples, to the cent,
and the what-if (DSO cut, roll-rate improvement) by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from analytics.kpis.aging import bucket_labels
from analytics.kpis.provision import (
    loss_rates_from_roll_rates,
    provision_at,
    provision_history,
    provision_matrix,
)
from analytics.kpis.what_if import what_if, what_if_figures
from analytics.ledger.filters import Filters
from analytics.migrations import connect
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder

# IFRScommunity "IFRS 9 example: lifetime ECL for trade receivables using a provision matrix" (Entity A,
# B2C): January sales 100,000; 50,000 paid on time, 27,000 1-30 days late, 15,000 31-60 days late,
# 6,000 61-90 days late, 2,000 never. Ageing at 31 December 20X1: 300,000 not overdue, 140,000 1-30,
# 60,000 31-60, 23,000 61-90, 5,000 91+. ECL 27,567.39 (6,000 + 5,600 + 5,217.39 + 5,750 + 5,000).
IFRSCOMMUNITY_ROLLS = [50_000 / 100_000, 23_000 / 50_000, 8_000 / 23_000, 2_000 / 8_000]
IFRSCOMMUNITY_AGEING = [300_000, 140_000, 60_000, 23_000, 5_000]

# IFRS 9 Illustrative Example 12 (IE74-IE77), Company M: trade receivables CU30 million; provision
# matrix 0.3 % / 1.6 % / 3.6 % / 6.6 % / 10.6 % on 15,000,000 / 7,500,000 / 4,000,000 / 2,500,000 /
# 1,000,000 (current, 1-30, 31-60, 61-90, more than 90 days past due): CU580,000.
IE12_RATES = [0.003, 0.016, 0.036, 0.066, 0.106]
IE12_BALANCES = [15_000_000, 7_500_000, 4_000_000, 2_500_000, 1_000_000]


def test_ifrscommunity_example_from_its_roll_rates_to_the_cent() -> None:
    losses = loss_rates_from_roll_rates(IFRSCOMMUNITY_ROLLS, final_loss_rate=1.0)
    assert [round(x, 6) for x in losses] == [0.02, 0.04, round(2_000 / 23_000, 6), 0.25, 1.0]
    matrix = provision_matrix(IFRSCOMMUNITY_AGEING, losses)
    assert matrix["provision"].tolist() == [6_000.00, 5_600.00, 5_217.39, 5_750.00, 5_000.00, 27_567.39]
    assert matrix["factor"].tolist()[:5] == [1.0] * 5


def test_ifrs9_illustrative_example_12_to_the_cent() -> None:
    matrix = provision_matrix(IE12_BALANCES, IE12_RATES)
    assert matrix["provision"].tolist() == [45_000.0, 120_000.0, 144_000.0, 165_000.0, 106_000.0, 580_000.0]
    # The same loss rates reached as a product of roll rates (each rate / the next older one's).
    rolls = [IE12_RATES[i] / IE12_RATES[i + 1] for i in range(4)]
    again = provision_matrix(IE12_BALANCES, loss_rates_from_roll_rates(rolls, IE12_RATES[-1]))
    assert again["provision"].iloc[-1] == 580_000.0


def test_forward_looking_factor_scales_a_bucket_and_caps_at_100_percent() -> None:
    matrix = provision_matrix(IE12_BALANCES, IE12_RATES, factors=[1.0, 1.5, 1.0, 1.0, 20.0])
    assert matrix["provision"].tolist()[:5] == [45_000.0, 180_000.0, 144_000.0, 165_000.0, 1_000_000.0]
    assert matrix["adjusted_loss_rate"].iloc[4] == 1.0
    with pytest.raises(ValueError, match="factor"):
        provision_matrix(IE12_BALANCES, IE12_RATES, factors=[1.0, -1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="loss rates"):
        provision_matrix(IE12_BALANCES, IE12_RATES[:3])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store for the module: the ledger below is built once and only read."""
    s = connect(str(tmp_path_factory.mktemp("provision") / "ardesk.duckdb"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def cohort_ledger(store: Store) -> LedgerBuilder:
    """The IFRScommunity cohort as a ledger: 100,000 due 1 Feb 2024, paid 50,000 by the end of February,
    27,000 in March, 15,000 in April, 6,000 in May; 2,000 never (91-120 at 31 May, 120+ at 30 June).
    Then the 30 June 2024 ageing of the example, booked in June (so it is in no earlier month end):
    300,000 current, 140,000 1-30, 60,000 31-60, 23,000 61-90 and 3,000 120+ (+ the cohort's 2,000 = 5,000)."""
    b = LedgerBuilder(store).customer("COH").customer("BOOK")
    b.invoice("COH", "JAN", posted="2024-01-20", due="2024-02-01", amount=100_000)
    for doc, posted, amount in [("P1", "2024-02-10", 50_000), ("P2", "2024-03-10", 27_000),
                                ("P3", "2024-04-10", 15_000), ("P4", "2024-05-10", 6_000)]:
        b.payment("COH", doc, posted=posted, amount=amount, applies={"JAN": amount})
    for doc, due, amount in [("CUR", "2024-07-15", 300_000), ("D15", "2024-06-15", 140_000),
                             ("D46", "2024-05-15", 60_000), ("D76", "2024-04-15", 23_000),
                             ("D121", "2024-03-01", 3_000)]:
        b.invoice("BOOK", doc, posted="2024-06-01", due=due, amount=amount)
    return b


def test_provision_from_the_ledger_matches_the_ifrscommunity_example(store: Store,
                                                                     cohort_ledger: LedgerBuilder) -> None:
    matrix = provision_at(store, date(2024, 6, 30), window_months=12)
    assert bucket_labels("due") == ["Current", "1-30", "31-60", "61-90", "91-120", "120+"]
    assert matrix["balance"].tolist() == [300_000.0, 140_000.0, 60_000.0, 23_000.0, 0.0, 5_000.0, 528_000.0]
    assert [round(x, 6) for x in matrix["roll_rate"].tolist()[:6]] == [
        0.5, 0.46, round(8_000 / 23_000, 6), 0.25, 1.0, 1.0]
    assert matrix["provision"].tolist() == [6_000.0, 5_600.0, 5_217.39, 5_750.0, 0.0, 5_000.0, 27_567.39]
    # A forward-looking factor on 1-30 of 1.5 adds half of 5,600.
    assert provision_at(store, date(2024, 6, 30), factors={"1-30": 1.5})["provision"].iloc[-1] == 30_367.39
    with pytest.raises(ValueError, match="no bucket 1-29"):
        provision_at(store, date(2024, 6, 30), factors={"1-29": 1.5})
    # The movement: at 31 May nothing had yet rolled 91-120 -> 120+, so every loss rate was 0.
    history = provision_history(store, date(2024, 5, 1), date(2024, 6, 30))
    assert history.to_dict("records") == [
        {"month_end": date(2024, 5, 31), "balance": 2_000.0, "provision": 0.0, "movement": pytest.approx(float("nan"),
                                                                                                       nan_ok=True)},
        {"month_end": date(2024, 6, 30), "balance": 528_000.0, "provision": 27_567.39, "movement": 27_567.39},
    ]
    # Filters narrow both the rates and the balances: BOOK alone has no roll history, so only its
    # 120+ invoice (3,000, at the final loss rate of 100 %) is provided for.
    assert provision_at(store, date(2024, 6, 30), filters=Filters(customer_id=["BOOK"]))["provision"].iloc[-1] == 3_000.0


def test_what_if_by_hand() -> None:
    # 365,000 of credit sales over 365 days = 1,000 a day; a 5-day cut frees 5,000; at 8 % that is 400 a year.
    # 3,650 written off in 365 days; each of 5 rolls 10 % lower: 3,650 x (1 - 0.9^5) = 3,650 x 0.40951 = 1,494.71.
    w = what_if_figures(365_000, 3_650, 365, days_cut=5, cost_of_capital_pct=8, improvement_pct=10, rolls=5)
    assert (w.average_daily_sales, w.cash_released, w.financing_value) == (1_000.0, 5_000.0, 400.0)
    assert (w.annual_write_offs, w.bad_debt_avoided) == (3_650.0, 1_494.71)
    half_year = what_if_figures(100_000, 1_000, 182, days_cut=3, cost_of_capital_pct=10, improvement_pct=0)
    assert half_year.cash_released == round(3 * 100_000 / 182, 2) and half_year.bad_debt_avoided == 0.0
    assert half_year.annual_write_offs == round(1_000 * 365 / 182, 2)
    for bad in ({"days_cut": -1}, {"improvement_pct": 120}):
        with pytest.raises(ValueError):
            what_if_figures(1, 1, 30, **{"days_cut": 5, "cost_of_capital_pct": 8, "improvement_pct": 10, **bad})


def test_what_if_over_the_ledger(store: Store, cohort_ledger: LedgerBuilder) -> None:
    # January to June 2024 (182 days): 100,000 + 526,000 invoiced, nothing written off.
    w = what_if(store, date(2024, 1, 1), date(2024, 6, 30), days_cut=10, cost_of_capital_pct=5, improvement_pct=20)
    assert (w.days, w.credit_sales, w.write_offs) == (182, 626_000.0, 0.0)
    assert w.cash_released == round(10 * 626_000 / 182, 2)
    assert w.financing_value == round(10 * 626_000 / 182 * 0.05, 2)
