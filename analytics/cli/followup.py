"""`ardesk followup call|note|promise|dispute|resolve|task|escalate CUSTOMER ...` and `followup done TASK`.

What the Customer 360 follow-up panel records, from a script (a dialer, an email integration), in
the name of a user (`--as USER`: an active account; its role must allow the write, checked by the
engine as for the panel) and audited under that name. Each prints the activity it wrote.

Idempotency: `--key K` makes a retried command write once (the same key returns the first activity,
`repeated` true); give the id the calling system already has for the event (a call id, a message
id). Without `--key` every run is a new event (two identical calls are two calls): a random key is
made and printed, so a retry can name it.

When the running app owns the DuckDB store, the command is queued (signed) into the app's inbox and
the app records it within seconds, with the same checks; see `done/` or `failed/` beside the inbox.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from analytics.access.roles import Actor
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.output import UserError, emit
from analytics.collections.assignments import AssignmentError
from analytics.collections.followups import (
    CALL_OUTCOMES,
    DISPUTE_DEPARTMENTS,
    DISPUTE_RESOLUTIONS,
    ESCALATION_TARGETS,
    FollowUpError,
)
from analytics.collections.named_actions import run_action
from analytics.collections.outreach.config import OutreachError
from analytics.ingest.inbox import folders_for, stage_action
from analytics.migrations import connect
from analytics.store.connection import StoreLocked


def amount(text: str) -> str:
    """An amount in the customer's currency, to the cent: '1250', '1250.5', '1250.50'."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount (use digits and a dot: 1250.50)") from None
    if not value.is_finite() or value.as_tuple().exponent < -2:
        raise argparse.ArgumentTypeError(f"{text!r}: an amount has at most two decimals (cents)")
    return str(value)


def common(p: argparse.ArgumentParser, *, as_required: bool = True) -> None:
    """--as, --key and --format, shared with `ardesk outreach send`."""
    p.add_argument("--as", dest="as_user", metavar="USER", required=as_required,
                   default=None if as_required else "system",
                   help="the user this is done by (an active account whose role may do it)"
                   + ("" if as_required else "; default: system, the command line"))
    p.add_argument("--key", metavar="KEY", help="idempotency key, 1 to 64 characters: the same key again writes "
                                                "nothing and prints the first result (default: a new random key)")
    p.add_argument("--format", choices=("table", "json"), default="table")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("followup", help="log a call, note, promise, dispute, task or escalation on a customer",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, helptext: str, customer: bool = True) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=helptext)
        if customer:
            a.add_argument("customer", metavar="CUSTOMER", help="the customer id")
        a.set_defaults(handler=_followup)
        return a

    call = action("call", "log a phone call and its outcome")
    call.add_argument("--outcome", required=True, choices=CALL_OUTCOMES)
    call.add_argument("--note", default="", help="what was said")
    note = action("note", "add a note on the account (collectors, sales, admins)")
    note.add_argument("text", metavar="TEXT")
    promise = action("promise", "record a promise to pay an amount by a date (today .. a year ahead)")
    promise.add_argument("--amount", type=amount, help="default: the named invoices' open amount")
    promise.add_argument("--date", required=True, type=date.fromisoformat, help="the promised date, YYYY-MM-DD")
    promise.add_argument("--invoice", metavar="DOC", action="append",
                         help="an invoice's document number, repeatable (none: the whole account)")
    promise.add_argument("--no-pause", action="store_true",
                         help="keep dunning these invoices (by default a promise pauses them until its date + 1 day)")
    promise.add_argument("--note", default="")
    dispute = action("dispute", "open a dispute for the department that must answer")
    dispute.add_argument("--reason", required=True)
    dispute.add_argument("--amount", type=amount, help="default: the disputed invoices' open amount")
    dispute.add_argument("--department", required=True, choices=DISPUTE_DEPARTMENTS)
    chosen = dispute.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--invoice", metavar="DOC", action="append",
                        help="a disputed invoice's document number, repeatable (only these leave reminders)")
    chosen.add_argument("--whole-account", action="store_true",
                        help="dispute every invoice of the account (no reminders at all until it is answered)")
    dispute.add_argument("--answer-due", type=date.fromisoformat, metavar="YYYY-MM-DD",
                         help="when the department must answer (default: its standard days)")
    dispute.add_argument("--note", default="")
    resolve = action("resolve", "close an open dispute of the customer as resolved or rejected")
    resolve.add_argument("dispute_id", metavar="DISPUTE_ID", type=int, help="the dispute's activity id")
    resolve.add_argument("--resolution", required=True, choices=DISPUTE_RESOLUTIONS)
    resolve.add_argument("--note", default="")
    task = action("task", "add a task with a due date for someone (default: the --as user)")
    task.add_argument("--subject", required=True)
    task.add_argument("--due", required=True, type=date.fromisoformat, help="YYYY-MM-DD, not in the past")
    task.add_argument("--assignee", metavar="USER")
    esc = action("escalate", "escalate the account to a manager or a collection agency (changes its status)")
    esc.add_argument("--to", dest="target", required=True, choices=tuple(ESCALATION_TARGETS))
    esc.add_argument("--reason", required=True)
    done = action("done", "mark a task done (nothing changes when it already is)", customer=False)
    done.add_argument("task_id", metavar="TASK_ID", type=int)
    for a in (call, note, promise, dispute, resolve, task, esc, done):
        common(a)


ARGUMENTS = {  # action -> the parsed options it passes on (renamed where the engine's name differs)
    "call": ("outcome", "note"),
    "note": ("text",),
    "promise": ("amount", "date", "invoice", "no_pause", "note"),
    "dispute": ("reason", "amount", "department", "invoice", "whole_account", "answer_due", "note"),
    "resolve": ("dispute_id", "resolution", "note"),
    "task": ("subject", "due", "assignee"),
    "escalate": ("target", "reason"),
    "done": ("task_id",),
}


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _followup(args: argparse.Namespace) -> int:
    arguments = {name: _json_value(getattr(args, name)) for name in ARGUMENTS[args.action]}
    if args.action != "done":
        arguments["customer_id"] = args.customer
        arguments["key"] = args.key or new_key()
    return perform(args, args.action, arguments)


def new_key() -> str:
    return f"cli-{uuid.uuid4().hex[:24]}"


def perform(args: argparse.Namespace, action: str, arguments: dict[str, Any]) -> int:
    """Run the action now, or queue it for the running app that owns the store; print the result."""
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        folders = folders_for(args.db)
        # the store cannot be read now: the app checks the user and their current role when it runs it
        job = stage_action(folders.inbox, action, arguments, Actor(args.as_user, "", ""))
        print(f"The AR Desk app is running and owns the store ({exc.path}), so this was queued for it: {job}.\n"
              f"The app records it within a few seconds as {args.as_user}, with the same checks; the result "
              f"goes to {folders.done}/ (or the reason to {folders.failed}/)."
              + (f" Idempotency key: {arguments['key']}." if arguments.get("key") else ""))
        return 0
    try:
        actor = actor_for(store, args.as_user)
        result = run_action(store, actor, action, arguments)
    except (BadUser, FollowUpError, OutreachError, AssignmentError) as exc:
        raise UserError(str(exc)) from None
    if arguments.get("key") and action != "send":
        result["key"] = arguments["key"]
    emit(pd.DataFrame([result]), args.format)
    return 0 if action != "send" else {"sent": 0, "uncertain": 3}.get(result["status"], 1)
