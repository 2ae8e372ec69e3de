"""Customer portal page load on a demo store: the data functions the portal page calls for one
customer (its invoices and message thread on every load; a statement, PDF or Excel, when clicked),
then the whole page script (app.py's portal navigation and pages/portal.py) through AppTest, a new
session each time. The customer timed is the one with the most ledger entries. Best of `--runs`.

    python bench/portal.py --entries 1000000             # builds a fresh demo store in a temp dir
    python bench/portal.py --db data/ardesk.duckdb       # times a copy of an existing store
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.access.roles import Actor  # noqa: E402
from analytics.migrations import connect  # noqa: E402
from analytics.portal import account, links  # noqa: E402
from analytics.portal.identity import PortalCustomer  # noqa: E402
from bench.timing import best  # noqa: E402


def _store(args: argparse.Namespace, path: Path):  # noqa: ANN202
    if args.db:
        shutil.copy(args.db, path)
        return connect(str(path))
    from analytics.demo.persistence import generate_demo

    store = connect(str(path))
    started = time.perf_counter()
    generate_demo(store, entries=args.entries, seed=42, end_date=date(2026, 10, 31))
    print(f"demo of {args.entries:,} entries built in {time.perf_counter() - started:.1f} s", flush=True)
    return store


def page_load(path: Path, who: PortalCustomer, runs: int) -> float:
    """Best wall time of the whole portal page in a new AppTest session (the portal session is given
    by replacing `links.portal_customer`, as AppTest sends no cookie)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["ARDESK_DB"] = str(path)
    st.cache_resource.clear()
    st.cache_data.clear()
    links.portal_customer = lambda store, token, **_: who

    def load() -> None:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
        assert not at.exception and [t.value for t in at.title] == ["Your account"], at.exception
    load()  # the first session opens the store (cached for the process, as in the app)
    t, _ = best(load, runs)
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="an existing store to copy")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ardesk-bench-portal-"))
    path = work / "bench.duckdb"
    try:
        store = _store(args, path)
        entries = int(store.scalar("SELECT COUNT(*) FROM ledger_entries"))
        customer, own = store.read("SELECT customer_id, COUNT(*) AS n FROM ledger_entries GROUP BY customer_id "
                                   "ORDER BY n DESC, customer_id LIMIT 1").iloc[0].tolist()
        who = PortalCustomer(str(customer))
        collector = store.scalar("SELECT collector FROM customers WHERE customer_id = :c", {"c": customer})
        for i in range(5):  # a thread to read: five messages and five replies
            account.portal_message(store, who, f"Question {i}")
            account.reply_to_portal(store, Actor(collector, "collector", collector), who.customer_id, f"Answer {i}")
        print(f"store: {entries:,} entries; customer {customer}: {own:,} entries; best of {args.runs}")
        t, invoices = best(lambda: account.portal_invoices(store, who), args.runs)
        print(f"portal_invoices: {len(invoices):,} invoices in {t:.3f} s")
        t, thread = best(lambda: account.portal_thread(store, who), args.runs)
        print(f"portal_thread: {len(thread):,} messages in {t:.3f} s")
        t, pdf = best(lambda: account.portal_statement_pdf(store, who), args.runs)
        print(f"portal_statement_pdf: {len(pdf):,} bytes in {t:.3f} s")
        t, xlsx = best(lambda: account.portal_statement_excel(store, who), args.runs)
        print(f"portal_statement_excel: {len(xlsx):,} bytes in {t:.3f} s")
        store.close()
        print(f"whole portal page (AppTest, new session): {page_load(path, who, args.runs):.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
