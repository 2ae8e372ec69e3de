"""`ardesk dunning due|run|configs|adopt`: the dunning stages due, the automatic email run (a daily
job), the configurations, and adopting one that came in with an imported dunning history."""

from __future__ import annotations

import argparse
from datetime import date

from analytics.access.roles import SYSTEM
from analytics.cli.output import emit
from analytics.collections.automatic_dunning import run_automatic_dunning
from analytics.collections.dunning_configs import (
    DunningConfigError,
    adopt_configuration,
    dunning_configurations,
)
from analytics.collections.dunning_schedule import due_stages
from analytics.ingest.inbox import folders_for, stage_dunning_run
from analytics.migrations import connect
from analytics.store.connection import StoreLocked


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dunning", help="list the dunning stages due; send the automatic email stages due today")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    due = actions.add_parser("due", help="every open invoice due for a dunning stage, with channel and mode")
    due.add_argument("--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    due.add_argument("--format", choices=("table", "csv", "json"), default="table")
    due.set_defaults(handler=_due)
    run = actions.add_parser(
        "run", help="email the automatic stages due (one email per customer and template; safe to repeat)",
        description="Send the automatic email stages due on the date through outreach. Running it again the "
                    "same day sends nothing twice. Letters, calls, escalations and manual stages stay on the "
                    "worklist. While the app owns the store, the run is queued for it instead.")
    run.add_argument("--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    run.add_argument("--dry-run", action="store_true", help="list what would be sent; send nothing")
    run.add_argument("--format", choices=("table", "csv", "json"), default="table")
    run.set_defaults(handler=_run)
    configs = actions.add_parser("configs", help="every dunning configuration: active or imported history, "
                                                 "its stages, customers and runs")
    configs.add_argument("--format", choices=("table", "csv", "json"), default="table")
    configs.set_defaults(handler=_configs)
    adopt = actions.add_parser(
        "adopt", help="make a configuration imported with a dunning history an active policy",
        description="Activate the configuration NAME (imported dunning history is inactive) and assign it to "
                    "every customer whose dunning runs name it and who has no configuration yet. Audited.")
    adopt.add_argument("name", help="the configuration's name, as in the dunning-history file")
    adopt.set_defaults(handler=_adopt)


def _due(args: argparse.Namespace) -> int:
    emit(due_stages(connect(args.db), args.as_of or date.today()), args.format)
    return 0


def _run(args: argparse.Namespace) -> int:
    as_of = args.as_of or date.today()
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        if args.dry_run:
            raise
        job = stage_dunning_run(folders_for(args.db).inbox, as_of, SYSTEM)
        print(f"The AR Desk app owns the store ({exc.path}), so the run for {as_of} was queued for it: {job}. "
              "The app sends within a few seconds; the outcome per customer lands next to the job in done/.")
        return 0
    result = run_automatic_dunning(store, SYSTEM, as_of, dry_run=args.dry_run)
    if args.format == "table":
        counts = result["status"].value_counts().to_dict()
        verb = "would be sent" if args.dry_run else "tried"
        print(f"{len(result)} customer email(s) {verb} for {as_of}: "
              + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing due"))
    emit(result, args.format)
    return 1 if result["status"].isin(["queued", "failed"]).any() else 0


def _configs(args: argparse.Namespace) -> int:
    emit(dunning_configurations(connect(args.db)), args.format)
    return 0


def _adopt(args: argparse.Namespace) -> int:
    try:
        done = adopt_configuration(connect(args.db), SYSTEM, args.name)
    except DunningConfigError as exc:
        print(exc)
        return 2
    state = "is now an active policy" if done["activated"] else "was already active"
    print(f"Dunning configuration {args.name!r} (id {done['config_id']}) {state}; assigned to "
          f"{done['customers']} customer(s) whose dunning history names it.")
    return 0
