"""What segmentation rules cost at 100k customers: the live preview and a save's set-based re-assignment.

    python bench/segments.py --customers 100000
    python bench/segments.py --customers 100000 --db postgresql+psycopg://user@host/empty_db

Builds a throwaway DuckDB file with that many customers (segment, country, an imported `region`
attribute), three invoices each (two paid, one of them late; the third open), a broken promise for
one customer in 20 and an open dispute for one in 50, then times (median of --runs) the preview of
five rules that use every behaviour field, and two saves: the first assigns every customer (their
policy was empty), the second moves one rule's customers to another policy. Each save writes one
audit line per customer changed and re-assigns in one UPDATE; the script checks the counts against
the preview's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.access.roles import SYSTEM
from analytics.collections.segmentation import parse_rules, preview_rules, save_rules
from analytics.ledger.settlement import refresh_settled_on
from analytics.migrations import connect
from analytics.settings import load_settings
from analytics.store.connection import bulk_insert

AS_OF = date(2026, 10, 31)


def _build(store, n: int) -> None:
    rng = np.random.default_rng(7)
    currency = load_settings().reporting_currency  # open AR needs no FX rate
    ids = pd.Series([f"C{i:06d}" for i in range(n)])
    customers = pd.DataFrame({
        "customer_id": ids, "name": "x", "currency": currency, "created_at": datetime(2026, 1, 1),
        "segment": rng.choice(["enterprise", "mid-market", "small business", "public sector"], n),
        "country": rng.choice(["DE", "FR", "NL", "US"], n)})
    attributes = pd.DataFrame({"customer_id": ids, "name": "region", "updated_at": datetime(2026, 1, 1),
                               "value": rng.choice(["north", "south", "east", "west"], n)})
    posting = pd.Timestamp(AS_OF) - pd.to_timedelta(rng.integers(20, 300, 3 * n), unit="D")
    amounts = np.round(rng.uniform(100, 20_000, 3 * n), 2)
    invoices = pd.DataFrame({
        "entry_id": np.arange(1, 3 * n + 1), "customer_id": np.repeat(ids.to_numpy(), 3), "entry_type": "invoice",
        "document_number": [f"I{i}" for i in range(3 * n)], "posting_date": posting.date,
        "due_date": (posting + pd.Timedelta(days=30)).date, "amount": amounts, "currency": currency})
    paid = invoices[invoices["entry_id"] % 3 != 0]  # two of three invoices paid, early or late
    paid_on = (pd.to_datetime(paid["due_date"]) + pd.to_timedelta(rng.integers(-10, 60, len(paid)), unit="D"))
    paid_on = paid_on.clip(upper=pd.Timestamp(AS_OF)).dt.date
    payments = pd.DataFrame({
        "entry_id": np.arange(3 * n + 1, 3 * n + 1 + len(paid)), "customer_id": paid["customer_id"].to_numpy(),
        "entry_type": "payment", "document_number": [f"P{i}" for i in range(len(paid))],
        "posting_date": paid_on.to_numpy(), "due_date": None, "amount": -paid["amount"].to_numpy(), "currency": currency})
    allocations = pd.DataFrame({
        "allocation_id": np.arange(1, len(paid) + 1), "customer_id": paid["customer_id"].to_numpy(),
        "from_entry_id": payments["entry_id"].to_numpy(), "to_entry_id": paid["entry_id"].to_numpy(),
        "amount": paid["amount"].to_numpy(), "allocation_date": paid_on.to_numpy()})
    broken = ids[::20]
    disputed = ids[::50]
    activities = pd.concat([
        pd.DataFrame({"activity_id": np.arange(1, len(broken) + 1), "customer_id": broken.to_numpy(),
                      "kind": "promise", "status": "broken", "due_date": AS_OF - timedelta(days=15)}),
        pd.DataFrame({"activity_id": np.arange(len(broken) + 1, len(broken) + len(disputed) + 1),
                      "customer_id": disputed.to_numpy(), "kind": "dispute", "status": "open", "due_date": None})])
    activities["occurred_at"] = datetime(2026, 10, 1)
    activities["author"] = "system"
    configs = pd.DataFrame({"config_id": [1, 2, 3], "version": 1, "name": ["Standard", "Firm", "Gentle"],
                            "grace_days": 0, "active": True, "created_at": datetime(2026, 1, 1)})
    with store.write() as conn:
        for table, frame in (("customers", customers), ("customer_attributes", attributes),
                             ("ledger_entries", pd.concat([invoices, payments])), ("allocations", allocations),
                             ("activities", activities), ("dunning_configs", configs)):
            bulk_insert(conn, table, frame)
        refresh_settled_on(conn)


RULES = [
    {"name": "Large and late", "policy_id": 2, "conditions": [
        {"field": "open_ar", "op": ">=", "value": 15000}, {"field": "avg_days_late", "op": ">", "value": 20}]},
    {"name": "Promise breakers", "policy_id": 2, "conditions": [{"field": "broken_promises_90d", "op": ">=", "value": 1}]},
    {"name": "Disputed", "policy_id": 3, "conditions": [{"field": "open_disputes", "op": ">=", "value": 1}]},
    {"name": "North, mostly late", "policy_id": 2, "conditions": [
        {"field": "attr:region", "op": "in", "value": ["north"]}, {"field": "paid_late_pct", "op": ">=", "value": 50}]},
    {"name": "Default", "policy_id": 1},
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", help="an EMPTY store to fill instead of a throwaway DuckDB file (e.g. PostgreSQL)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = connect(args.db or str(Path(tmp) / "bench.duckdb"))
        print(f"store: {store.engine.dialect.name}")
        t = time.perf_counter()
        _build(store, args.customers)
        print(f"customers: {args.customers:,}; built in {time.perf_counter() - t:.1f} s")
        rules = parse_rules(RULES)
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            preview = preview_rules(store, rules, AS_OF)
            times.append(time.perf_counter() - t)
        print(preview[["rule", "customers", "open_ar", "changing"]].to_string(index=False))
        print(f"  preview (every behaviour field)          {statistics.median(times):7.3f} s median of {args.runs} "
              f"(first {times[0]:.3f} s)")
        t = time.perf_counter()
        first = save_rules(store, SYSTEM, rules, "bench: first rules", AS_OF)
        print(f"  first save: {first['customers_changed']:>7,} re-assigned       {time.perf_counter() - t:7.3f} s")
        assert first["customers_changed"] == int(preview["changing"].sum()) == args.customers
        moved = [dict(r) for r in RULES]
        moved[2] = {**moved[2], "policy_id": 2}  # disputed customers go to Firm
        rules2 = parse_rules(moved)
        expected = int(preview_rules(store, rules2, AS_OF)["changing"].sum())
        t = time.perf_counter()
        second = save_rules(store, SYSTEM, rules2, "bench: disputed to Firm", AS_OF)
        print(f"  second save: {second['customers_changed']:>6,} re-assigned       {time.perf_counter() - t:7.3f} s")
        assert second["customers_changed"] == expected
        assigned = store.scalar("SELECT COUNT(*) FROM customers WHERE dunning_config_id IS NOT NULL")
        audited = store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'customer.dunning_config'")
        print(f"  customers with a policy {assigned:,}; audit lines {audited:,}")
        store.close()


if __name__ == "__main__":
    main()
