"""`ardesk dunning due|run|reach|approve|skip|configs|adopt`: the dunning stages due, the automatic run (a
daily job: every channel of the automatic stages due), which overdue customers dunning reaches (`due`
and `run` say so when some are not, and what to do), approving or skipping a manual stage, the
configurations, and adopting one that came in with an imported dunning history."""

from __future__ import annotations

import argparse
from datetime import date

from analytics.access.roles import SYSTEM
from analytics.cli import followup
from analytics.cli.output import emit, tell
from analytics.collections.automatic_dunning import run_automatic_dunning
from analytics.collections.dunning_configs import (
    DunningConfigError,
    adopt_configuration,
    dunning_configurations,
)
from analytics.collections.dunning_schedule import due_stages, dunning_reach, unreached_note
from analytics.ingest.inbox import folders_for, stage_dunning_run
from analytics.migrations import connect
from analytics.settings import load_settings
from analytics.store.connection import StoreLocked


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dunning", help="list the dunning stages due; send the automatic email stages due today")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    due = actions.add_parser("due", help="every open invoice due for a dunning stage, with channel and mode")
    due.add_argument("--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    due.add_argument("--format", choices=("table", "csv", "json"), default="table")
    due.set_defaults(handler=_due)
    run = actions.add_parser(
        "run", help="let every channel of the automatic stages due act (email, letter, call, sms and escalation "
                    "tasks; safe to repeat)",
        description="Every channel of the automatic stages due on the date acts: emails through outreach, a "
                    "'Post letter' task with the rendered letter, call and SMS tasks for the customer's collector "
                    "(AR Desk has no SMS gateway), an escalation to a manager. Running it again the same day does "
                    "nothing twice. Manual stages wait for `ardesk dunning approve`. While the app owns the store, "
                    "the run is queued for it instead.")
    run.add_argument("--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    run.add_argument("--dry-run", action="store_true", help="list each channel's would-be action; do nothing")
    run.add_argument("--format", choices=("table", "csv", "json"), default="table")
    run.set_defaults(handler=_run)
    reach = actions.add_parser(
        "reach", help="the customers with invoices past due, by whether dunning reaches them (a policy, an "
                      "email contact)",
        description="Customers with an open invoice past due on the date, by reach: they follow a dunning "
                    "policy; follow one but have no contact to email; follow none; or are not dunned (an "
                    "agency, written off, on hold, an experiment's holdout). With counts of invoices and the "
                    "open amount. `due` and `run` print the same when some customers are not reached.")
    reach.add_argument("--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    reach.add_argument("--format", choices=("table", "csv", "json"), default="table")
    reach.set_defaults(handler=_reach)
    for name, verb in (("approve", "approve and send"), ("skip", "skip (waive)")):
        one = actions.add_parser(
            name, help=f"{verb} a customer's manual dunning stage due (as the worklist's button; audited)",
            description=f"{verb.capitalize()} the manual dunning stage due for CUSTOMER on the date, as a "
                        "collector on the worklist: "
                        + ("every channel of the stage acts, as an automatic stage's would, and the stage is "
                           "recorded as run" if name == "approve" else
                           "nothing is sent, the stage is recorded as waived and the invoices go on to the next "
                           "stage") + ". Twice the same day does it once. While the app owns the store it is "
                        "queued for it.")
        one.add_argument("customer", metavar="CUSTOMER", help="the customer id")
        one.add_argument("--stage", type=int, metavar="N", help="the stage number (needed when several wait)")
        one.add_argument("--as-of", type=date.fromisoformat, default=None,
                         help="YYYY-MM-DD (default: the ledger's as-of date)")
        one.add_argument("--as", dest="as_user", metavar="USER", required=True,
                         help="the user this is done by (an active account whose role may act on customers)")
        one.add_argument("--format", choices=("table", "json"), default="table")
        one.set_defaults(handler=_approval, approval=f"dunning_{name}")
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
    store, as_of = connect(args.db), args.as_of or date.today()
    emit(due_stages(store, as_of), args.format)
    tell(unreached_note(dunning_reach(store, as_of), load_settings().reporting_currency), args.format)
    return 0


def _reach(args: argparse.Namespace) -> int:
    emit(dunning_reach(connect(args.db), args.as_of or date.today()), args.format)
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
        print(f"{len(result)} channel action(s) (customer, stage, channel) for {as_of}: "
              + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing due"))
    emit(result, args.format)
    tell(unreached_note(dunning_reach(store, as_of), load_settings().reporting_currency), args.format)
    return 1 if result["status"].isin(["queued", "failed"]).any() else 0


def _approval(args: argparse.Namespace) -> int:
    arguments = {"customer_id": args.customer, "stage": args.stage,
                 "as_of": args.as_of.isoformat() if args.as_of else None}
    return followup.perform(args, args.approval, arguments)


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
