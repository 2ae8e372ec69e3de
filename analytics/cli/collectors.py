"""`ardesk collectors list|assign|unassign`: who collects which customers, as the Admin page's assignment.

`assign` and `unassign` choose customers by id (repeatable), segment and country (the intersection;
at least one), run as `--as USER` (default `system`) through the same engine function as the page
(`assignments.assign_customers`: an admin's permission, one audit line and one timeline entry per
customer that changes, nothing for those already there), and are queued for the app while it owns the
DuckDB store (`followup.perform`).
"""

from __future__ import annotations

import argparse
from datetime import date

from analytics.access.roles import SYSTEM
from analytics.cli import followup
from analytics.cli.output import emit, tell
from analytics.collections.assignments import collectors
from analytics.collections.worklist import default_as_of, unassigned_note, unassigned_past_due
from analytics.migrations import connect
from analytics.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collectors", help="who collects which customers: list, assign, unassign")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listed = actions.add_parser("list", help="every active collector with their customers; the past-due customers "
                                             "nobody collects")
    listed.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="YYYY-MM-DD for the past-due count (default: today, or the ledger's last date if earlier)")
    listed.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listed.set_defaults(handler=_list)
    for name, verb in (("assign", "give the chosen customers to COLLECTOR"),
                       ("unassign", "take the chosen customers from their collector")):
        one = actions.add_parser(name, help=f"{verb} (audited; as the Admin page)",
                                 description=f"{verb.capitalize()}: the customers named with --customer, in --segment "
                                             "and in --country (all that are given; at least one). Customers "
                                             "already so are left alone, so running it twice changes nothing.")
        if name == "assign":
            one.add_argument("collector", metavar="COLLECTOR", help="an active collector's username")
        one.add_argument("--customer", action="append", dest="customers", metavar="ID", help="a customer id (repeatable)")
        one.add_argument("--segment", help="every customer of this segment")
        one.add_argument("--country", help="every customer of this country")
        one.add_argument("--as", dest="as_user", metavar="USER", default=SYSTEM.username,
                         help="who does it: an active admin (default: system)")
        one.add_argument("--format", choices=("table", "csv", "json"), default="table")
        one.set_defaults(handler=_assign)


def _list(args: argparse.Namespace) -> int:
    store = connect(args.db)
    emit(collectors(store), args.format)
    tell(unassigned_note(unassigned_past_due(store, args.as_of or default_as_of(store)),
                         load_settings().reporting_currency), args.format)
    return 0


def _assign(args: argparse.Namespace) -> int:
    arguments = {"collector": getattr(args, "collector", None), "customers": args.customers,
                 "segment": args.segment, "country": args.country}
    return followup.perform(args, "assign", arguments)
