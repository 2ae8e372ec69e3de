"""Benchmark: a team's own records at scale: 1M contacts and 1M adjustments imported from CSV into a
store holding 100k customers and their invoices, then each file imported again (a no-op).

    python bench/team_datasets.py --rows 1000000 --customers 100000 --repeat 3

Figures in the README ("Benchmarks"). Each repeat uses a fresh store; medians are reported with the
time of day (the machine may be shared).
"""

from __future__ import annotations

import argparse
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
from analytics.migrations import connect  # noqa: E402


def make_files(folder: Path, rows: int, customers: int) -> dict[str, Path]:
    """CSV files in AR Desk's own column names: invoices (one per customer), contacts, adjustments."""
    files = {name: folder / f"{name}.csv" for name in ("invoices", "contacts", "adjustments")}
    duckdb.sql(f"""COPY (
        SELECT 'C' || LPAD(CAST(i AS VARCHAR), 7, '0') AS customer_id, 'INV-' || i AS document_number,
               DATE '2025-01-01' + CAST(i % 300 AS INTEGER) AS posting_date,
               DATE '2025-01-31' + CAST(i % 300 AS INTEGER) AS due_date,
               CAST(100 + i % 9000 AS DECIMAL(18, 2)) AS amount, 'USD' AS currency
        FROM range({customers}) t(i)) TO '{files["invoices"]}' (HEADER)""")
    duckdb.sql(f"""COPY (
        SELECT 'C' || LPAD(CAST(i % {customers} AS VARCHAR), 7, '0') AS customer_id, 'Contact ' || i AS name,
               'ap' || i || '@example.com' AS email, '+1 555 ' || LPAD(CAST(i % 10000 AS VARCHAR), 4, '0') AS phone,
               CASE i % 3 WHEN 0 THEN 'accounts_payable' WHEN 1 THEN 'finance_manager' ELSE 'purchasing' END AS role,
               'email' AS preferred_channel, CASE WHEN i < {customers} THEN 'yes' ELSE 'no' END AS is_primary
        FROM range({rows}) t(i)) TO '{files["contacts"]}' (HEADER)""")
    duckdb.sql(f"""COPY (
        SELECT 'C' || LPAD(CAST(i % {customers} AS VARCHAR), 7, '0') AS customer_id, 'ADJ-' || i AS document_number,
               DATE '2025-11-01' + CAST(i % 30 AS INTEGER) AS posting_date,
               CAST(1 + i % 250 AS DECIMAL(18, 2)) AS amount,
               CASE WHEN i % 5 = 0 THEN 'credit' ELSE 'debit' END AS direction, 'late-payment fee' AS reason
        FROM range({rows}) t(i)) TO '{files["adjustments"]}' (HEADER)""")
    return files


def timed(store, dataset: str, path: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    result = run_import(store, path, Mapping(dataset=dataset), SYSTEM)
    return time.perf_counter() - started, result.inserted, result.rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = make_files(folder, args.rows, args.customers)
        for run in range(args.repeat):
            store = connect(str(folder / f"bench{run}.duckdb"))
            timed(store, "invoices", files["invoices"])
            for dataset in ("contacts", "adjustments"):
                seconds, inserted, rejected = timed(store, dataset, files[dataset])
                assert inserted == args.rows and rejected == 0, (dataset, inserted, rejected)
                figures.setdefault(f"{dataset} first import", []).append(seconds)
                seconds, inserted, _ = timed(store, dataset, files[dataset])
                assert inserted == 0, (dataset, inserted)
                figures.setdefault(f"{dataset} re-import (no-op)", []).append(seconds)
            store.close()
    print(f"{datetime.now():%Y-%m-%d %H:%M} · {args.rows:,} rows per file, {args.customers:,} customers, "
          f"median of {args.repeat}")
    for name, values in figures.items():
        print(f"  {name:32} {statistics.median(values):7.1f} s  ({args.rows / statistics.median(values):,.0f} rows/s)")


if __name__ == "__main__":
    main()
