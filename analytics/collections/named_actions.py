"""A follow-up or an outreach send named by its action and plain arguments: what a script asks for.

`ardesk followup ACTION ...` and `ardesk outreach send ...` (a dialer, an email integration) run
an action here directly; when the running app owns the DuckDB store they queue it into the app's
inbox instead, and the app's watcher runs the same `run_action` with the same arguments. So both
paths go through the engine functions the Customer 360 panels call (`followups.log_call`,
`add_note`, `promise_to_pay`, `open_dispute`, `resolve_dispute`, `add_task`, `complete_task`,
`escalate`, `outreach.delivery.send_now`; `ardesk dunning approve|skip`: `dunning_approval.approve_stage`,
`skip_stage`), with their role checks, validation, idempotency key and audit. Arguments are JSON values (strings, numbers, ISO dates), so a queued job carries them as is.

Rules added here, for what a script names by text:
- invoices are named by their document numbers; it must be an invoice of that customer (one entry);
- a dispute being resolved must belong to the customer named with it;
- every action but `done`, `send`, `assign` (idempotent: customers already with the collector are left
  alone) and the dunning approvals (idempotent per customer, stage and date) carries an idempotency key: the same key again returns the
  first activity and writes nothing. The key is checked against the action: a key already used by
  another kind of activity is refused instead of returning that activity.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor, require
from analytics.collections.assignments import assign_customers
from analytics.collections.dunning_approval import approve_stage, skip_stage
from analytics.collections.followups import (
    FollowUpError,
    add_note,
    add_task,
    complete_task,
    escalate,
    log_call,
    open_dispute,
    promise_to_pay,
    resolve_dispute,
)
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.delivery import send_now
from analytics.collections.studio_actions import STUDIO_ACTIONS, run_studio_action
from analytics.collections.worklist import default_as_of
from analytics.store.connection import Store
from analytics.store.schema import activities, ledger_entries

# action -> (the permission it needs, the kind of activity it writes: the key's kind)
ACTIONS: dict[str, tuple[str, str | None]] = {
    "call": ("act_on_customers", "call"),
    "note": ("add_notes", "note"),
    "promise": ("act_on_customers", "promise"),
    "dispute": ("act_on_customers", "dispute"),
    "resolve": ("act_on_customers", "note"),  # the note on the timeline that closes the dispute
    "task": ("act_on_customers", "task"),
    "escalate": ("act_on_customers", "escalation"),
    "done": ("act_on_customers", None),
    "send": ("act_on_customers", None),
    "dunning_approve": ("act_on_customers", None),  # approve and send a manual dunning stage
    "dunning_skip": ("act_on_customers", None),  # skip (waive) a manual dunning stage
    "assign": ("assign_customers", None),  # give customers to a collector (the Admin page's assignment)
}
# the studio's writes queued while the app owns the store (`collections.studio_actions`): no activity, no key
ACTIONS.update({action: (permission, None) for action, permission in STUDIO_ACTIONS.items()})


def invoice_entry(store: Store, customer_id: str, document_number: str | None) -> int | None:
    """The entry id of the customer's invoice `document_number` (None when none is named)."""
    if document_number is None or str(document_number).strip() == "":
        return None
    found = store.read(sa.select(ledger_entries.c.entry_id).where(
        ledger_entries.c.customer_id == customer_id, ledger_entries.c.document_number == str(document_number),
        ledger_entries.c.entry_type == "invoice"))
    if found.empty:
        raise FollowUpError(f"invoice {document_number!r}: {customer_id} has no invoice with that document number.")
    if len(found) > 1:
        raise FollowUpError(f"invoice {document_number!r}: {customer_id} has {len(found)} invoices with that "
                            "document number; name the invoice in the app instead.")
    return int(found.entry_id.iloc[0])


def invoice_entries(store: Store, customer_id: str, document_numbers: Any) -> list[int]:
    """The entry ids of the customer's invoices named by document number (one name or a list)."""
    if document_numbers is None:
        return []
    names = [document_numbers] if isinstance(document_numbers, str) else list(document_numbers)
    return [e for e in (invoice_entry(store, customer_id, n) for n in names) if e is not None]


def _dispute_of(store: Store, customer_id: str, dispute_id: int) -> None:
    owner = store.scalar(sa.select(activities.c.customer_id).where(
        activities.c.activity_id == int(dispute_id), activities.c.kind == "dispute"))
    if owner is None:
        raise FollowUpError(f"dispute {dispute_id}: there is no such dispute.")
    if owner != customer_id:
        raise FollowUpError(f"dispute {dispute_id}: it is a dispute of {owner}, not {customer_id}.")


def _key_fits(store: Store, action: str, key: str | None) -> None:
    kind = ACTIONS[action][1]
    if key is None or kind is None:
        return
    used = store.read(sa.select(activities.c.activity_id, activities.c.kind).where(activities.c.idempotency_key == key))
    if len(used) and used.kind.iloc[0] != kind:
        raise FollowUpError(f"idempotency key {key!r}: already used by activity {int(used.activity_id.iloc[0])} "
                            f"(a {used.kind.iloc[0]}), not a {kind}; use another key.")


def recorded_before(store: Store, key: str | None) -> int | None:
    """The activity already written under `key`, if any (a retried command writes nothing)."""
    if key is None:
        return None
    found = store.scalar(sa.select(activities.c.activity_id).where(activities.c.idempotency_key == key))
    return None if found is None else int(found)


def _resolve(store: Store, actor: Actor, arguments: dict[str, Any], key: str | None) -> int:
    _dispute_of(store, arguments["customer_id"], int(arguments["dispute_id"]))
    return resolve_dispute(store, actor, int(arguments["dispute_id"]), arguments["resolution"],
                           _optional(arguments.get("note")), idempotency_key=key)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _amount(value: Any) -> float | None:
    """None (the chosen invoices' open amount) or the amount given."""
    return None if value is None else float(value)


def _optional(value: Any) -> str:
    return "" if value is None else str(value)


_RUNNERS: dict[str, Callable[[Store, Actor, dict[str, Any], str | None], Any]] = {
    "call": lambda s, a, x, k: log_call(s, a, x["customer_id"], x["outcome"], _optional(x.get("note")),
                                        idempotency_key=k),
    "note": lambda s, a, x, k: add_note(s, a, x["customer_id"], x["text"], idempotency_key=k),
    "promise": lambda s, a, x, k: promise_to_pay(
        s, a, x["customer_id"], _amount(x.get("amount")), _day(x["date"]),
        entry_ids=invoice_entries(s, x["customer_id"], x.get("invoice")), note=_optional(x.get("note")),
        pauses_dunning=not x.get("no_pause"), idempotency_key=k),
    "dispute": lambda s, a, x, k: open_dispute(
        s, a, x["customer_id"], x["reason"], _amount(x.get("amount")), x["department"],
        entry_ids=invoice_entries(s, x["customer_id"], x.get("invoice")),
        whole_account=bool(x.get("whole_account")), note=_optional(x.get("note")),
        answer_due=_day(x["answer_due"]) if x.get("answer_due") else None, idempotency_key=k),
    "resolve": _resolve,
    "task": lambda s, a, x, k: add_task(s, a, x["customer_id"], x["subject"], _day(x["due"]),
                                        x.get("assignee") or None, idempotency_key=k),
    "escalate": lambda s, a, x, k: escalate(s, a, x["customer_id"], x["target"], x["reason"], idempotency_key=k),
    "done": lambda s, a, x, k: complete_task(s, a, int(x["task_id"])),
}


def run_action(store: Store, actor: Actor, action: str, arguments: dict[str, Any], *,
               config: OutreachConfig | None = None) -> dict[str, Any]:
    """Run one named action as `actor`; returns what it did, as JSON values.

    Follow-ups: {"action", "customer_id", "activity_id", "repeated"} (`repeated`: the key had been used, nothing
    was written); `done`: {"action", "task_id", "changed"}; `send`: {"action", "customer_id",
    "message_id", "status", "reason"} (the outbox row after delivery was tried; `as_of`, the date
    the paid/disputed re-check uses, defaults to the worklist's `default_as_of`).
    """
    if action not in ACTIONS:
        raise FollowUpError(f"action {action!r}: choose one of {', '.join(ACTIONS)}.")
    require(actor, ACTIONS[action][0])  # before anything is read for the actor
    if action in STUDIO_ACTIONS:
        return run_studio_action(store, actor, action, arguments)
    if action == "assign":  # idempotent by itself: customers already with the collector are left alone
        changed = assign_customers(store, actor, arguments.get("collector") or None,
                                   customer_ids=arguments.get("customers") or None,
                                   segment=arguments.get("segment") or None, country=arguments.get("country") or None)
        return {"action": "assign", "collector": arguments.get("collector") or None, "customers_changed": changed}
    key = arguments.get("key")
    if action == "send":
        if not key:
            raise FollowUpError("key: required for a send (it makes a repeated send queue one message).")
        row = send_now(store, actor, [arguments["customer_id"]], arguments["template"], action_key=key,
                       as_of=_day(arguments.get("as_of") or default_as_of(store)), note=_optional(arguments.get("note")),
                       attach=arguments.get("attach") or None, config=config).iloc[0]
        return {"action": action, "customer_id": str(row["customer_id"]),
                "message_id": None if pd.isna(row["message_id"]) else int(row["message_id"]),
                "status": str(row["status"]), "reason": "" if pd.isna(row["reason"]) else str(row["reason"])}
    if action in ("dunning_approve", "dunning_skip"):  # idempotent per (customer, stage, date): no key
        stage = None if arguments.get("stage") is None else int(arguments["stage"])
        day = _day(arguments.get("as_of") or default_as_of(store))
        did = (approve_stage(store, actor, arguments["customer_id"], day, stage, config=config)
               if action == "dunning_approve" else skip_stage(store, actor, arguments["customer_id"], day, stage))
        return {"action": action, "as_of": day.isoformat(), **did}
    if action == "done":
        return {"action": action, "task_id": int(arguments["task_id"]),
                "changed": bool(_RUNNERS[action](store, actor, arguments, None))}
    _key_fits(store, action, key)
    before = recorded_before(store, key)
    activity_id = int(_RUNNERS[action](store, actor, arguments, key))
    return {"action": action, "customer_id": arguments["customer_id"], "activity_id": activity_id,
            "repeated": before is not None}
