"""`ardesk demo`: fill an empty store with realistic, deterministic demo data."""

from __future__ import annotations

import argparse
from datetime import date

from analytics.cli.output import UserError
from analytics.demo.persistence import StoreNotEmpty, generate_demo
from analytics.demo.summary import demo_summary_table
from analytics.migrations import connect
from analytics.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    demo = load_settings().section("demo")
    p = sub.add_parser(
        "demo", help="generate demo data (customers, ledger, dunning, activities)",
        description="Fill an empty store with two years of realistic, deterministic receivables data.",
    )
    p.add_argument("--entries", type=int, default=int(demo["entries"]), help="ledger entries to generate (default %(default)s)")
    p.add_argument("--seed", type=int, default=int(demo["seed"]), help="random seed (default %(default)s)")
    p.add_argument("--end-date", type=date.fromisoformat, default=date.fromisoformat(demo["end_date"]),
                   help="last day of history, YYYY-MM-DD (default %(default)s)")
    p.add_argument("--replace", action="store_true", help="delete the existing data first")
    p.add_argument("--if-empty", action="store_true", help="do nothing (exit 0) when the store already has data")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    store = connect(args.db)
    # The same test as generate_demo's refusal: any customer or ledger entry means "has data".
    if args.if_empty and store.scalar(
            "SELECT (SELECT COUNT(*) FROM customers) + (SELECT COUNT(*) FROM ledger_entries)"):
        print("The store already has data; demo not generated.")
        return 0
    try:
        summary = generate_demo(store, entries=args.entries, seed=args.seed, end_date=args.end_date,
                                replace=args.replace, progress=print)
    except StoreNotEmpty as exc:
        raise UserError(str(exc)) from None
    print(demo_summary_table(summary))
    return 0
