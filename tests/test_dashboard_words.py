"""Dashboards in the users' words: the column-label dictionary, the audit log before → after, the
KPI comparisons against last month and last year, and average days late clipped at 0."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from analytics.access import audit
from analytics.access.roles import Actor
from analytics.access.users import add_user
from analytics.collections.customer_360 import customer_header
from analytics.kpis.columns import COLUMN_LABELS, column_header, with_headers
from analytics.kpis.dso import DSO_COLUMNS
from analytics.kpis.dunning_effectiveness import EFFECTIVENESS_COLUMNS
from analytics.kpis.summary import KPI_TILES, kpi_comparison, kpi_summary, same_day_last_year
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder


def test_every_report_column_has_a_human_header() -> None:
    assert column_header("open_ar", "USD") == "Open AR (USD)"
    assert column_header("paid_7d_pct") == "Paid ≤ 7 d (%)"
    assert column_header("config_id") == "Configuration id"
    assert column_header("dso_standard", "USD") == "DSO, standard (days)"  # not money: no currency
    assert column_header("promise_person") == "Promise person"  # unknown: words, never the raw name
    for column in [*DSO_COLUMNS, *EFFECTIVENESS_COLUMNS]:
        assert column in COLUMN_LABELS, column
    assert all(header != column for column, (header, _) in COLUMN_LABELS.items())
    frame = with_headers(pd.DataFrame(columns=["open_ar", "cei"]), "EUR")
    assert list(frame.columns) == ["Open AR (EUR)", "CEI (%)"]


def test_days_late_are_clipped_at_zero_per_payment(store: Store) -> None:
    b = LedgerBuilder(store)
    b.customer("A")
    b.invoice("A", "I1", posted="2026-01-01", amount=500, due="2026-01-31")
    b.invoice("A", "I2", posted="2026-01-01", amount=500, due="2026-01-31")
    b.payment("A", "P1", posted="2026-01-21", amount=500, applies={"I1": 500})  # 10 days early: 0 late
    b.payment("A", "P2", posted="2026-02-10", amount=500, applies={"I2": 500})  # 10 days late
    head = customer_header(store, "A", date(2026, 3, 31))
    # hand: (500 × 0 + 500 × 10) / 1000 = 5.0 (unclipped it would read 0.0)
    assert head["avg_days_late"] == 5.0
    # independently, over the source rows with pandas
    rows = store.read("SELECT a.amount, a.allocation_date, i.due_date FROM allocations a "
                      "JOIN ledger_entries i ON i.entry_id = a.to_entry_id")
    late = (pd.to_datetime(rows.allocation_date) - pd.to_datetime(rows.due_date)).dt.days.clip(lower=0)
    assert head["avg_days_late"] == round(float((late * rows.amount).sum() / rows.amount.sum()), 1)


def test_the_audit_log_reads_as_before_and_after(store: Store) -> None:
    assert audit.describe_changes('{"role": "viewer", "active": true}', '{"role": "cfo", "active": true}') \
        == "role: viewer → cfo"
    assert audit.describe_changes(None, '{"name": "Ana", "email": null}') == "name: Ana\nemail: (empty)"
    assert audit.describe_changes('{"locked_until": null}', '{"locked_until": "2026-01-01T10:00:00"}') \
        == "locked_until: (empty) → 2026-01-01T10:00:00"
    assert audit.describe_changes('{"a": 1}', '{"b": [1, 2]}') == "a: 1 → (empty)\nb: (empty) → 1, 2"
    assert audit.describe_changes(None, None) == ""
    assert audit.describe_changes("not json", None) == "value: not json"

    add_user(store, Actor("system", "admin"), "ana", "Ana Lopez", "cfo")
    with store.write() as conn:
        audit.record(conn, Actor("ana", "cfo"), "target.set", "collector_target", "abe/calls",
                     {"target": 10}, {"target": 12})
        audit.record(conn, Actor("gone", "cfo"), "note.add", "customer", None, None, {"text": "hi"})
    lines = audit.readable_audit(store, audit.search_audit(store))
    mine = lines[lines.action == "target.set"].iloc[0]
    assert (mine.who, mine.changes, mine.entity_id, mine.detail) == ("Ana Lopez (ana)", "target: 10 → 12",
                                                                     "abe/calls", "")
    gone = lines[lines.action == "note.add"].iloc[0]
    assert (gone.who, gone.changes, gone.entity_id) == ("gone", "text: hi", "")
    shown = lines.astype(str).to_numpy().ravel()
    assert not any(v in ("None", "nan") or v.startswith("{") for v in shown)


@pytest.fixture
def two_years(store: Store) -> Store:
    b = LedgerBuilder(store)
    b.customer("A", collector="abe")
    b.invoice("A", "Y1", posted="2025-02-01", amount=600, due="2025-03-03")
    b.invoice("A", "Y2", posted="2025-03-10", amount=1000, due="2025-04-09")
    b.payment("A", "P1", posted="2025-03-20", amount=600, applies={"Y1": 600})
    b.invoice("A", "N1", posted="2026-02-10", amount=300, due="2026-03-12")
    b.invoice("A", "N2", posted="2026-03-05", amount=400, due="2026-04-04")
    return store


def test_kpi_comparison_against_last_month_and_last_year(two_years: Store) -> None:
    as_of = date(2026, 3, 31)
    table = kpi_comparison(two_years, as_of).set_index("kpi")
    assert list(table.index) == list(KPI_TILES)
    # hand: 31 Mar 2026 open Y2 1000 + N1 300 + N2 400 = 1700; 28 Feb 2026: 1300; 31 Mar 2025: Y2 1000
    assert table.loc["open_ar", ["value", "last_month", "last_year"]].tolist() == [1700, 1300, 1000]
    assert table.loc["open_ar", ["change_month", "change_year"]].tolist() == [400, 700]
    # overdue on 31 Mar 2026: Y2 1000 + N1 300 = 1300 of 1700; a year before: nothing overdue yet
    assert table.loc["overdue_pct", "value"] == pytest.approx(1300 / 1700 * 100, abs=0.01)
    assert table.loc["overdue_pct", "last_year"] == 0
    # the same numbers as the summary the tiles always showed, for every KPI
    now, before = kpi_summary(two_years, as_of).iloc[0], kpi_summary(two_years, as_of).iloc[1]
    year = kpi_summary(two_years, date(2025, 3, 31)).iloc[0]
    for key in KPI_TILES:
        for column, expected in (("value", now[key]), ("last_month", before[key]), ("last_year", year[key])):
            assert np.isclose(table.loc[key, column], float(expected), equal_nan=True), (key, column)
    assert table.loc["open_ar", "last_year_as_of"] == date(2025, 3, 31)


def test_no_comparison_with_a_year_before_the_ledger(two_years: Store) -> None:
    table = kpi_comparison(two_years, date(2025, 12, 31)).set_index("kpi")
    assert table["last_year"].isna().all() and table["change_year"].isna().all()
    assert same_day_last_year(date(2028, 2, 29)) == date(2027, 2, 28)


def test_the_cli_prints_the_comparison_and_filters_by_sales_rep(two_years: Store,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from analytics.cli.main import main

    with two_years.write() as conn:
        conn.exec_driver_sql("UPDATE customers SET sales_rep = 'sam'")
    for rep, open_ar in (("sam", 1700.0), ("nobody", 0.0)):
        assert main(["--db", two_years.url, "report", "kpis", "--as-of", "2026-03-31", "--compare",
                     "--sales-rep", rep, "--format", "json"]) == 0
        rows = {r["kpi"]: r for r in json.loads(capsys.readouterr().out)}
        assert list(rows) == list(KPI_TILES)
        assert rows["open_ar"]["value"] == open_ar
    assert rows["open_ar"]["last_month"] == 0.0
