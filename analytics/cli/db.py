"""`ardesk db info|upgrade`: where the store is, its schema version, table sizes and customer attributes."""

from __future__ import annotations

import argparse

import pandas as pd

from analytics import migrations
from analytics.cli.output import emit
from analytics.ledger.customer_attributes import attribute_summary
from analytics.migrations import connect
from analytics.store import schema


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="inspect or upgrade the store")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="print the store location, schema version, row counts and customer attributes")
    info.set_defaults(handler=_info)
    up = actions.add_parser("upgrade", help="upgrade the store's schema in place (also done on every start)")
    up.set_defaults(handler=_upgrade)


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
