"""Benchmark: import N ledger rows from Parquet into an empty store, then an incremental sync of
10k changed rows from a SQLite ERP database into that store.

    python bench/import.py --rows 10000000 --changed 10000 --repeat 3

Targets (README, "Importing your ledger"): 10M rows under 60 s; the 10k-row sync under 5 s.
Each repeat uses a fresh store; medians are reported with the time of day.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.access.roles import SYSTEM  # noqa: E402
from analytics.ingest.imports import run_import  # noqa: E402
from analytics.ingest.mapping import Mapping  # noqa: E402
from analytics.ingest.sync import sync_once  # noqa: E402
from analytics.migrations import connect  # noqa: E402

MAPPING = Mapping(dataset="invoices")  # the Parquet file uses AR Desk's own column names
SYNC_MAPPING = Mapping(dataset="invoices", sync={"table": "invoices", "watermark_column": "updated_at"})


def make_parquet(path: Path, rows: int, customers: int = 100_000) -> None:
    """Typed Parquet (DATE, DECIMAL) of `rows` invoices over `customers` customers, generated in DuckDB."""
    duckdb.sql(f"""
        COPY (
            SELECT 'C' || LPAD(CAST(i % {customers} AS VARCHAR), 6, '0') AS customer_id,
                   'INV-' || LPAD(CAST(i AS VARCHAR), 9, '0') AS document_number,
                   CAST(DATE '2022-01-01' + CAST(i % 1600 AS INTEGER) AS DATE) AS posting_date,
                   CAST(DATE '2022-01-01' + CAST(i % 1600 AS INTEGER) + 30 AS DATE) AS due_date,
                   CAST(10 + (hash(i) % 500000) / 100.0 AS DECIMAL(18,2)) AS amount,
                   'USD' AS currency
            FROM range({rows}) t(i)
        ) TO '{path}' (FORMAT parquet)""")


def make_changes(path: Path, changed: int, rows: int, round_no: int) -> str:
    """A SQLite ERP table with `changed` existing invoices whose amount changed."""
    path.unlink(missing_ok=True)
    step = max(1, rows // changed)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (customer_id TEXT, document_number TEXT, posting_date TEXT, due_date TEXT, "
                   "amount TEXT, currency TEXT, updated_at TEXT)")
        src = duckdb.sql(f"""
            SELECT 'C' || LPAD(CAST(i % 100000 AS VARCHAR), 6, '0'),
                   'INV-' || LPAD(CAST(i AS VARCHAR), 9, '0'),
                   CAST(CAST(DATE '2022-01-01' + CAST(i % 1600 AS INTEGER) AS DATE) AS VARCHAR),
                   CAST(CAST(DATE '2022-01-01' + CAST(i % 1600 AS INTEGER) + 30 AS DATE) AS VARCHAR),
                   CAST(CAST(20000 + {round_no} + i % 97 AS DECIMAL(18,2)) AS VARCHAR), 'USD',
                   '2026-11-0{1 + round_no} 10:00:00'
            FROM range(0, {step * changed}, {step}) t(i)""").fetchall()
        db.executemany("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?, ?)", src)
    return f"sqlite:///{path}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--changed", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{datetime.now():%Y-%m-%d %H:%M} import bench: {args.rows:,} rows, {args.changed:,} changed, "
          f"{args.repeat} repeats")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        parquet = work / "ledger.parquet"
        t = time.perf_counter()
        make_parquet(parquet, args.rows)
        print(f"  parquet generated in {time.perf_counter() - t:.1f} s ({parquet.stat().st_size / 2**20:.0f} MiB)")
        imports_s, syncs_s = [], []
        for r in range(args.repeat):
            db = work / f"store{r}.duckdb"
            store = connect(str(db))
            t = time.perf_counter()
            result = run_import(store, parquet, MAPPING, SYSTEM)
            elapsed = time.perf_counter() - t
            assert result.inserted == args.rows and result.rejected == 0, result.summary_lines()
            imports_s.append(elapsed)
            print(f"  import {r + 1}: {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s")
            url = make_changes(work / "erp.db", args.changed, args.rows, r)
            t = time.perf_counter()
            [synced] = sync_once(store, url, SYNC_MAPPING, SYSTEM)
            elapsed = time.perf_counter() - t
            assert synced.updated == args.changed, synced.summary_lines()
            syncs_s.append(elapsed)
            print(f"  sync {r + 1}: {args.changed:,} changed rows into {args.rows:,} entries in {elapsed:.2f} s")
            store.close()
            db.unlink()
        imp, syn = statistics.median(imports_s), statistics.median(syncs_s)
        print(f"median import: {imp:.1f} s ({args.rows / imp:,.0f} rows/s); median sync: {syn:.2f} s "
              f"({datetime.now():%H:%M} UTC)")


if __name__ == "__main__":
    main()
