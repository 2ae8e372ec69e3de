"""`ardesk request add|list|close|counts`: requests between departments, from a script.

A write runs as the user named by `--as USER`: an active account of this store whose role grants
the permission (raise_requests to add; work_requests, and the request's department, to close), or
`system`. The engine applies the same validation, idempotency key and audit as the Requests page.
Dates default from the ledger's as-of date, as on the pages (`--as-of` overrides it).
"""

from __future__ import annotations

import argparse
from datetime import date

import pandas as pd

from analytics.access.roles import Actor, require
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.output import UserError, emit
from analytics.collections.requests import (
    FINAL_STATUSES,
    REQUEST_DEPARTMENTS,
    REQUEST_TYPES,
    RequestError,
    list_requests,
    raise_request,
    request_counts,
    set_request_status,
)
from analytics.collections.worklist import default_as_of
from analytics.migrations import connect
from analytics.store.connection import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("request", help="raise, list and close requests between departments")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="raise a request on a customer, to a department's queue")
    add.add_argument("customer", help="the customer id")
    add.add_argument("--type", required=True, choices=list(REQUEST_TYPES), dest="request_type")
    add.add_argument("--subject", required=True)
    add.add_argument("--details", default="")
    add.add_argument("--department", choices=REQUEST_DEPARTMENTS,
                     help="the queue (default: the type's; required for type other)")
    add.add_argument("--owner", help="who works it (default: nobody until claimed)")
    add.add_argument("--due", type=date_arg, metavar="YYYY-MM-DD", help="default: the as-of date + the type's days")
    add.add_argument("--key", help="idempotency key: the same key again raises nothing new")
    add.add_argument("--as", required=True, dest="as_user", metavar="USER", help="who raises it")
    add.add_argument("--as-of", type=date_arg, metavar="YYYY-MM-DD", help="default: the ledger's as-of date")
    add.set_defaults(handler=_add)

    ls = actions.add_parser("list", help="requests, open ones first by due date")
    ls.add_argument("--department", choices=REQUEST_DEPARTMENTS)
    ls.add_argument("--customer")
    ls.add_argument("--person", metavar="USER", help="only those owned or raised by USER")
    ls.add_argument("--all", action="store_true", help="closed requests too")
    ls.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ls.set_defaults(handler=_list)

    close = actions.add_parser("close", help="close a request: done, approved or rejected")
    close.add_argument("request_id", type=int)
    close.add_argument("--status", choices=FINAL_STATUSES, default="done")
    close.add_argument("--note", default="", help="required to reject")
    close.add_argument("--as", required=True, dest="as_user", metavar="USER", help="who closes it")
    close.set_defaults(handler=_close)

    counts = actions.add_parser("counts", help="open, overdue, closed and median days to close")
    counts.add_argument("--as-of", type=date_arg, metavar="YYYY-MM-DD", help="default: the ledger's as-of date")
    counts.add_argument("--format", choices=("table", "csv", "json"), default="table")
    counts.set_defaults(handler=_counts)


def date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _actor(store: Store, username: str, permission: str) -> Actor:
    """Who `--as` names (`users.actor_for`: an active user, or `system`), refused unless their role
    grants `permission`."""
    try:
        actor = actor_for(store, username)
    except BadUser as exc:
        raise UserError(f"--as {username}: {exc}") from None
    require(actor, permission)
    return actor


def _add(args: argparse.Namespace) -> int:
    store = connect(args.db)
    actor = _actor(store, args.as_user, "raise_requests")
    try:
        request_id = raise_request(
            store, actor, args.customer, args.request_type, args.subject, details=args.details,
            department=args.department, owner=args.owner, due_date=args.due,
            today=args.as_of or default_as_of(store), idempotency_key=args.key)
    except RequestError as exc:
        raise UserError(str(exc)) from None
    row = store.read("SELECT department, due_date FROM requests WHERE request_id = :r", {"r": request_id}).iloc[0]
    print(f"Request {request_id}: {REQUEST_TYPES[args.request_type]} for {args.customer}, "
          f"in the {row['department']} queue, due {pd.Timestamp(row['due_date']):%Y-%m-%d}.")
    return 0


def _list(args: argparse.Namespace) -> int:
    frame = list_requests(connect(args.db), department=args.department, person=args.person,
                          customer_id=args.customer, open_only=not args.all)
    emit(frame.drop(columns=["details"]), args.format)
    return 0


def _close(args: argparse.Namespace) -> int:
    store = connect(args.db)
    actor = _actor(store, args.as_user, "work_requests")
    try:
        changed = set_request_status(store, actor, args.request_id, args.status, args.note)
    except RequestError as exc:
        raise UserError(str(exc)) from None
    print(f"Request {args.request_id}: {args.status}." if changed
          else f"Request {args.request_id} was {args.status} already; nothing changed.")
    return 0


def _counts(args: argparse.Namespace) -> int:
    store = connect(args.db)
    emit(request_counts(store, args.as_of or default_as_of(store)), args.format)
    return 0
