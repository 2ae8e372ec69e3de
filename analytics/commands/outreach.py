"""`ardesk outreach retry|worklist|outbox`: the collector workspace from a script or a nightly job."""

from __future__ import annotations

import argparse
from datetime import date

from analytics.store import connect


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("outreach", help="deliver queued outreach, print worklists and the outbox")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    retry = actions.add_parser("retry", help="deliver every queued or failed message (each at most once)")
    retry.add_argument("--as-of", type=date.fromisoformat, default=None,
                       help="date for the paid/disputed re-check (default today)")
    retry.set_defaults(handler=_retry)
    work = actions.add_parser("worklist", help="print a collector's worklist, highest priority first")
    work.add_argument("--collector", help="a collector's username (default: the whole team)")
    work.add_argument("--as-of", type=date.fromisoformat, default=None,
                      help="YYYY-MM-DD (default: today, or the ledger's last date if earlier)")
    work.add_argument("--format", choices=("table", "csv", "json"), default="table")
    work.set_defaults(handler=_worklist)
    box = actions.add_parser("outbox", help="print recent messages with status, attempts and last error")
    box.add_argument("--status", action="append", choices=("queued", "sending", "sent", "failed", "blocked", "cancelled"))
    box.add_argument("--format", choices=("table", "csv", "json"), default="table")
    box.set_defaults(handler=_outbox)


def _retry(args: argparse.Namespace) -> int:
    from analytics.outreach import retry_queued
    from analytics.roles import SYSTEM

    result = retry_queued(connect(args.db), SYSTEM, as_of=args.as_of)
    counts = result["status"].value_counts().to_dict() if len(result) else {}
    print(f"{len(result)} message(s) tried: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    for row in result[result["status"] != "sent"].itertuples(index=False):
        print(f"  message {row.message_id} ({row.customer_id}): {row.status}: {row.reason}")
    return 1 if (result["status"].isin(["queued", "failed"])).any() else 0


def _worklist(args: argparse.Namespace) -> int:
    from analytics.cli import UserError, emit
    from analytics.worklist import default_as_of, worklist

    store = connect(args.db)
    if args.collector and not store.scalar("SELECT COUNT(*) FROM users WHERE username = :u", {"u": args.collector}):
        raise UserError(f"There is no user {args.collector!r}; `ardesk users list` shows who there is.")
    frame = worklist(store, args.as_of or default_as_of(store), args.collector)
    if frame.empty and args.format == "table":
        print("The worklist is empty: you have done everything.")
        return 0
    emit(frame.drop(columns=["reason_label"]), args.format)
    return 0


def _outbox(args: argparse.Namespace) -> int:
    from analytics.cli import emit
    from analytics.outreach import outbox

    emit(outbox(connect(args.db), statuses=args.status), args.format)
    return 0
