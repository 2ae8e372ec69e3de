"""Dunning policy simulation timings on demo data: one policy (and every active policy) simulated
day by day over the last month of the ledger, plus the run's due stages and the Exhausted queue.
Prints one line per step (best of --repeat).

    python bench/dunning_simulation.py --entries 1000000        # builds a fresh demo store in a temp dir
    python bench/dunning_simulation.py --db data/ardesk.duckdb  # times a copy of an existing store
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.collections.dunning_exhausted import exhausted_customers  # noqa: E402
from analytics.collections.dunning_policies import list_policies, load_policy  # noqa: E402
from analytics.collections.dunning_schedule import due_stages  # noqa: E402
from analytics.collections.dunning_simulation import simulate_policy  # noqa: E402
from analytics.collections.worklist import default_as_of  # noqa: E402
from analytics.migrations import connect  # noqa: E402
from bench.timing import best  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="an existing store to copy")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=31, help="the simulated period, ending on the ledger's last day")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ardesk-bench-"))
    path = work / "bench.duckdb"
    if args.db:
        shutil.copy(args.db, path)
        store = connect(str(path))
    else:
        from analytics.demo.persistence import generate_demo

        store = connect(str(path))
        t0 = time.perf_counter()
        generate_demo(store, entries=args.entries, seed=42, end_date=date(2026, 10, 31))
        print(f"demo generated in {time.perf_counter() - t0:.1f} s")
    entries = int(store.scalar("SELECT COUNT(*) FROM ledger_entries"))
    customers = int(store.scalar("SELECT COUNT(*) FROM customers"))
    end = default_as_of(store)
    start = end - timedelta(days=args.days - 1)
    print(f"store: {entries:,} entries, {customers:,} customers; simulating {start} .. {end} ({args.days} days)")
    policies = list_policies(store)
    active = policies[policies["state"] == "active"]
    largest = active.sort_values("customers", ascending=False).iloc[0]
    policy = load_policy(store, int(largest["config_id"]))
    t, result = best(lambda: simulate_policy(store, policy, start, end), args.repeat)
    print(f"simulate {policy.name!r} ({int(largest['customers']):,} customers assigned): {t:.2f} s, "
          f"{len(result):,} day-stage rows, {int(result['messages'].sum()):,} messages, "
          f"{float(result['open_ar'].sum()):,.0f} open AR reminded")
    t, result = best(lambda: simulate_policy(store, policy, start, end, scope="all"), args.repeat)
    print(f"simulate {policy.name!r} over every customer ({customers:,}): {t:.2f} s, "
          f"{int(result['messages'].sum()):,} messages")
    t0 = time.perf_counter()
    total = 0
    for config_id in active["config_id"]:
        total += int(simulate_policy(store, load_policy(store, int(config_id)), start, end)["messages"].sum())
    print(f"simulate the whole rule set ({len(active)} active policies, each on its customers): "
          f"{time.perf_counter() - t0:.2f} s, {total:,} messages")
    t, due = best(lambda: due_stages(store, end), args.repeat)
    print(f"due stages on {end} (the run's one query): {t:.3f} s, {len(due):,} invoices")
    t, queue = best(lambda: exhausted_customers(store, end), args.repeat)
    print(f"exhausted queue on {end}: {t:.3f} s, {len(queue):,} customers")
    store.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
