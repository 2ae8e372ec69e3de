"""`ardesk outreach send|retry|resolve|worklist|outbox`: the collector workspace from a script or a nightly job."""

from __future__ import annotations

import argparse
from datetime import date

from analytics.access.roles import SYSTEM
from analytics.cli import followup
from analytics.cli.output import UserError, emit, tell
from analytics.collections.outreach.config import OutreachError
from analytics.collections.outreach.delivery import mark_sent, retry_queued, send_again
from analytics.collections.outreach.outbox import outbox
from analytics.collections.worklist import default_as_of, unassigned_note, unassigned_past_due, worklist
from analytics.migrations import connect
from analytics.settings import load_settings

STATUSES = ("queued", "sending", "sent", "failed", "blocked", "cancelled", "uncertain")
NEEDS_A_PERSON = 3  # exit code of `retry` while an uncertain message waits for a decision


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("outreach", help="deliver queued outreach, print worklists and the outbox")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    retry = actions.add_parser(
        "retry", help="settle interrupted deliveries, then deliver every queued or failed message (each at most "
                      "once); exit 0 when nothing is left, 1 while some wait for a retry, 3 while a message is "
                      "uncertain and needs a person (`resolve`)")
    retry.add_argument("--as-of", type=date.fromisoformat, default=None,
                       help="date for the paid/disputed re-check (default today)")
    retry.set_defaults(handler=_retry)
    resolve = actions.add_parser(
        "resolve", help="decide an uncertain message (the server took it but never confirmed it): 'sent' when it "
                        "arrived, 'again' to send it again with the same Message-ID")
    resolve.add_argument("message_id", type=int)
    resolve.add_argument("decision", choices=("sent", "again"))
    resolve.set_defaults(handler=_resolve)
    work = actions.add_parser("worklist", help="print a collector's worklist, highest priority first")
    work.add_argument("--collector", help="a collector's username (default: the whole team)")
    work.add_argument("--as-of", type=date.fromisoformat, default=None,
                      help="YYYY-MM-DD (default: today, or the ledger's last date if earlier)")
    work.add_argument("--format", choices=("table", "csv", "json"), default="table")
    work.set_defaults(handler=_worklist)
    send = actions.add_parser(
        "send", help="send a template to one customer now, as the Customer 360 Outreach panel's Send does (the same "
                     "re-checks: contact, paid or disputed invoices, the frequency cap); prints the message status; "
                     "exit 0 sent, 1 not sent (queued, failed or blocked: see the reason), 3 uncertain")
    send.add_argument("--template", required=True, help="a template name (see config/templates/)")
    send.add_argument("--customer", required=True, metavar="CUSTOMER", help="the customer id")
    send.add_argument("--as-of", type=date.fromisoformat, default=None,
                      help="date for the open items and the paid/disputed re-check (default: today, or the ledger's "
                           "last date if earlier)")
    send.add_argument("--note", default="", help="a personal note in the message")
    send.add_argument("--attach", choices=("pdf", "xlsx"), help="attach a statement of open items")
    followup.common(send, as_required=False)
    send.set_defaults(handler=_send)
    box = actions.add_parser("outbox", help="print recent messages with status, attempts and last error")
    box.add_argument("--status", action="append", choices=STATUSES)
    box.add_argument("--format", choices=("table", "csv", "json"), default="table")
    box.set_defaults(handler=_outbox)


def _retry(args: argparse.Namespace) -> int:
    store = connect(args.db)
    result = retry_queued(store, SYSTEM, as_of=args.as_of)
    recovered = result[result["recovered"].notna()]
    if len(recovered):
        print(f"Recovered {len(recovered)} interrupted deliver{'y' if len(recovered) == 1 else 'ies'}:")
        for row in recovered.itertuples(index=False):
            print(f"  message {row.message_id} ({row.customer_id}): {row.recovered}")
    tried = result[~(result["recovered"].notna() & (result["status"] == "uncertain"))]
    counts = tried["status"].value_counts().to_dict() if len(tried) else {}
    print(f"{len(tried)} message(s) tried: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    for row in tried[tried["status"] != "sent"].itertuples(index=False):
        print(f"  message {row.message_id} ({row.customer_id}): {row.status}: {row.reason}")
    sending = outbox(store, statuses=["sending"])
    if len(sending):
        print(f"{len(sending)} message(s) being delivered by another process (recovered by a retry once its "
              "claim runs out):")
        for row in sending.itertuples(index=False):
            print(f"  message {row.message_id} ({row.customer_id}): claimed by {row.claimed_by} until "
                  f"{row.lease_until:%Y-%m-%d %H:%M:%S}")
    uncertain = outbox(store, statuses=["uncertain"])
    if len(uncertain):
        print(f"{len(uncertain)} message(s) need a person: the server may have them. Check with the recipient, then "
              "`ardesk outreach resolve ID sent` or `... resolve ID again`:")
        for row in uncertain.itertuples(index=False):
            print(f"  message {row.message_id} ({row.customer_id}) to {row.to_address}: {row.last_error}")
        return NEEDS_A_PERSON
    return 1 if len(sending) or tried["status"].isin(["queued", "failed"]).any() else 0


def _resolve(args: argparse.Namespace) -> int:
    store = connect(args.db)
    try:
        if args.decision == "sent":
            result = mark_sent(store, SYSTEM, args.message_id)
        else:
            result = send_again(store, SYSTEM, args.message_id)
    except OutreachError as exc:
        raise UserError(str(exc)) from None
    if result["status"] == "sent":
        print(f"Message {args.message_id} ({result['customer_id']}): "
              + ("marked sent." if args.decision == "sent" else "sent again."))
        return 0
    print(f"Message {args.message_id} ({result['customer_id']}): {result['status']}: {result['reason']}")
    return NEEDS_A_PERSON if result["status"] == "uncertain" else 1


def _worklist(args: argparse.Namespace) -> int:
    store = connect(args.db)
    if args.collector and not store.scalar("SELECT COUNT(*) FROM users WHERE username = :u", {"u": args.collector}):
        raise UserError(f"There is no user {args.collector!r}; `ardesk users list` shows who there is.")
    as_of = args.as_of or default_as_of(store)
    frame = worklist(store, as_of, args.collector)
    if frame.empty and args.format == "table":
        print("The worklist is empty: you have done everything.")
    else:
        emit(frame.drop(columns=["reason_label"]), args.format)
    tell(unassigned_note(unassigned_past_due(store, as_of), load_settings().reporting_currency), args.format)
    return 0


def _send(args: argparse.Namespace) -> int:
    """The same key twice (`--key`) queues one message and sends it at most once."""
    arguments = {"customer_id": args.customer, "template": args.template, "note": args.note, "attach": args.attach,
                 "as_of": args.as_of.isoformat() if args.as_of else None, "key": args.key or followup.new_key()}
    return followup.perform(args, "send", arguments)


def _outbox(args: argparse.Namespace) -> int:
    emit(outbox(connect(args.db), statuses=args.status), args.format)
    return 0
