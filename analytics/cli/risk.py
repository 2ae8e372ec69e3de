"""`ardesk risk score|list`: score every customer for a month (stored, sets the risk class) and list the scores.

`risk score [--as-of D] [--as USER]` stores the month's scores (the month before too when it has none)
and sets each customer's risk class to its band, audited. While the app owns the DuckDB store it is
queued into the app's inbox and the app scores, as that user, within seconds (on PostgreSQL it
always writes directly). `risk list [--as-of D] [--worsened]` prints
the stored month, riskiest first, with each input's contribution and the band of the month before;
`--worsened`: only the accounts whose band worsened this month.
"""

from __future__ import annotations

import argparse
from datetime import date

from analytics.access.roles import SYSTEM
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.app_inbox import queue_for_app
from analytics.cli.output import UserError, emit
from analytics.migrations import connect
from analytics.risk.snapshots import RiskError, risk_list, score_month, scoring_day
from analytics.store.connection import Store, StoreLocked


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("risk", help="customer risk: payment index, score and band per month (score, list)",
                       description=__doc__.split("\n\n", 1)[1])
    commands = p.add_subparsers(dest="risk_command", metavar="COMMAND", required=True)
    score = commands.add_parser("score", help="score every customer as of a date and store it (sets risk_class)")
    score.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="default: the last posting date in the ledger")
    score.add_argument("--as", dest="as_user", metavar="USER", default=SYSTEM.username,
                       help="do it as this user (an analyst or admin)")
    score.set_defaults(handler=_score)
    listing = commands.add_parser("list", help="the stored scores of a month, riskiest first")
    listing.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                         help="any day of the month (default: the last posting date in the ledger)")
    listing.add_argument("--worsened", action="store_true", help="only the accounts whose band worsened this month")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.set_defaults(handler=_list)


def _as_of(store: Store, given: date | None) -> date:
    try:
        return scoring_day(store, given)
    except RiskError:
        raise UserError("The ledger is empty: give --as-of, or load data first (`ardesk demo`).") from None


def _score(args: argparse.Namespace) -> int:
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        # no date given: the app scores as of the ledger's last posting date when it runs the job
        return queue_for_app(args, "score", {"as_of": args.as_of.isoformat() if args.as_of else None},
                             args.as_user, exc, kind="risk")
    as_of = _as_of(store, args.as_of)
    try:
        actor = actor_for(store, args.as_user)
    except BadUser as exc:
        raise UserError(str(exc)) from None
    result = score_month(store, actor, as_of)
    extra = " (and the month before, which had no scores yet)" if result["previous_month_scored"] else ""
    print(f"Scored {result['scored']} customers as of {as_of} for the month ending {result['month']}{extra}; "
          f"risk class changed for {result['risk_class_changes']}.")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = connect(args.db)
    as_of = _as_of(store, args.as_of)
    frame = risk_list(store, as_of, worsened_only=args.worsened)
    if frame.empty and not risk_list(store, as_of).shape[0]:
        raise UserError(f"The month of {as_of} has not been scored: run `ardesk risk score --as-of {as_of}` first.")
    emit(frame, args.format)
    return 0
