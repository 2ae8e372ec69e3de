"""Invoice registers (the IBM receivables layout, shipped mapping) of 1k, 200k and 1M rows: every
settlement becomes a payment and an allocation, and open AR as of several dates, after the store is
closed and opened again, equals a pandas reading of the file.

200k rows is above DuckDB's row group (122,880 rows): DuckDB 2.0.0 hid rows written by such an
insert from the rest of the transaction and lost them at restart, so the allocations vanished.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics.access.roles import SYSTEM
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import load_mapping
from analytics.kpis.aging import TOTAL, UNAPPLIED, aging_buckets, open_invoices
from analytics.ledger.open_items import portfolio_summary
from analytics.migrations import connect
from tests.export_files import open_ar_from_file, write_register

ROOT = Path(__file__).resolve().parent.parent


def _report_dates(path: Path) -> list[date]:
    """Before the first settlement, two mid-period dates, the last settlement, and after it."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    settled = pd.to_datetime(frame["SettledDate"].replace("", None), format="%m/%d/%Y").dropna()
    invoiced = pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y")
    first, last = settled.min().date(), settled.max().date()
    mid = invoiced.sort_values().iloc[len(invoiced) // 2].date()
    return [first - timedelta(days=1), mid, mid + timedelta(days=45), last, last + timedelta(days=30)]


def _assert_open_ar_matches_the_file(db: Path, path: Path) -> None:
    store = connect(str(db))  # opened again: what was committed survives a restart
    try:
        rows = int(store.scalar("SELECT COUNT(*) FROM ledger_entries WHERE entry_type = 'invoice'"))
        settled = int((pd.read_csv(path, dtype=str, keep_default_na=False)["SettledDate"] != "").sum())
        assert rows == len(pd.read_csv(path, usecols=["invoiceNumber"]))
        assert store.scalar("SELECT COUNT(*) FROM allocations") == settled
        assert store.scalar("SELECT COUNT(*) FROM ledger_entries WHERE entry_type = 'payment'") == settled
        for as_of in _report_dates(path):
            expected_amount, expected_count = open_ar_from_file(path, as_of)
            aging = aging_buckets(store, as_of).iloc[0]
            items = open_invoices(store, as_of)
            got = (round(float(aging[TOTAL]), 2), round(float(items["open_amount"].sum()), 2), len(items),
                   round(float(portfolio_summary(store, as_of).iloc[0]["open_ar"]), 2))
            assert got == (expected_amount, expected_amount, expected_count, expected_amount), as_of
            assert float(aging[UNAPPLIED]) == 0, as_of  # each settlement payment is applied on its own day
    finally:
        store.close()


@pytest.mark.parametrize("rows", [1_000, 200_000])
def test_an_invoice_register_imports_every_settlement_and_open_ar_matches_the_file(tmp_path: Path, rows: int) -> None:
    path = write_register(tmp_path / "register.csv", rows)
    settled = int((pd.read_csv(path, dtype=str, keep_default_na=False)["SettledDate"] != "").sum())
    db = tmp_path / "ardesk.duckdb"
    store = connect(str(db))
    try:
        result = run_import(store, path, load_mapping("ibm_ar_invoice_register"), SYSTEM)
    finally:
        store.close()
    assert (result.status, result.rows_read, result.inserted, result.rejected) == ("ok", rows, rows, 0)
    assert result.allocations == settled > 0
    assert f"{settled:,} settlement(s) turned into a payment and an allocation." in result.summary_lines()
    _assert_open_ar_matches_the_file(db, path)


@pytest.mark.slow
def test_a_million_row_register_imported_by_the_cli_matches_the_file(tmp_path: Path) -> None:
    path = write_register(tmp_path / "register.csv", 1_000_000, seed=11)
    settled = int((pd.read_csv(path, dtype=str, keep_default_na=False)["SettledDate"] != "").sum())
    db = tmp_path / "ardesk.duckdb"
    env = {k: v for k, v in os.environ.items() if k not in {"ARDESK_DB", "ARDESK_INBOX"}}
    out = subprocess.run(
        [sys.executable, "-m", "analytics.cli", "--db", str(db), "import", "invoices", str(path),
         "--mapping", "ibm_ar_invoice_register"], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert "1,000,000 rows read; 1,000,000 inserted, 0 updated, 0 unchanged, 0 rejected." in out.stdout
    assert f"{settled:,} settlement(s) turned into a payment and an allocation." in out.stdout
    _assert_open_ar_matches_the_file(db, path)
