"""`ardesk targets set|show`: per-collector targets and the progress against them, from a script.

`set` writes as the `system` actor (an administrator), or `--as USER` (checked against the users
table: the user's own role must allow `set_targets`), audited like a change on the Team page.
"""

from __future__ import annotations

import argparse
from datetime import date

from analytics.access.roles import SYSTEM
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for, get_user
from analytics.cli.output import UserError, emit
from analytics.collections.targets import METRICS, PERIODS, TargetError, set_target, target_progress
from analytics.collections.worklist import default_as_of
from analytics.migrations import connect


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("targets", help="set collector targets and show the progress against them")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    put = actions.add_parser("set", help="set (or replace) one collector's target for a metric and period")
    put.add_argument("collector", help="the collector's username")
    put.add_argument("metric", choices=list(METRICS))
    put.add_argument("period", choices=PERIODS)
    put.add_argument("target", type=float, help="a count, an amount (reporting currency) or a percent")
    put.add_argument("--as", dest="as_user", metavar="USER", help="the manager setting it (default: system)")
    put.set_defaults(handler=_set)
    show = actions.add_parser("show", help="every target with its actual in the period holding the as-of date")
    show.add_argument("--collector", help="one collector's username (default: everyone)")
    show.add_argument("--as-of", type=date.fromisoformat, default=None,
                      help="YYYY-MM-DD (default: today, or the ledger's last date if earlier)")
    show.add_argument("--format", choices=("table", "csv", "json"), default="table")
    show.set_defaults(handler=_show)


def _set(args: argparse.Namespace) -> int:
    store = connect(args.db)
    try:
        actor = actor_for(store, args.as_user or SYSTEM.username)
        changed = set_target(store, actor, args.collector, args.metric, args.period, args.target)
    except (BadUser, TargetError) as exc:
        raise UserError(str(exc)) from None
    print(f"Target {'set' if changed else 'unchanged'}: {args.collector} {args.metric} per {args.period} "
          f"{METRICS[args.metric][1]} {args.target:g}.")
    return 0


def _show(args: argparse.Namespace) -> int:
    store = connect(args.db)
    if args.collector:
        with store.engine.connect() as conn:
            if get_user(conn, args.collector) is None:
                raise UserError(f"There is no user {args.collector!r}.")
    frame = target_progress(store, args.as_of or default_as_of(store), args.collector)
    if frame.empty:
        print("No targets set.")
        return 0
    emit(frame.drop(columns=["set_at"]), args.format)
    return 0
