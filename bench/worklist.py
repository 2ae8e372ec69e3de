"""Collector workspace timings on demo data: worklist (team and one collector), bulk selection,
customer 360, and a 50-customer outbox send. Prints one line per step (best of 3 for reads).

    python bench/worklist.py --entries 200000          # builds a fresh demo store in a temp dir
    python bench/worklist.py --db data/ardesk.duckdb   # times a copy of an existing store
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.access.roles import Actor  # noqa: E402
from analytics.collections.bulk_selection import select_customers  # noqa: E402
from analytics.collections.customer_360 import customer_header, open_invoices, timeline  # noqa: E402
from analytics.collections.outreach.config import OutreachConfig  # noqa: E402
from analytics.collections.outreach.delivery import send_now  # noqa: E402
from analytics.collections.worklist import default_as_of, worklist  # noqa: E402
from analytics.migrations import connect  # noqa: E402
from bench.timing import best  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="an existing store to copy")
    parser.add_argument("--entries", type=int, default=200_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ardesk-bench-"))
    path = work / "bench.duckdb"
    if args.db:
        shutil.copy(args.db, path)
        store = connect(str(path))
    else:
        from analytics.demo.persistence import generate_demo

        store = connect(str(path))
        generate_demo(store, entries=args.entries, seed=42, end_date=date(2026, 10, 31))
    entries = int(store.scalar("SELECT COUNT(*) FROM ledger_entries"))
    customers = int(store.scalar("SELECT COUNT(*) FROM customers"))
    as_of = default_as_of(store)
    collector = store.scalar("SELECT MIN(username) FROM users WHERE role = 'collector'")
    print(f"store: {entries:,} entries, {customers:,} customers, as of {as_of}")
    t, team = best(lambda: worklist(store, as_of))
    print(f"worklist, whole team: {len(team):,} items in {t:.3f} s")
    t, mine = best(lambda: worklist(store, as_of, collector))
    print(f"worklist, {collector}: {len(mine):,} items in {t:.3f} s")
    t, chosen = best(lambda: select_customers(store, as_of, days_past_due=(1, 3650)))
    print(f"bulk selection (any overdue): {len(chosen):,} customers in {t:.3f} s")
    cid = str(chosen.customer_id.iloc[0])
    t, _ = best(lambda: (customer_header(store, cid, as_of), open_invoices(store, cid, as_of), timeline(store, cid)))
    print(f"customer 360 (header, open invoices, timeline) of {cid}: {t:.3f} s")
    targets = chosen.customer_id.head(50).tolist()
    config = OutreachConfig(mode="outbox", outbox_dir=work / "outbox", max_emails_per_customer=100)
    t0 = time.perf_counter()
    result = send_now(store, Actor("bench", "admin"), targets, "reminder_friendly", action_key="bench", as_of=as_of,
                      attach="pdf", config=config)
    counts = result["status"].value_counts().to_dict()
    print(f"send {len(targets)} messages with PDF statements to the outbox: {time.perf_counter() - t0:.2f} s {counts}")
    for row in result[result.status != "sent"].head(3).itertuples(index=False):
        print(f"  {row.customer_id}: {row.status}: {row.reason}")
    store.close()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
