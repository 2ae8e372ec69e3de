"""`ardesk import DATASET FILE` and `ardesk sync --source URL`: bring ERP data in.

When the running app owns the store, both queue their work in the app's inbox instead of failing
(see analytics.inbox) and say so in plain words.
"""

from __future__ import annotations

import argparse
import sys
import time

from analytics.access.roles import SYSTEM
from analytics.cli.output import UserError
from analytics.ingest.imports import run_import
from analytics.ingest.inbox import folders_for, stage_import, stage_sync
from analytics.ingest.mapping import DATASETS, Mapping, MappingError, load_mapping, parse_column_overrides
from analytics.ingest.quarantine import write_quarantine_file
from analytics.ingest.reading import ImportFailed, read_source
from analytics.ingest.sync import parse_every, sync_once
from analytics.ingest.validation import validate
from analytics.migrations import connect
from analytics.store.connection import StoreLocked


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="import customers, invoices, payments, credit notes, allocations or FX rates from a file",
        description="Validate a CSV, Excel (.xlsx) or Parquet export and merge it into the store. Rejected rows "
                    "go to the quarantine (table and a CSV in quarantine/ next to the store's DuckDB file, or under "
                    "[paths] data_dir for a server database); re-importing a file changes nothing; a changed row "
                    "updates the entry and is audited.",
    )
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("file")
    _mapping_args(p)
    p.add_argument("--strict", action="store_true", help="reject rows naming unknown customers instead of creating them")
    p.add_argument("--check", action="store_true", help="validate and print the report only; write nothing")
    p.epilog = "Exit status: 0 all rows imported, 1 some rows rejected (see the quarantine), 2 could not run."
    p.set_defaults(handler=_import)

    s = sub.add_parser(
        "sync", help="pull new and changed rows from an ERP database (SQLAlchemy URL) or a drop folder",
        description="Incremental sync with the same mapping and validation as `ardesk import`. The mapping's "
                    "[sync] section names the table and watermark column of a database source.",
    )
    s.add_argument("--source", required=True, help="a SQLAlchemy URL (sqlite:///erp.db, postgresql+psycopg://...) "
                                                   "or a folder of exports")
    s.add_argument("--dataset", choices=DATASETS, help="the dataset (default: the mapping's)")
    _mapping_args(s)
    when = s.add_mutually_exclusive_group()
    when.add_argument("--every", metavar="INTERVAL", help="repeat every INTERVAL (15m, 30s, 1h) until Ctrl-C")
    when.add_argument("--once", action="store_true", help="sync once and exit (the default)")
    s.set_defaults(handler=_sync)


def _mapping_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mapping", metavar="TOML", help="a mapping file, or the name of one in config/mappings/")
    p.add_argument("--column", action="append", metavar="TARGET=SOURCE", default=[],
                   help="map one field to a source column (repeatable; overrides the mapping)")


def _mapping(args: argparse.Namespace, dataset: str | None) -> Mapping:
    try:
        mapping = load_mapping(args.mapping) if args.mapping else Mapping(dataset=dataset or "invoices")
        if dataset and mapping.dataset != dataset:
            raise UserError(f"The mapping {mapping.name} is for {mapping.dataset}, not {dataset}.")
        return mapping.with_columns(parse_column_overrides(args.column))
    except MappingError as exc:
        raise UserError(str(exc)) from None


_COLUMN_HINT = ("Map a field to the file's own column with --column FIELD=COLUMN (repeatable), "
                "e.g. --column customer_id=cust, or choose another --mapping.")


def _print_progress(p) -> None:  # noqa: ANN001 - ImportProgress
    if p.rows_total >= 100_000:  # small files finish before progress means anything
        print(f"  {p}", file=sys.stderr, flush=True)


def _import(args: argparse.Namespace) -> int:
    mapping = _mapping(args, args.dataset)
    folders = folders_for(args.db)
    try:
        table = read_source(args.file, mapping)
    except ImportFailed as exc:
        raise UserError(str(exc)) from None
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        if args.check:
            raise
        job = stage_import(folders.inbox, table, mapping, SYSTEM, strict=args.strict, source_label=args.file)
        print(f"The AR Desk app is running and owns the store ({exc.path}), so the file was queued for it "
              f"instead: {job}.\nThe running app validates and imports it within a few seconds; see the result "
              f"(rows in, rejected, errors) in the app under Imports > Last runs. Rejected rows will be in "
              f"{folders.quarantine}/.")
        return 0
    if args.check:
        report = validate(store, table, mapping, strict=args.strict)
        print("\n".join(report.summary_lines()))
        if report.missing_columns:
            print(_COLUMN_HINT)
        path = write_quarantine_file(report, folders.quarantine, None)
        if path:
            print(f"Rejected rows with their reasons: {path}")
        return 0 if report.ok else 1
    result = run_import(store, table, mapping, SYSTEM, strict=args.strict, source_label=args.file,
                        progress=_print_progress)
    print("\n".join(result.summary_lines()))
    if result.report is not None and result.report.missing_columns:
        print(_COLUMN_HINT)
    path = write_quarantine_file(result.report, folders.quarantine, result.run_id) if result.report else None
    if path:
        print(f"Rejected rows with their reasons: {path} (also in the quarantine table, run #{result.run_id})")
    return 0 if result.status == "ok" and not result.rejected else 1


def _sync(args: argparse.Namespace) -> int:
    mapping = _mapping(args, args.dataset)
    try:
        interval = parse_every(args.every) if args.every else None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    folders = folders_for(args.db)
    try:
        while True:
            started = time.monotonic()
            try:
                store = connect(args.db)
            except StoreLocked as exc:
                job = stage_sync(folders.inbox, args.source, mapping, SYSTEM)
                print(f"The AR Desk app owns the store ({exc.path}); this sync was queued for it: {job}. "
                      "See the result in the app under Imports > Last runs.", flush=True)
            else:
                try:
                    for result in sync_once(store, args.source, mapping, SYSTEM, progress=_print_progress):
                        print("\n".join(result.summary_lines()), flush=True)
                except MappingError as exc:
                    raise UserError(str(exc)) from None
                finally:
                    store.close()  # between cycles the app may start and take the file
            if interval is None:
                return 0
            wait = max(0.0, interval - (time.monotonic() - started))
            print(f"Next sync in {wait:,.0f} s (Ctrl-C stops).", flush=True)
            time.sleep(wait)
    except KeyboardInterrupt:
        print("Sync stopped. Every finished sync is committed; an interrupted one left nothing behind.")
        return 0
