"""`dunning_stage_results`: each stage an invoice reached and what was paid after, kept by every writer.

Its SQL definition is `stage_results.refresh_stage_results`; the ledger builder, the imports, the
outreach that records stage runs and the demo generator refresh what they touch. Whatever path
wrote the data, the table must equal a recompute from scratch, and dunning effectiveness for a past
period must not move when later payments arrive.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import SYSTEM
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.kpis.dunning_effectiveness import dunning_effectiveness, recovery_curve
from analytics.ledger.stage_results import refresh_stage_results
from analytics.migrations import SCHEMA_VERSION, connect
from analytics.store.connection import Store, read_df
from tests.ledger_builder import LedgerBuilder

COLUMNS = ("document_number, r.stage_no, r.run_date, r.open_amount, r.paid_7d, r.paid_14d, r.paid_30d, "
           "r.paid_after, r.paid_on, r.next_run, r.paid_until_next")


def stage_rows(store: Store, conn: sa.Connection | None = None) -> list[dict]:
    sql = (f"SELECT {COLUMNS} FROM dunning_stage_results r JOIN ledger_entries e ON e.entry_id = r.entry_id "  # noqa: S608
           "ORDER BY document_number, r.stage_no")
    frame = pd.DataFrame(conn.execute(sa.text(sql)).mappings().all()) if conn is not None else store.read(sql)
    if frame.empty:
        return []
    for col in ("run_date", "paid_on", "next_run"):
        frame[col] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in frame[col]]
    for col in ("open_amount", "paid_7d", "paid_14d", "paid_30d", "paid_after", "paid_until_next"):
        frame[col] = frame[col].astype(float)
    frame["stage_no"] = frame["stage_no"].astype(int)
    return frame.to_dict("records")


def recomputed(store: Store) -> list[dict]:
    """The table as `refresh_stage_results` builds it from scratch (rolled back afterwards)."""
    with store.engine.connect() as conn:
        conn.execute(sa.text("DELETE FROM dunning_stage_results"))
        refresh_stage_results(conn)
        rows = stage_rows(store, conn)
        conn.rollback()
    return rows


def row(doc: str, stage: int, run: str, open_amount: float, paid_7d: float = 0.0, paid_14d: float = 0.0,
        paid_30d: float = 0.0, paid_after: float = 0.0, paid_on: str | None = None, next_run: str | None = None,
        paid_until_next: float | None = None) -> dict:
    """One expected row; without a next reach, what the stage recovered is everything paid after it."""
    return {"document_number": doc, "stage_no": stage, "run_date": date.fromisoformat(run),
            "open_amount": open_amount, "paid_7d": paid_7d, "paid_14d": paid_14d, "paid_30d": paid_30d,
            "paid_after": paid_after, "paid_on": date.fromisoformat(paid_on) if paid_on else None,
            "next_run": date.fromisoformat(next_run) if next_run else None,
            "paid_until_next": paid_after if paid_until_next is None else paid_until_next}


def reminded(store: Store) -> LedgerBuilder:
    b = LedgerBuilder(store)
    b.dunning_config(1, name="Standard", stages=[("Reminder", 1, "email"), ("Letter", 15, "letter"),
                                                 ("Agency", 30, "escalation")])
    b.customer("D", dunning_config_id=1)
    b.invoice("D", "N1", posted="2024-01-31", due="2024-03-01", amount=1000)
    b.invoice("D", "N2", posted="2024-01-31", due="2024-03-01", amount=500)
    b.invoice("D", "N3", posted="2024-02-09", due="2024-03-10", amount=200)
    b.payment("D", "Q0", posted="2024-03-08", amount=50, applies={"N3": 50})  # before its stage
    b.dunning_run("D", "N1", config_id=1, stage_no=1, run_date="2024-03-02")
    b.dunning_run("D", "N1", config_id=1, stage_no=1, run_date="2024-03-09")  # a repeat: not a new reach
    b.dunning_run("D", "N2", config_id=1, stage_no=1, run_date="2024-03-02")
    b.dunning_run("D", "N3", config_id=1, stage_no=1, run_date="2024-03-11")
    b.dunning_run("D", "N2", config_id=1, stage_no=2, run_date="2024-03-16", outcome="failed")  # not reached
    b.payment("D", "Q1", posted="2024-03-05", amount=400, applies={"N1": 400})  # 3 days after
    b.payment("D", "Q2", posted="2024-03-20", amount=600, applies={"N1": 600})  # 18 days: paid in full
    b.credit_note("D", "CN1", posted="2024-03-21", amount=150, applies={"N3": 150})  # 10 days: paid in full
    b.write_off("D", "W1", posted="2024-04-30", amount=300, applies={"N2": 300})
    b.payment("D", "Q3", posted="2024-05-10", amount=200, applies={"N2": 200})  # not "paid": written off first
    return b


def test_one_row_per_stage_reached_with_what_was_open_and_paid(store: Store) -> None:
    reminded(store)
    assert stage_rows(store) == [
        row("N1", 1, "2024-03-02", 1000.0, paid_7d=400.0, paid_14d=400.0, paid_30d=1000.0, paid_after=1000.0,
            paid_on="2024-03-20"),
        row("N2", 1, "2024-03-02", 500.0, paid_after=200.0),
        row("N3", 1, "2024-03-11", 150.0, paid_14d=150.0, paid_30d=150.0, paid_after=150.0, paid_on="2024-03-21"),
    ]
    assert stage_rows(store) == recomputed(store)


def test_imports_refresh_the_invoices_they_touch(store: Store, tmp_path: Path) -> None:
    b = reminded(store)
    b.invoice("D", "N4", posted="2024-02-15", due="2024-03-15", amount=300)
    b.dunning_run("D", "N4", config_id=1, stage_no=1, run_date="2024-03-16")
    payments = Mapping(dataset="payments", columns={"customer_id": "cust", "document_number": "doc",
                                                    "posting_date": "date", "amount": "amount"})
    allocations = Mapping(dataset="allocations", columns={"from_document": "pay", "to_document": "inv",
                                                          "amount": "amt", "allocation_date": "on"})
    (tmp_path / "p.csv").write_text("cust,doc,date,amount\nD,P-9,2024-03-14,100.00\nD,P-10,2024-03-20,50.00\n")
    (tmp_path / "a.csv").write_text("pay,inv,amt,on\nP-9,N4,100.00,2024-03-14\nP-10,N4,50.00,2024-03-20\n")
    run_import(store, tmp_path / "p.csv", payments, SYSTEM)
    run_import(store, tmp_path / "a.csv", allocations, SYSTEM)  # P-9 is dated before the reminder
    n4 = [r for r in stage_rows(store) if r["document_number"] == "N4"]
    assert n4 == [row("N4", 1, "2024-03-16", 200.0, paid_7d=50.0, paid_14d=50.0, paid_30d=50.0, paid_after=50.0)]
    (tmp_path / "b.csv").write_text("pay,inv,amt,on\nP-10,N4,50.00,2024-04-20\n")  # the ERP corrects the date
    run_import(store, tmp_path / "b.csv", allocations, SYSTEM)
    n4 = [r for r in stage_rows(store) if r["document_number"] == "N4"]
    assert n4 == [row("N4", 1, "2024-03-16", 200.0, paid_30d=0.0, paid_after=50.0)]
    assert stage_rows(store) == recomputed(store)


def test_a_past_period_does_not_move_when_later_payments_arrive(store: Store) -> None:
    b = reminded(store)
    start, end = date(2024, 3, 1), date(2024, 3, 31)
    before = dunning_effectiveness(store, start, end), recovery_curve(store, start, end, max_days=40)
    b.payment("D", "Q9", posted="2024-04-15", amount=100, applies={"N2": 100})
    b.dunning_run("D", "N2", config_id=1, stage_no=2, run_date="2024-04-16")
    after = dunning_effectiveness(store, start, end), recovery_curve(store, start, end, max_days=40)
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[1], after[1])
    first = before[0].iloc[0]
    # By 03-31: N1 paid 1000 of 1000, N2 nothing of 500, N3 150 of 150 (each 7-day window closed).
    assert (first["invoices"], first["amount"], first["recovered"]) == (3, 1650.0, 1150.0)
    assert first["paid_14d_pct"] == round(550 / 1650 * 100, 2)
    assert first["median_days_to_pay"] == 14.0  # 18 days (N1) and 10 days (N3)
    # By 05-31, each payment once at the last stage before it: N2's Q9 (04-15) at its reminder, Q3
    # (05-10) at the letter of 04-16
    later = dunning_effectiveness(store, start, date(2024, 5, 31))
    assert later["recovered"].tolist() == [1000.0 + 150.0 + 100.0, 200.0]


def test_each_reach_keeps_its_next_reach_and_what_it_recovered_until_then(store: Store) -> None:
    b = reminded(store)
    b.payment("D", "Q9", posted="2024-04-15", amount=100, applies={"N2": 100})
    b.dunning_run("D", "N2", config_id=1, stage_no=2, run_date="2024-04-16")  # N2's reminder now has a next reach
    n2 = [r for r in stage_rows(store) if r["document_number"] == "N2"]
    # Q9 (04-15) before the letter of 04-16 belongs to the reminder; Q3 (05-10) to the letter
    assert n2 == [row("N2", 1, "2024-03-02", 500.0, paid_after=300.0, next_run="2024-04-16", paid_until_next=100.0),
                  row("N2", 2, "2024-04-16", 400.0, paid_30d=200.0, paid_after=200.0)]
    assert stage_rows(store) == recomputed(store)
    # What dunning effectiveness reads from the rows at the horizon is what it sums from the allocations before it
    at_horizon = dunning_effectiveness(store, date(2024, 3, 1), date(2024, 5, 10))
    assert at_horizon["recovered"].tolist() == [1000.0 + 150.0 + 100.0, 200.0]
    assert dunning_effectiveness(store, date(2024, 3, 1), date(2024, 5, 9))["recovered"].tolist() == [1250.0, 0.0]


def test_the_demo_generator_fills_exactly_what_the_sql_definition_gives(demo_store: Store) -> None:
    rows = demo_store.scalar("SELECT COUNT(*) FROM dunning_stage_results")
    assert rows == demo_store.scalar("""SELECT COUNT(*) FROM (SELECT DISTINCT entry_id, config_id, config_version,
        stage_no FROM dunning_runs WHERE outcome IN ('sent', 'done')) reached""")
    assert rows > 1000
    current = demo_store.read("SELECT * FROM dunning_stage_results ORDER BY entry_id, config_id, stage_no")
    with demo_store.engine.connect() as conn:
        conn.execute(sa.text("DELETE FROM dunning_stage_results"))
        refresh_stage_results(conn)
        again = read_df(conn, "SELECT * FROM dunning_stage_results ORDER BY entry_id, config_id, stage_no")
        conn.rollback()
    pd.testing.assert_frame_equal(current, again)


def test_upgrading_a_v3_store_fills_the_table(tmp_path: Path) -> None:
    path = tmp_path / "v3.duckdb"
    store = connect(str(path))
    reminded(store)
    expected = stage_rows(store)
    with store.write() as conn:  # make it a store as v3 left it
        conn.execute(sa.text("DROP TABLE dunning_stage_results"))
        conn.execute(sa.text("UPDATE schema_migrations SET version = 3 WHERE version = :latest"),
                     {"latest": SCHEMA_VERSION})
    store.close()
    upgraded = connect(str(path))
    assert upgraded.scalar("SELECT MAX(version) FROM schema_migrations") == SCHEMA_VERSION
    assert stage_rows(upgraded) == expected
    upgraded.close()
