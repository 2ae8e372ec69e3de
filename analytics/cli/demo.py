"""`ardesk demo`: fill an empty store with realistic, deterministic demo data, or with a real public ledger.

`--dataset generated` (the default) runs the demo generator; `--dataset road-fines` converts the
Road Traffic Fine Management Process log (`analytics.demo.road_fines`) into the public import
datasets and imports each through the ordinary import code (`ingest.imports.run_import`, as the
system actor, same validation, quarantine and audit as `ardesk import`), in dataset order.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from analytics.access.roles import SYSTEM
from analytics.cli.output import UserError
from analytics.demo.persistence import StoreNotEmpty, generate_demo
from analytics.demo.road_fines import DATASET_ORDER, LogNotFound, convert, locate_log, read_events
from analytics.demo.summary import demo_summary_table
from analytics.ingest.imports import ImportResult, run_import
from analytics.ingest.inbox import folders_for
from analytics.ingest.mapping import Mapping
from analytics.ingest.quarantine import write_quarantine_file
from analytics.migrations import connect
from analytics.settings import ROOT, load_settings
from analytics.store.connection import Store

DEMO_DATASETS = ("generated", "road-fines")


def register(sub: argparse._SubParsersAction) -> None:
    demo = load_settings().section("demo")
    p = sub.add_parser(
        "demo", help="generate demo data (customers, ledger, dunning, activities) or import a real public ledger",
        description="Fill an empty store with two years of realistic, deterministic receivables data, or "
                    "(--dataset road-fines) with the real Road Traffic Fine Management Process log.",
    )
    p.add_argument("--dataset", choices=DEMO_DATASETS, default="generated",
                   help="generated (default) or road-fines: the public log of an Italian police's fines")
    p.add_argument("--file", metavar="PATH", help="road-fines: the log (.xes or .xes.zip); default "
                   "../shared/data/real/Road_Traffic_Fine_Management_Process.xes.zip beside the checkout")
    p.add_argument("--entries", type=int, default=int(demo["entries"]), help="ledger entries to generate (default %(default)s)")
    p.add_argument("--seed", type=int, default=int(demo["seed"]), help="random seed (default %(default)s)")
    p.add_argument("--end-date", type=date.fromisoformat, default=date.fromisoformat(demo["end_date"]),
                   help="last day of history, YYYY-MM-DD (default %(default)s)")
    p.add_argument("--replace", action="store_true", help="delete the existing data first (generated only)")
    p.add_argument("--if-empty", action="store_true", help="do nothing (exit 0) when the store already has data")
    p.set_defaults(handler=_run)


def _has_data(store: Store) -> bool:
    # The same test as generate_demo's refusal: any customer or ledger entry means "has data".
    return bool(store.scalar("SELECT (SELECT COUNT(*) FROM customers) + (SELECT COUNT(*) FROM ledger_entries)"))


def _run(args: argparse.Namespace) -> int:
    if args.dataset == "road-fines":
        return _road_fines(args)
    store = connect(args.db)
    if args.if_empty and _has_data(store):
        print("The store already has data; demo not generated.")
        return 0
    try:
        summary = generate_demo(store, entries=args.entries, seed=args.seed, end_date=args.end_date,
                                replace=args.replace, progress=print)
    except StoreNotEmpty as exc:
        raise UserError(str(exc)) from None
    print(demo_summary_table(summary))
    return 0


@dataclass
class RoadFinesRun:
    """What `import_road_fines` did: events read, one import result per dataset, seconds per step."""

    events: int = 0
    results: list[ImportResult] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def import_road_fines(store: Store, log: Path, quarantine: Path | None = None, say=print) -> RoadFinesRun:  # noqa: ANN001
    """Read the log, convert it, and import each dataset of `DATASET_ORDER` with `run_import` as SYSTEM.

    Each dataset is one ordinary import run (its own transaction, validation, quarantine, audit);
    the mapping is built here, naming nothing: the converter's columns carry the fields' names.
    Rejected rows also go to a CSV under `quarantine` when given.
    """
    run = RoadFinesRun()
    started = time.monotonic()
    events = read_events(log)
    run.events = len(events)
    run.seconds["read the log"] = time.monotonic() - started
    say(f"Read {len(events):,} events of {events['case'].nunique():,} cases from {log} "
        f"in {run.seconds['read the log']:.1f} s.")
    started = time.monotonic()
    datasets = convert(events)
    del events
    run.seconds["convert"] = time.monotonic() - started
    for name in DATASET_ORDER:
        started = time.monotonic()
        mapping = Mapping(dataset=name, name="road-fines", description="ardesk demo --dataset road-fines")
        result = run_import(store, datasets.pop(name), mapping, SYSTEM, source_label=f"road-fines {name}")
        run.seconds[name] = time.monotonic() - started
        run.results.append(result)
        say(f"  {name}: {result.rows_read:,} rows, {result.inserted:,} inserted, {result.rejected:,} rejected "
            f"({run.seconds[name]:.1f} s)")
        if quarantine is not None and result.report is not None:
            write_quarantine_file(result.report, quarantine, result.run_id)
    return run


def _road_fines(args: argparse.Namespace) -> int:
    if args.replace:
        raise UserError("--replace is for the generated demo; import the road fines into a new store (--db PATH).")
    try:
        log = locate_log(args.file, ROOT)
    except LogNotFound as exc:
        raise UserError(str(exc)) from None
    store = connect(args.db)
    if _has_data(store):
        if args.if_empty:
            print("The store already has data; demo not imported.")
            return 0
        raise UserError("The store already has data; import the road fines into an empty store (--db PATH).")
    started = time.monotonic()
    folders = folders_for(args.db)
    run = import_road_fines(store, log, folders.quarantine, say=lambda line: print(line, flush=True))
    total = time.monotonic() - started
    print(road_fines_summary(run, total))
    if any(r.rejected for r in run.results):
        print(f"Rejected rows with their reasons: {folders.quarantine}/ (and the quarantine table).")
    return 0 if all(r.status == "ok" for r in run.results) else 1


def road_fines_summary(run: RoadFinesRun, total: float) -> str:
    """Rows per dataset, the rejection reasons, and the timings, as printed by the command."""
    lines = ["", f"{'dataset':<16}{'rows':>10}{'inserted':>10}{'rejected':>10}{'seconds':>9}"]
    for r in run.results:
        lines.append(f"{r.dataset:<16}{r.rows_read:>10,}{r.inserted:>10,}{r.rejected:>10,}{run.seconds[r.dataset]:>9.1f}")
    lines.append(f"Read the log {run.seconds['read the log']:.1f} s, convert {run.seconds['convert']:.1f} s; "
                 f"{total:.1f} s in all.")
    for r in run.results:
        if r.report is not None and len(r.report.errors):
            lines.append(f"Rejected in {r.dataset}:")
            lines += [line for line in r.report.summary_lines()[1:] if line.startswith("  ")]
    return "\n".join(lines)
