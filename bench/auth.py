"""What sign-in and assignments cost on a large store: the per-page-load checks and a bulk assignment.

    python bench/auth.py --audit-lines 1000000 --customers 100000

Builds a throwaway DuckDB file with that many audit lines and customers, then times (median of 5)
the two queries every page load runs (`users_version`, `session_check`), one failed sign-in, and
assigning a whole segment to one collector.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.access.roles import SYSTEM
from analytics.access.sign_in import SignInRules, attempt_sign_in, session_check
from analytics.access.users import add_user, users_version
from analytics.collections.assignments import assign_customers
from analytics.migrations import connect
from analytics.store.connection import bulk_insert


def _median(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audit-lines", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = connect(str(Path(tmp) / "bench.duckdb"))
        add_user(store, SYSTEM, "ana", "Ana", "collector", password="bench-password")
        add_user(store, SYSTEM, "bo", "Bo", "collector", password="bench-password")
        rng = np.random.default_rng(1)
        n = args.audit_lines
        audit = pd.DataFrame({
            "audit_id": np.arange(-n, 0),  # below the sequence, which keeps numbering new lines
            "logged_at": pd.date_range("2026-01-01", periods=n, freq="s"),
            "actor": rng.choice(["ana", "bo", "system"], n), "action": rng.choice(["activity.add", "import.row", "customer.assign"], n),
            "entity": "customer", "entity_id": pd.Series(rng.integers(0, args.customers, n)).map("C{:06d}".format),
        })
        customers = pd.DataFrame({
            "customer_id": [f"C{i:06d}" for i in range(args.customers)], "name": "x",
            "segment": rng.choice(["enterprise", "mid-market", "small business", "public sector"], args.customers),
            "country": rng.choice(["DE", "FR", "NL", "US"], args.customers), "currency": "EUR",
            "created_at": datetime(2026, 1, 1), "collector": "bo",
        })
        with store.write() as conn:
            bulk_insert(conn, "audit_log", audit)
            bulk_insert(conn, "customers", customers)
        rules = SignInRules(max_failed_logins=10**6, lockout=timedelta(minutes=15))
        issued = datetime.now() - timedelta(minutes=1)
        rows = [
            ("users_version (every page load)", _median(lambda: users_version(store))),
            ("session_check (every page load)", _median(lambda: session_check(store, "ana", issued, rules=rules))),
            ("failed sign-in (bcrypt + counter + audit)", _median(
                lambda: attempt_sign_in(store, "ana", "wrong-password", rules=rules))),
        ]
        segment_size = int((customers.segment == "mid-market").sum())
        t = time.perf_counter()
        changed = assign_customers(store, SYSTEM, "ana", segment="mid-market")
        rows.append((f"assign a segment ({changed:,} of {segment_size:,} customers)", time.perf_counter() - t))
        print(f"audit lines: {n:,}, customers: {args.customers:,}")
        for label, seconds in rows:
            print(f"  {label:<48} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
