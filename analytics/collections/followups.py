"""Follow-ups on a customer: calls, notes, promises to pay, disputes, escalations, reassignments,
tasks and snoozes. Every one lands on the customer's timeline (`activities`).

Each write: checks the role first (`require`), validates (customer exists, invoice belongs to the
customer, amount > 0, dates sensible), runs in one `store.write()` transaction, records the audit
line with the values before and after, and is idempotent: a call repeated with the same
`idempotency_key` (a double click, a Streamlit rerun) returns the first activity id and writes
nothing.

Promise status rule (`refresh_promise_statuses`): a pending promise is **kept** once the promised
amount has been paid in full, counting payments dated from the day the promise was made up to
and including the promised date (and up to D): allocations to the promise's invoice when it names
one or several (`activity_invoices`), else the customer's payments posted in that window. It is **broken** when the promised date
has passed (date < D) without that. Otherwise it stays pending.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import PORTAL_ROLE, SYSTEM, Actor, PermissionDenied, require
from analytics.store.connection import Store
from analytics.store.schema import activities, activity_invoices, customers, users

CALL_OUTCOMES = ("reached", "promised to pay", "disputed", "left voicemail", "no answer", "wrong number", "refused")
ESCALATION_TARGETS = {"manager": "escalated", "agency": "with_agency"}
DISPUTE_DEPARTMENTS = ("sales", "logistics", "billing", "quality", "legal", "collections")
DISPUTE_RESOLUTIONS = ("resolved", "rejected")
MAX_PROMISE_DAYS = 366
MAX_SNOOZE_DAYS = 90
# What a customer may record from the portal (role 'portal', permission portal_self_service), and
# only on its own account (`analytics.portal`): every other follow-up is staff work.
PORTAL_KINDS = ("dispute", "promise", "remittance", "portal_message")


class FollowUpError(ValueError):
    """A follow-up that cannot be recorded, naming the field, the value and why."""


def _check_key(key: str | None) -> None:
    if key is not None and not (0 < len(key) <= 64):
        raise FollowUpError(f"idempotency_key {key!r} must be 1 to 64 characters.")


def _existing(conn: sa.Connection, key: str | None) -> int | None:
    if key is None:
        return None
    found = conn.execute(sa.select(activities.c.activity_id).where(activities.c.idempotency_key == key)).scalar()
    return None if found is None else int(found)


def _customer(conn: sa.Connection, customer_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(customers).where(customers.c.customer_id == customer_id)).mappings().first()
    if row is None:
        raise FollowUpError(f"customer_id {customer_id!r}: there is no such customer.")
    return dict(row)


def _check_invoice(conn: sa.Connection, customer_id: str, entry_id: int | None) -> None:
    if entry_id is None:
        return
    row = conn.execute(sa.text(
        "SELECT customer_id, amount FROM ledger_entries WHERE entry_id = :e"), {"e": int(entry_id)}).first()
    if row is None:
        raise FollowUpError(f"entry_id {entry_id}: there is no such ledger entry.")
    if row.customer_id != customer_id:
        raise FollowUpError(f"entry_id {entry_id}: the invoice belongs to {row.customer_id}, not {customer_id}.")
    if float(row.amount) <= 0:
        raise FollowUpError(f"entry_id {entry_id}: that entry is a credit, not an invoice.")


def _check_amount(field: str, amount: float | None) -> float:
    if amount is None or not float(amount) > 0:
        raise FollowUpError(f"{field} {amount!r}: must be greater than 0.")
    return round(float(amount), 2)


def _check_text(field: str, value: str | None, required: bool = True, limit: int = 200) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise FollowUpError(f"{field}: required.")
    if len(value) > limit:
        raise FollowUpError(f"{field}: at most {limit} characters (got {len(value)}).")
    return value or None


def _department(conn: sa.Connection, actor: Actor) -> str:
    team = conn.execute(sa.select(users.c.team).where(users.c.username == actor.username)).scalar()
    return team or ("collections" if actor.role in ("collector", "admin") else actor.role)


def _record(
    store: Store, actor: Actor, permission: str, customer_id: str, kind: str, fields: dict[str, Any],
    idempotency_key: str | None, validate: Callable[[sa.Connection], None] | None = None,
    also: Callable[[sa.Connection, dict[str, Any], int], None] | None = None,
    audit_extra: dict[str, Any] | None = None,
) -> int:
    """The one write path: role, key, validation, insert, side effect, audit; returns the activity id.

    A portal actor (`PORTAL_ROLE`) writes only PORTAL_KINDS, only on its own customer."""
    if actor.role == PORTAL_ROLE:
        require(actor, "portal_self_service")
        if kind not in PORTAL_KINDS or actor.username != f"portal:{customer_id}":
            raise PermissionDenied(f"{actor.username} may not record a {kind} for customer {customer_id}.")
    else:
        require(actor, permission)
    _check_key(idempotency_key)
    with store.write() as conn:
        done = _existing(conn, idempotency_key)
        if done is not None:
            return done
        customer = _customer(conn, customer_id)
        _check_invoice(conn, customer_id, fields.get("entry_id"))
        if validate:
            validate(conn)
        row = {"customer_id": customer_id, "kind": kind, "occurred_at": datetime.now(), "author": actor.username,
               "department": fields.pop("department", None) or _department(conn, actor),
               "idempotency_key": idempotency_key, **fields}
        activity_id = int(conn.execute(activities.insert().values(**row).returning(activities.c.activity_id)).scalar())
        if also:
            also(conn, customer, activity_id)
        audit.record(conn, actor, f"activity.{kind}", "activity", activity_id, new={**row, **(audit_extra or {})})
    return activity_id


record_activity = _record  # the same write path for the activities other modules define (the portal's)


def log_call(store: Store, actor: Actor, customer_id: str, outcome: str, note: str = "", *,
             entry_id: int | None = None, idempotency_key: str | None = None) -> int:
    """A phone call and its outcome (one of CALL_OUTCOMES)."""
    if outcome not in CALL_OUTCOMES:
        raise FollowUpError(f"outcome {outcome!r}: choose one of {', '.join(CALL_OUTCOMES)}.")
    return _record(store, actor, "act_on_customers", customer_id, "call", {
        "outcome": outcome, "subject": f"Call: {outcome}", "body": _check_text("note", note, False, 4000),
        "entry_id": entry_id}, idempotency_key)


def add_note(store: Store, actor: Actor, customer_id: str, body: str, *, entry_id: int | None = None,
             idempotency_key: str | None = None) -> int:
    """A note on the account (collectors, sales and admins: permission add_notes)."""
    text = _check_text("note", body, True, 4000)
    return _record(store, actor, "add_notes", customer_id, "note", {
        "subject": text[:80], "body": text, "entry_id": entry_id}, idempotency_key)


def _chosen_invoices(entry_id: int | None, entry_ids: Sequence[int] | None) -> list[int]:
    """The invoices named by `entry_id` (the older one-invoice form) and `entry_ids`, once each, in order."""
    chosen = [int(e) for e in (entry_ids or ())]
    if entry_id is not None:
        chosen.insert(0, int(entry_id))
    return list(dict.fromkeys(chosen))


def _open_amount(conn: sa.Connection, customer_id: str, entry_ids: list[int]) -> float:
    """Check each invoice belongs to the customer; their open amount now (after every allocation)."""
    for entry in entry_ids:
        _check_invoice(conn, customer_id, entry)
    stmt = sa.text("SELECT COALESCE(SUM(COALESCE(open_now, amount)), 0) FROM ledger_entries WHERE entry_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True))
    return round(float(conn.execute(stmt, {"ids": entry_ids}).scalar() or 0), 2)


def _link_invoices(entry_ids: list[int]) -> Callable[[sa.Connection, dict[str, Any], int], None]:
    """The side effect that names the activity's invoices in `activity_invoices` (the activity's
    audit line lists them: `entry_ids`)."""
    def link(conn: sa.Connection, _customer: dict[str, Any], activity_id: int) -> None:
        if entry_ids:
            conn.execute(activity_invoices.insert(), [{"activity_id": activity_id, "entry_id": e} for e in entry_ids])
    return link


def promise_to_pay(store: Store, actor: Actor, customer_id: str, amount: float | None, promised_date: date, *,
                   entry_id: int | None = None, entry_ids: Sequence[int] | None = None,
                   pauses_dunning: bool = True, note: str = "", today: date | None = None,
                   idempotency_key: str | None = None) -> int:
    """A promise to pay `amount` by `promised_date` (today .. today + 366 days); status pending.

    It concerns the invoices chosen (`entry_ids`, or the older `entry_id`), else the whole account;
    `amount` None means the chosen invoices' open amount (required for the whole account). With
    `pauses_dunning` (the default) the invoices leave dunning through the promised date; on the
    promised date + 1 day an unpaid promise is broken and dunning resumes (`collections.holds`)."""
    today = today or date.today()
    chosen = _chosen_invoices(entry_id, entry_ids)
    if amount is None and not chosen:
        raise FollowUpError("amount: required for a promise about the whole account (no invoices chosen).")
    if amount is not None:
        _check_amount("amount", amount)
    if not today <= promised_date <= today + timedelta(days=MAX_PROMISE_DAYS):
        raise FollowUpError(f"promised date {promised_date}: must be between {today} and "
                            f"{today + timedelta(days=MAX_PROMISE_DAYS)}.")
    fields = {"due_date": promised_date, "status": "pending", "entry_id": chosen[0] if chosen else None,
              "whole_account": not chosen, "pauses_dunning": bool(pauses_dunning),
              "body": _check_text("note", note, False, 4000)}

    def validate(conn: sa.Connection) -> None:
        value = _check_amount("amount", _open_amount(conn, customer_id, chosen) if amount is None else amount)
        fields.update(amount=value, subject=f"Promise to pay {value:,.2f} by {promised_date}"
                      + (f" ({len(chosen)} invoices)" if len(chosen) > 1 else ""))

    return _record(store, actor, "act_on_customers", customer_id, "promise", fields, idempotency_key,
                   validate, _link_invoices(chosen), {"entry_ids": chosen})


def open_dispute(store: Store, actor: Actor, customer_id: str, reason: str, amount: float | None, department: str,
                 *, entry_id: int | None = None, entry_ids: Sequence[int] | None = None, whole_account: bool = False,
                 note: str = "", idempotency_key: str | None = None, answer_due: date | None = None) -> int:
    """A dispute (reason, amount, the department that must answer); status open.

    It concerns the invoices chosen (`entry_ids`, or the older `entry_id`): only they leave
    dunning and reminders, the others continue. A dispute of the whole account must say so
    (`whole_account=True`, with no invoices); one with neither is refused. `amount` None means the
    chosen invoices' open amount. `answer_due` (stored in `due_date`): the date the department must
    answer by; blank means the department's standard (`disputes.answer_due_sql`). The dispute
    reaches the worklist only after it."""
    text = _check_text("reason", reason)
    if department not in DISPUTE_DEPARTMENTS:
        raise FollowUpError(f"department {department!r}: choose one of {', '.join(DISPUTE_DEPARTMENTS)}.")
    chosen = _chosen_invoices(entry_id, entry_ids)
    if chosen and whole_account:
        raise FollowUpError(f"invoices {chosen}: a whole-account dispute names no invoices; choose one or the other.")
    if not chosen and not whole_account:
        raise FollowUpError("invoices: none chosen. Choose the disputed invoices, or tick 'Whole account' "
                            "(and confirm it) to dispute every invoice of the account.")
    if amount is None and not chosen:
        raise FollowUpError("amount: required for a whole-account dispute.")
    if amount is not None:
        _check_amount("amount", amount)
    fields = {"reason": text, "department": department, "status": "open", "entry_id": chosen[0] if chosen else None,
              "whole_account": bool(whole_account), "due_date": answer_due,
              "subject": f"Dispute ({department}): {text}"[:200] if chosen else
              f"Dispute ({department}, whole account): {text}"[:200],
              "body": _check_text("note", note, False, 4000)}

    def validate(conn: sa.Connection) -> None:
        fields["amount"] = _check_amount("amount", _open_amount(conn, customer_id, chosen) if amount is None
                                         else amount)

    return _record(store, actor, "act_on_customers", customer_id, "dispute", fields, idempotency_key,
                   validate, _link_invoices(chosen), {"entry_ids": chosen})


def activity_invoice_ids(store: Store, activity_id: int) -> list[int]:
    """The invoices a dispute or promise names (empty: the whole account)."""
    frame = store.read("SELECT entry_id FROM activity_invoices WHERE activity_id = :a "
                       "UNION SELECT entry_id FROM activities WHERE activity_id = :a AND entry_id IS NOT NULL",
                       {"a": int(activity_id)})
    return sorted(int(e) for e in frame["entry_id"])


def resolve_dispute(store: Store, actor: Actor, dispute_id: int, resolution: str, note: str = "", *,
                    idempotency_key: str | None = None) -> int:
    """Close an open dispute as resolved or rejected; a note on the timeline says so. Returns the note id."""
    if resolution not in DISPUTE_RESOLUTIONS:
        raise FollowUpError(f"resolution {resolution!r}: choose one of {', '.join(DISPUTE_RESOLUTIONS)}.")
    require(actor, "act_on_customers")
    dispute = store.read("SELECT customer_id, status, reason FROM activities WHERE activity_id = :a AND kind = 'dispute'",
                         {"a": int(dispute_id)})
    if dispute.empty:
        raise FollowUpError(f"dispute {dispute_id}: there is no such dispute.")
    customer_id = str(dispute.customer_id.iloc[0])

    def validate(conn: sa.Connection) -> None:
        status = conn.execute(sa.select(activities.c.status).where(activities.c.activity_id == int(dispute_id))).scalar()
        if status != "open":
            raise FollowUpError(f"dispute {dispute_id}: already {status}.")

    def close(conn: sa.Connection, _customer: dict[str, Any], note_id: int) -> None:
        conn.execute(activities.update().where(activities.c.activity_id == int(dispute_id))
                     .values(status=resolution, resolved_at=datetime.now()))
        audit.record(conn, actor, "dispute.resolve", "activity", dispute_id, old={"status": "open"},
                     new={"status": resolution, "note_id": note_id})

    return _record(store, actor, "act_on_customers", customer_id, "note", {
        "subject": f"Dispute {resolution}: {dispute.reason.iloc[0]}", "body": _check_text("note", note, False, 4000),
        "status": resolution}, idempotency_key, validate, close)


def escalate(store: Store, actor: Actor, customer_id: str, target: str, reason: str, *,
             idempotency_key: str | None = None) -> int:
    """Escalate to a manager (status 'escalated') or a collection agency (status 'with_agency')."""
    if target not in ESCALATION_TARGETS:
        raise FollowUpError(f"target {target!r}: choose one of {', '.join(ESCALATION_TARGETS)}.")
    text = _check_text("reason", reason)
    new_status = ESCALATION_TARGETS[target]

    def set_status(conn: sa.Connection, customer: dict[str, Any], _activity_id: int) -> None:
        conn.execute(customers.update().where(customers.c.customer_id == customer_id)
                     .values(status=new_status, updated_at=datetime.now()))
        audit.record(conn, actor, "customer.status", "customer", customer_id,
                     old={"status": customer["status"]}, new={"status": new_status})

    return _record(store, actor, "act_on_customers", customer_id, "escalation", {
        "target": target, "reason": text, "subject": f"Escalated to {target}: {text}"},
        idempotency_key, also=set_status)


def reassign(store: Store, actor: Actor, customer_id: str, new_collector: str, reason: str = "", *,
             idempotency_key: str | None = None) -> int:
    """Give the account to another collector (permission assign_customers)."""
    require(actor, "assign_customers")

    def validate(conn: sa.Connection) -> None:
        role = conn.execute(sa.select(users.c.role).where(users.c.username == new_collector, users.c.active)).scalar()
        if role not in ("collector", "admin"):
            raise FollowUpError(f"new collector {new_collector!r}: not an active collector.")

    def move(conn: sa.Connection, customer: dict[str, Any], _activity_id: int) -> None:
        conn.execute(customers.update().where(customers.c.customer_id == customer_id)
                     .values(collector=new_collector, updated_at=datetime.now()))
        audit.record(conn, actor, "customer.collector", "customer", customer_id,
                     old={"collector": customer["collector"]}, new={"collector": new_collector})

    return _record(store, actor, "assign_customers", customer_id, "reassignment", {
        "target": new_collector, "reason": _check_text("reason", reason, False),
        "subject": f"Reassigned to {new_collector}"}, idempotency_key, validate, move)


def add_task(store: Store, actor: Actor, customer_id: str, subject: str, due: date, assignee: str | None = None, *,
             today: date | None = None, idempotency_key: str | None = None) -> int:
    """A task with a due date (not in the past) for an assignee (default: the actor); status open."""
    today = today or date.today()
    text = _check_text("subject", subject)
    if due < today:
        raise FollowUpError(f"due date {due}: must not be before {today}.")
    who = assignee or actor.username

    def validate(conn: sa.Connection) -> None:
        if conn.execute(sa.select(users.c.username).where(users.c.username == who)).scalar() is None:
            raise FollowUpError(f"assignee {who!r}: there is no such user.")

    return _record(store, actor, "act_on_customers", customer_id, "task", {
        "subject": text, "due_date": due, "assignee": who, "status": "open"}, idempotency_key, validate)


def complete_task(store: Store, actor: Actor, task_id: int) -> bool:
    """Mark a task done; False (and nothing written) when it already was.

    The task's assignee completes their own whatever their role (a sales rep, legal); anyone else
    needs act_on_customers."""
    with store.write() as conn:
        task = conn.execute(sa.select(activities.c.status, activities.c.assignee).where(
            activities.c.activity_id == int(task_id), activities.c.kind == "task")).first()
        if task is None or task.assignee != actor.username:
            require(actor, "act_on_customers")
        if task is None:
            raise FollowUpError(f"task {task_id}: there is no such task.")
        status = task.status
        if status == "done":
            return False
        conn.execute(activities.update().where(activities.c.activity_id == int(task_id))
                     .values(status="done", resolved_at=datetime.now()))
        audit.record(conn, actor, "task.complete", "activity", task_id, old={"status": status}, new={"status": "done"})
    return True


def snooze(store: Store, actor: Actor, customer_id: str, until: date, reason: str, item: str | None = None, *,
           today: date | None = None, idempotency_key: str | None = None) -> int:
    """Hide the customer's worklist items (only those of reason code `item`, or all) until a date.

    The items come back on `until` (1 .. 90 days ahead)."""
    today = today or date.today()
    text = _check_text("reason", reason)
    if not today < until <= today + timedelta(days=MAX_SNOOZE_DAYS):
        raise FollowUpError(f"snooze until {until}: must be after {today} and at most {MAX_SNOOZE_DAYS} days ahead.")
    return _record(store, actor, "act_on_customers", customer_id, "snooze", {
        "due_date": until, "reason": text, "target": item, "subject": f"Snoozed until {until}: {text}"},
        idempotency_key)


PROMISE_PAID_SQL = """
SELECT p.activity_id, p.amount, p.due_date,
       COALESCE((SELECT SUM(al.amount) FROM allocations al
                 WHERE (al.to_entry_id = p.entry_id OR EXISTS (SELECT 1 FROM activity_invoices pi
                        WHERE pi.activity_id = p.activity_id AND pi.entry_id = al.to_entry_id))
                   AND al.allocation_date >= CAST(p.occurred_at AS DATE)
                   AND al.allocation_date <= p.due_date AND al.allocation_date <= :as_of), 0)
     + COALESCE((SELECT -SUM(e.amount) FROM ledger_entries e
                 WHERE p.entry_id IS NULL AND e.customer_id = p.customer_id AND e.entry_type = 'payment'
                   AND NOT EXISTS (SELECT 1 FROM activity_invoices pn WHERE pn.activity_id = p.activity_id)
                   AND e.posting_date >= CAST(p.occurred_at AS DATE)
                   AND e.posting_date <= p.due_date AND e.posting_date <= :as_of), 0) AS paid
FROM activities p
WHERE p.kind = 'promise' AND p.status = 'pending'
"""


def refresh_promise_statuses(store: Store, as_of: date, actor: Actor = SYSTEM) -> dict[str, int]:
    """Apply the promise rule (module docstring) to every pending promise; returns counts changed."""
    decided = store.read(f"""
        SELECT activity_id, CASE WHEN paid >= amount THEN 'kept' ELSE 'broken' END AS new_status
        FROM ({PROMISE_PAID_SQL}) p
        WHERE paid >= amount OR due_date < :as_of
    """, {"as_of": as_of})  # noqa: S608 - composed from constants only
    counts = {"kept": 0, "broken": 0}
    if decided.empty:
        return counts
    stmt = sa.text("UPDATE activities SET status = :status, resolved_at = :now "
                   "WHERE activity_id IN :ids AND status = 'pending'").bindparams(sa.bindparam("ids", expanding=True))
    with store.write() as conn:
        for status, group in decided.groupby("new_status"):
            ids = [int(i) for i in group["activity_id"]]
            counts[str(status)] = conn.execute(stmt, {"status": status, "now": datetime.now(), "ids": ids}).rowcount
            audit.record(conn, actor, "promise.refresh", "activity", ",".join(map(str, ids[:50])),
                         old={"status": "pending"}, new={"status": status, "count": len(ids)},
                         detail=f"promise rule as of {as_of}")
    return counts
