"""Monthly summaries (`monthly_balances`, `monthly_flows`) kept by every write path, on both engines.

After each write, the kept rows must equal a recompute from scratch (`refresh_monthly_summaries`
over everything, rolled back), and the monthly reports read from them must equal the same reports
read from the ledger (the summaries switched off by deleting their state row), to the cent.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from analytics.access.roles import SYSTEM, Actor
from analytics.collections.charges import book_charges
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.ingest.sync import sync_once
from analytics.kpis.aging import aging_trend
from analytics.kpis.bad_debt import bad_debt_monthly
from analytics.kpis.dso import dso_monthly
from analytics.kpis.summary import kpi_summary
from analytics.ledger.filters import ALL, Filters
from analytics.ledger.monthly_summaries import (
    drop_monthly_summaries,
    refresh_monthly_summaries,
    summaries_cover,
    summarised_points,
    summary_state,
)
from analytics.ledger.months import month_ends
from analytics.migrations import connect
from analytics.store.connection import Store
from tests.test_import_installments import (  # the same file layouts
    ALLOCATIONS,
    INSTALLMENTS,
    INVOICES,
    PAYMENTS,
)

WRITE_OFFS = Mapping(dataset="write-offs", columns={"posting_date": "date"})
ADJUSTMENTS = Mapping(dataset="adjustments")
TABLES = {"monthly_balances": ["month_end", "customer_id", "currency", "bucket", "open_amount"],
          "monthly_flows": ["month_end", "customer_id", "currency", "credit_sales", "collections", "write_offs"],
          "portfolio_monthly_balances": ["month_end", "currency", "bucket", "open_amount"],
          "portfolio_monthly_flows": ["month_end", "currency", "credit_sales", "collections", "write_offs"]}


def kept(conn: sa.Connection) -> dict[str, list[tuple]]:
    out = {}
    for table, columns in TABLES.items():
        rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(columns[:4])}"))  # noqa: S608
        out[table] = [tuple(pd.Timestamp(v).date() if i == 0 else (float(v) if not isinstance(v, str) else v)
                            for i, v in enumerate(r)) for r in rows.fetchall()]
    return out


def portfolio_of(rows: list[tuple], values: int) -> list[tuple]:
    """Per-customer summary rows summed over the customers (the last `values` columns), in Python;
    rows whose sums are all 0 left out, as the portfolio tables do."""
    sums: dict[tuple, list[float]] = {}
    for r in rows:
        key = (r[0], *r[2:len(r) - values])
        sums[key] = [a + b for a, b in zip(sums.get(key, [0.0] * values), r[len(r) - values:], strict=True)]
    return sorted((*k, *(round(v, 2) for v in vs)) for k, vs in sums.items() if any(round(v, 2) for v in vs))


def assert_kept_equals_recompute(store: Store) -> None:
    """The kept summaries equal a recompute from scratch, and the portfolio tables equal the
    per-customer ones summed in Python."""
    with store.engine.connect() as conn:
        before = kept(conn)
        refresh_monthly_summaries(conn)
        after = kept(conn)
        conn.rollback()
    assert before == after
    assert before["portfolio_monthly_balances"] == portfolio_of(before["monthly_balances"], 1)
    assert before["portfolio_monthly_flows"] == portfolio_of(before["monthly_flows"], 3)


Case = tuple[date, date, Filters]  # start, end, filters


def assert_reports_equal_the_ledger(store: Store, cases: list[Case]) -> None:
    """Reports read through the summaries (month ends; a mid-month end: the month ends plus the
    ledger for that last point) equal the ledger path exactly, for every case."""
    with store.engine.connect() as conn:
        for _, end, _ in cases:  # the summaries answer every month end of each case
            points = month_ends(date(end.year - 2, 1, 1), end)
            assert summarised_points(conn, points, need_edge=90, consecutive=True) >= len(points) - 1

    def reports() -> list[pd.DataFrame]:
        return [frame for start, end, filters in cases
                for frame in (dso_monthly(store, start, end, filters), bad_debt_monthly(store, start, end, filters),
                              aging_trend(store, start, end, filters), kpi_summary(store, end, filters))]

    summarised = reports()
    with store.write() as conn:
        state = pd.DataFrame(conn.execute(sa.text("SELECT * FROM monthly_summary_state")).fetchall())
        conn.execute(sa.text("DELETE FROM monthly_summary_state"))
    try:
        ledger = reports()
    finally:
        with store.write() as conn:
            conn.execute(sa.text("INSERT INTO monthly_summary_state (aging_edges, first_month_end, through) "
                                 "VALUES (:aging_edges, :first_month_end, :through)"), state.iloc[0].to_dict())
    for a, b in zip(summarised, ledger, strict=True):
        assert_frame_equal(a, b)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_import_path_keeps_the_summaries(store_on_each_engine: Store, tmp_path: Path) -> None:
    store = store_on_each_engine
    steps = [
        ("inv.csv", "cust,doc,date,due,amount\nC1,INV1,2024-01-01,2024-01-31,300.00\n"
                    "C1,INV2,2024-01-10,2024-02-09,80.00\nC2,INV3,2024-02-15,2024-03-16,500.00\n", INVOICES),
        ("pay.csv", "cust,doc,date,amount\nC1,PAY1,2024-02-20,150.00\nC2,PAY2,2024-04-02,200.00\n", PAYMENTS),
        ("alloc.csv", "from,to,amount,on\nPAY1,INV1,120.00,2024-02-20\nPAY1,INV2,30.00,2024-02-21\n"
                      "PAY2,INV3,200.00,2024-04-02\n", ALLOCATIONS),
        ("alloc2.csv", "from,to,amount,on\nPAY1,INV1,100.00,2024-03-05\n", ALLOCATIONS),  # changed amount and date
        ("sched.csv", "Invoice,Due,Amount\nINV3,2024-03-16,200.00\nINV3,2024-05-16,300.00\n", INSTALLMENTS),
        ("wo.csv", "document_number,amount,date,reason\nINV2,50.00,2024-05-31,uncollectable\n", WRITE_OFFS),
        # a re-import moves INV1 to C2 with a new amount, and a new invoice reaches a later month
        ("inv2.csv", "cust,doc,date,due,amount\nC2,INV1,2024-01-01,2024-01-31,310.00\n"
                     "C3,INV4,2024-07-03,2024-08-02,90.00\n", INVOICES),
        ("adj.csv", "customer_id,document_number,posting_date,amount\nC3,PEN-1,2024-07-10,15.00\n", ADJUSTMENTS),
    ]
    for name, text, mapping in steps:
        result = run_import(store, write(tmp_path, name, text), mapping, SYSTEM)
        assert result.rejected == 0, (name, result)
        assert_kept_equals_recompute(store)
    # the ERP sync (a drop folder) goes through the same merges
    folder = tmp_path / "erp"
    folder.mkdir()
    write(folder, "pay3.csv", "cust,doc,date,amount\nC3,PAY3,2024-07-20,40.00\n")
    (result,) = sync_once(store, str(folder), PAYMENTS, SYSTEM)
    assert result.rejected == 0, result
    assert_kept_equals_recompute(store)
    # charges: interest and fees booked as debit adjustments in a later month (August)
    assert not book_charges(store, Actor("ana", "collector"), date(2024, 8, 20), annual_rate=0.10, fee=10).empty
    assert_kept_equals_recompute(store)
    with store.engine.connect() as conn:
        rows = kept(conn)
        assert summary_state(conn).through == date(2024, 8, 31)
    # hand-computed at 2024-01-31: C1 owes INV2 80 (current); INV1 (310 now) moved to C2, due that day: current
    jan = [r for r in rows["monthly_balances"] if r[0] == date(2024, 1, 31)]
    assert jan == [(date(2024, 1, 31), "C1", "USD", 0.0, 80.0), (date(2024, 1, 31), "C2", "USD", 0.0, 310.0)]
    assert (date(2024, 5, 31), "C1", "USD", 0.0, 0.0, 50.0) in rows["monthly_flows"]  # the write-off, positive
    assert (date(2024, 2, 29), "C1", "USD", 0.0, 150.0, 0.0) in rows["monthly_flows"]  # PAY1 collected
    assert (date(2024, 7, 31), "C3", "USD", 90.0, 40.0, 0.0) in rows["monthly_flows"]  # INV4, and PAY3 by sync
    assert_reports_equal_the_ledger(store, [
        (date(2024, 1, 1), date(2024, 8, 20), ALL),  # month to date: July from the summaries, then the ledger
        (date(2024, 1, 1), date(2024, 6, 30), Filters(customer_id="C2")),
        (date(2024, 3, 1), date(2024, 7, 12), Filters(customer_id="C3")),
    ])
    # summaries dropped by a writer that skips the refresh: the next write of one customer rebuilds all
    with store.write() as conn:
        drop_monthly_summaries(conn)
        conn.execute(sa.text("DELETE FROM monthly_balances WHERE customer_id = 'C1'"))  # stale rows go too
    with store.engine.connect() as conn:
        assert summarised_points(conn, [date(2024, 6, 30)]) == 0  # the ledger answers meanwhile
    result = run_import(store, write(tmp_path, "inv3.csv", "cust,doc,date,due,amount\nC2,INV5,2024-08-25,"
                                                           "2024-09-24,60.00\n"), INVOICES, SYSTEM)
    assert result.rejected == 0
    assert_kept_equals_recompute(store)
    with store.engine.connect() as conn:
        assert summaries_cover(conn, [date(2024, 6, 30)]) and any(r[1] == "C1" for r in kept(conn)["monthly_balances"])


@pytest.fixture(scope="module")
def demo_copy(demo_store_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One writable copy of the session demo store for this module (the tests put it back as found)."""
    path = tmp_path_factory.mktemp("summaries") / "demo.duckdb"
    shutil.copy(demo_store_file, path)
    store = connect(str(path))
    yield store
    store.close()


def test_the_demo_store_summaries_equal_a_recompute_and_the_ledger_reports(demo_copy: Store) -> None:
    assert_kept_equals_recompute(demo_copy)
    assert_reports_equal_the_ledger(demo_copy, [
        (date(2025, 1, 1), date(2026, 9, 30), ALL),
        (date(2025, 11, 1), date(2026, 10, 17), Filters(segment="enterprise")),  # month to date, a customer attribute
    ])


def test_a_point_after_the_months_kept_falls_back_to_the_ledger(demo_copy: Store) -> None:
    with demo_copy.engine.connect() as conn:
        assert summaries_cover(conn, [date(2026, 9, 30)], need_edge=90)
        assert not summaries_cover(conn, [date(2026, 9, 15)])  # not a month end
        assert not summaries_cover(conn, [date(2027, 1, 31)])  # after the last activity's month
        months = [date(2026, 7, 31), date(2026, 8, 31), date(2026, 9, 30)]
        assert summarised_points(conn, months) == 3
        assert summarised_points(conn, [*months, date(2026, 10, 9)]) == 3  # the month to date from the ledger
        assert summarised_points(conn, [date(2026, 9, 15), *months]) == 0  # a mid-month point first: the ledger
        assert summarised_points(conn, [date(2026, 7, 31), date(2026, 9, 30)], consecutive=True) == 0
        assert summarised_points(conn, [*months, date(2027, 1, 31)]) == 0  # a month end not kept


def test_an_import_that_moves_the_last_activity_earlier_keeps_the_portfolio_sums(store_on_each_engine: Store,
                                                                                  tmp_path: Path) -> None:
    """A scoped refresh whose last activity moves to an earlier month drops the later month ends from
    the per-customer and the portfolio summaries alike."""
    store = store_on_each_engine
    for name, text in (("a.csv", "cust,doc,date,due,amount\nC1,INV1,2024-01-05,2024-02-04,100.00\n"
                                 "C2,INV2,2024-03-10,2024-04-09,40.00\n"),
                       ("b.csv", "cust,doc,date,due,amount\nC2,INV2,2024-02-10,2024-03-11,45.00\n")):
        assert run_import(store, write(tmp_path, name, text), INVOICES, SYSTEM).rejected == 0
        assert_kept_equals_recompute(store)
    with store.engine.connect() as conn:
        assert summary_state(conn).through == date(2024, 2, 29)
        rows = kept(conn)
    # at 02-29: INV2 (45, due 03-11) current; INV1 (due 02-04) 25 days past due, in 1-30
    assert rows["portfolio_monthly_balances"] == [(date(2024, 1, 31), "USD", 0.0, 100.0),
                                                  (date(2024, 2, 29), "USD", 0.0, 45.0),
                                                  (date(2024, 2, 29), "USD", 1.0, 100.0)]
