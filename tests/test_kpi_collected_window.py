"""Collector KPIs, collected_14d at the edges of its window: a payment 0 to 14 days after one of the
collector's actions counts (once, however many actions cover it), 15 days or a day before does not.
The windows here start inside a 15-day block and exactly on one (the SQL joins by blocks)."""

from __future__ import annotations

from datetime import date, datetime

from analytics.kpis.collector_kpis import collector_kpis
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder


def test_collected_within_14_days_edges(store: Store) -> None:
    b = LedgerBuilder(store)
    b.customer("Z", collector="zed").customer("Y", collector="amy")
    b.invoice("Z", "I1", posted="2024-04-01", due="2024-05-01", amount=5000)
    b.activity("Z", "call", at=datetime(2024, 5, 13, 10, 0), author="zed")  # window May 13-27
    b.activity("Z", "note", at=datetime(2024, 5, 13, 15, 0), author="zed")  # same day: counted once
    b.activity("Z", "email", at=datetime(2024, 5, 25, 23, 30), author="amy")  # window May 25 - Jun 8
    b.activity("Z", "promise", at=datetime(2024, 6, 1, 9, 0), author="zed", amount=1, due="2024-06-02")  # no action
    for document, posted, amount in [("P0", "2024-05-12", 10), ("P1", "2024-05-13", 100), ("P2", "2024-05-27", 200),
                                     ("P3", "2024-05-28", 400), ("P4", "2024-06-08", 800), ("P5", "2024-06-09", 1600)]:
        b.payment("Z", document, posted=posted, amount=amount)
    frame = collector_kpis(store, date(2024, 5, 1), date(2024, 6, 30))
    assert frame[["collector", "collected_14d"]].to_dict("records") == [
        {"collector": "amy", "collected_14d": 200.0 + 400.0 + 800.0},  # P2 (2 days), P3 (3), P4 (14)
        {"collector": "zed", "collected_14d": 100.0 + 200.0},  # P1 (same day), P2 (14 days); P3 is 15
    ]
    june = collector_kpis(store, date(2024, 6, 1), date(2024, 6, 30))  # only payments in the period
    assert june[["collector", "collected_14d"]].to_dict("records") == [
        {"collector": "amy", "collected_14d": 800.0}, {"collector": "zed", "collected_14d": 0.0}]
