"""`ardesk db info|upgrade|copy`: where the store is, its schema version, table sizes and customer attributes;
moving a DuckDB store to PostgreSQL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from analytics import migrations
from analytics.cli.output import emit
from analytics.cli.store_argument import store_argument
from analytics.ledger.customer_attributes import attribute_summary
from analytics.migrations import connect
from analytics.store import schema
from analytics.store.copy import CopyRefused, copy_store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="inspect or upgrade the store")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="print the store location, schema version, row counts and customer attributes")
    info.set_defaults(handler=_info)
    up = actions.add_parser("upgrade", help="upgrade the store's schema in place (also done on every start)")
    up.set_defaults(handler=_upgrade)
    cp = actions.add_parser("copy", help="copy a DuckDB store (users, audit and history included) to PostgreSQL")
    cp.add_argument("--from", dest="source", required=True, metavar="DUCKDB_FILE", type=store_argument, help="the store file to copy")
    cp.add_argument("--to", dest="target", required=True, metavar="URL", type=store_argument, help="postgresql+psycopg://user@host/db")
    cp.add_argument("--replace", action="store_true", help="empty a target that already holds rows first")
    cp.set_defaults(handler=_copy)


def _info(args: argparse.Namespace) -> int:
    store = connect(args.db)
    print(f"store: {store!r}")
    print(f"schema version: {migrations.current_version(store)} (this AR Desk: {migrations.SCHEMA_VERSION})")
    counts = [
        {"table": t.name, "rows": int(store.scalar(f"SELECT COUNT(*) FROM {t.name}"))}  # noqa: S608
        for t in schema.metadata.sorted_tables
    ]
    emit(pd.DataFrame(counts))
    attributes = attribute_summary(store)
    if len(attributes):  # name, customers with a value, distinct values
        print("\ncustomer attributes (the extra columns of the customers files):")
        emit(attributes)
    else:
        print("\ncustomer attributes: none (every extra column of a customers file is kept as one)")
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    store = connect(args.db, migrate=False)
    start = migrations.upgrade(store)
    print(f"schema version {start} -> {migrations.current_version(store)}")
    return 0


def _copy(args: argparse.Namespace) -> int:
    """Copy, then print each table's row count and numeric sums on both sides; exit 1 on any difference."""
    if "://" in args.source or not Path(args.source).is_file():
        print(f"error: --from must be an existing DuckDB store file; {args.source} is not one", file=sys.stderr)
        return 2
    source = connect(args.source)
    try:
        target = connect(args.target)
    except Exception:
        source.close()
        raise
    try:
        try:
            checks = copy_store(source, target, replace=args.replace)
        except CopyRefused as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        rows = [{"table": c.table, "rows (from)": c.source_rows, "rows (to)": c.target_rows,
                 "sums (from)": " ".join(f"{k}={v}" for k, v in c.source_sums.items()),
                 "sums (to)": " ".join(f"{k}={v}" for k, v in c.target_sums.items()),
                 "equal": "yes" if c.equal else "NO"} for c in checks]
        emit(pd.DataFrame(rows))
        bad = [c.table for c in checks if not c.equal]
        if bad:
            print(f"error: the copy differs from the source in: {', '.join(bad)}", file=sys.stderr)
            return 1
        print(f"copied {sum(c.target_rows for c in checks)} rows in {len(checks)} tables; counts and sums equal")
        return 0
    finally:
        target.close()
        source.close()
