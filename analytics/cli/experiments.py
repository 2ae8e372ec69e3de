"""`ardesk experiments start|list|report|stop|promote`: champion/challenger tests of dunning policies.

Writes run as `system` (an administrator) or `--as USER` (an active account whose role may run
experiments: analysts and admins), audited. While the app owns a DuckDB store a write is queued as a
signed "experiment" job in the app's inbox (as `ardesk followup` is), which the app runs with the same
checks within seconds; reads (`list`, `report`) need the store itself. `report --format json` prints
every figure of the result panel.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import date
from typing import Any

import pandas as pd

from analytics.access.roles import SYSTEM, Actor
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.output import UserError, emit
from analytics.collections.worklist import default_as_of
from analytics.experiments.lifecycle import (
    ExperimentError,
    experiment,
    experiments,
    run_experiment_action,
)
from analytics.experiments.results import experiment_result
from analytics.ingest.inbox import folders_for, stage_action
from analytics.migrations import connect
from analytics.store.connection import StoreLocked

FORMATS = ("table", "csv", "json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiments", help="champion/challenger tests of dunning policies on a segment")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start an experiment on a segment (assigns its customers to arms)")
    start.add_argument("name", help="a unique name")
    start.add_argument("--segment", required=True, help="a customers' segment value")
    start.add_argument("--champion", type=int, required=True, help="the current policy's id")
    start.add_argument("--challenger", type=int, required=True, help="the new policy's id")
    start.add_argument("--split", choices=("50/50", "90/10"), default="50/50",
                       help="champion/challenger split (90/10: the safe split)")
    start.add_argument("--holdout", type=int, default=0, help="no-contact holdout %%, 0 to 5 (default 0)")
    start.add_argument("--looks", type=int, default=5, help="planned O'Brien-Fleming looks, 1 to 10 (default 5)")
    start.add_argument("--days", type=int, default=90, help="planned days, at least 30 (default 90)")
    start.add_argument("--why", default="", help="why: kept with the experiment and in the audit log")
    start.add_argument("--as", dest="as_user", metavar="USER", default=SYSTEM.username)
    start.add_argument("--as-of", type=date.fromisoformat, default=None, help="the start date (default: the ledger's)")
    start.set_defaults(handler=_start)
    listing = actions.add_parser("list", help="every experiment, newest first")
    listing.add_argument("--format", choices=FORMATS, default="table")
    listing.set_defaults(handler=_list)
    report = actions.add_parser("report", help="an experiment's result: arms, intervals, SRM, sequential verdict")
    report.add_argument("experiment", help="its name or id")
    report.add_argument("--as-of", type=date.fromisoformat, default=None)
    report.add_argument("--format", choices=FORMATS, default="table")
    report.set_defaults(handler=_report)
    for name, text in (("stop", "end a running experiment (customers go back to their own policy)"),
                       ("promote", "make the winner's policy the segment's policy and end the experiment")):
        cmd = actions.add_parser(name, help=text)
        cmd.add_argument("experiment", help="its name or id")
        if name == "promote":
            cmd.add_argument("--winner", choices=("challenger", "champion"), default="challenger")
        cmd.add_argument("--reason", default="")
        cmd.add_argument("--as", dest="as_user", metavar="USER", default=SYSTEM.username)
        cmd.add_argument("--as-of", type=date.fromisoformat, default=None)
        cmd.set_defaults(handler=_stop if name == "stop" else _promote)


def _write(args: argparse.Namespace, action: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """Run the write now, or queue it for the running app that owns the store (None: queued)."""
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        folders = folders_for(args.db)
        # the store cannot be read now: the app checks the user and their current role when it runs it
        job = stage_action(folders.inbox, action, arguments, Actor(args.as_user, "", ""), kind="experiment")
        print(f"The AR Desk app is running and owns the store ({exc.path}), so this was queued for it: {job}.\n"
              f"The app runs it within a few seconds as {args.as_user}, with the same checks; the result goes "
              f"to {folders.done}/ (or the reason to {folders.failed}/).")
        return None
    try:
        return run_experiment_action(store, actor_for(store, args.as_user), action, arguments)
    except (BadUser, ExperimentError) as exc:
        raise UserError(str(exc)) from None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _start(args: argparse.Namespace) -> int:
    started = _write(args, "start", {
        "name": args.name, "segment": args.segment, "champion": args.champion, "challenger": args.challenger,
        "challenger_pct": 50 if args.split == "50/50" else 10, "holdout_pct": args.holdout, "looks": args.looks,
        "planned_days": args.days, "why": args.why, "as_of": _day(args.as_of)})
    if started is not None:
        arms = ", ".join(f"{arm} {n}" for arm, n in sorted(started["arms"].items()))
        print(f"Started experiment {started['experiment_id']}: {started['customers']} customer(s) assigned "
              f"({arms}).")
    return 0


def _list(args: argparse.Namespace) -> int:
    emit(experiments(connect(args.db)), args.format)
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _report(args: argparse.Namespace) -> int:
    store = connect(args.db)
    try:
        found = experiment(store, args.experiment)
    except ExperimentError as exc:
        raise UserError(str(exc)) from None
    result = experiment_result(store, found, args.as_of or default_as_of(store))
    if args.format == "json":
        print(json.dumps(_plain(result), indent=2, default=str))
        return 0
    print(f"{result['name']} on {result['segment']} ({result['status']}), as of {result['as_of']}: "
          f"{result['metric_label']}")
    emit(pd.DataFrame(result["arms"]), args.format)
    if args.format == "table":
        c = result["comparison"]
        if c["difference"] is not None:
            print(f"difference {c['difference']:+.4f} (95% CI {c['difference_low']:+.4f} to {c['difference_high']:+.4f})")
        if c["lift"] is not None:
            print(f"relative lift {c['lift']:+.2%} (95% CI {c['lift_low']:+.2%} to {c['lift_high']:+.2%}), "
                  "delta method")
        s = result["srm"]
        print(f"sample ratio check: chi-square {s['chi2']:.2f}, {s['df']} df, p = {s['p']:.3g}")
        q = result["sequential"]
        print(f"{q['method']}: look {q['look']} of {q['looks']}")
        print(f"verdict: {result['verdict']['reason']}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    done = _write(args, "stop", {"experiment": args.experiment, "reason": args.reason, "as_of": _day(args.as_of)})
    if done is not None:
        print(f"Stopped experiment {done['experiment_id']} on {done['ended_on']}.")
    return 0


def _promote(args: argparse.Namespace) -> int:
    done = _write(args, "promote", {"experiment": args.experiment, "winner": args.winner, "reason": args.reason,
                                    "as_of": _day(args.as_of)})
    if done is not None:
        where = (f"segmentation rules version {done['segment_rule_set']}" if done["segment_rule_set"] is not None
                 else "the segment's customers")
        print(f"Promoted policy {done['winner_config_id']} ({where}); {done['customers_changed']} customer(s) "
              "changed.")
    return 0
