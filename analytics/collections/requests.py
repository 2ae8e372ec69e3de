"""Requests between departments: typed requests on a customer, each in one department's queue.

The seeds' "change of name, address, addition of purchase order", "a litigation workflow bringing
together legal and logistics" and "validating or rejecting a request": work that used to go by email
becomes a request that can be counted.

**Routing.** A request has a type (`REQUEST_TYPES`) and goes to one department's queue
(`REQUEST_DEPARTMENTS`): the department named when it is raised, else the type's default
(`DEFAULT_DEPARTMENT`): an address change → logistics (delivery and invoicing addresses are kept
with the shipping data), a PO number → sales (the rep obtains it from the buyer), a credit note
request → billing, a dispute investigation → legal (who brings in logistics by raising their own
request), a credit limit change → credit. A request of type `other` must name its department.
Its due date defaults to the day it is raised (`today`, the pages' as-of date) plus
`DEFAULT_DUE_DAYS`.

**Status.** open → in_progress → approved | rejected | done, and open → approved | rejected | done
directly. approved, rejected and done are final: the request is closed (`closed_at`, `decided_by`)
and never changes again. A rejection needs a note saying why.

**Who.** Raising needs `raise_requests` (collectors, sales, other departments, admins). Working a
request (claim it, assign it, set its status) needs `work_requests` and membership of its
department (`users.team`; a sales rep without a team is in sales); admins work every queue. An owner
must be an active user who may work that queue. Every write checks this in the engine, runs in one
transaction with its audit line, and is idempotent: raising again with the same `idempotency_key`
returns the first request; setting the status a request already has writes nothing.

**Counts** (`request_counts`, per department and type, per department, and in total), as of D:
- open: status open or in progress;
- overdue: open with due_date < D;
- closed: approved, rejected or done;
- median days to close: the median over closed requests of (date closed − date raised), in
  calendar days (a request closed the day it was raised took 0 days).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import PERMISSIONS, Actor, PermissionDenied, may, require
from analytics.store.connection import Store
from analytics.store.ids import reserve_ids
from analytics.store.schema import REQUEST_IDS, customers, requests, users

REQUEST_TYPES: dict[str, str] = {  # type -> label
    "address_change": "Address change",
    "po_number": "PO number",
    "credit_note": "Credit note request",
    "dispute_investigation": "Dispute investigation",
    "credit_limit_change": "Credit limit change",
    "other": "Other",
}
REQUEST_DEPARTMENTS = ("sales", "logistics", "legal", "billing", "credit")
DEFAULT_DEPARTMENT: dict[str, str] = {
    "address_change": "logistics",
    "po_number": "sales",
    "credit_note": "billing",
    "dispute_investigation": "legal",
    "credit_limit_change": "credit",
}
DEFAULT_DUE_DAYS: dict[str, int] = {"dispute_investigation": 10}  # every other type: 5
STATUSES = ("open", "in_progress", "approved", "rejected", "done")
OPEN_STATUSES = ("open", "in_progress")
FINAL_STATUSES = ("approved", "rejected", "done")
NEXT_STATUSES: dict[str, tuple[str, ...]] = {  # the transitions allowed from each status
    "open": ("in_progress", "approved", "rejected", "done"),
    "in_progress": ("approved", "rejected", "done"),
    "approved": (), "rejected": (), "done": (),
}
MAX_DUE_DAYS = 366
REQUEST_COLUMNS = ("request_id", "customer_id", "customer_name", "request_type", "department", "owner",
                   "raised_by", "raised_at", "due_date", "status", "subject", "details", "decided_by",
                   "closed_at", "resolution_note")


class RequestError(ValueError):
    """A request that cannot be raised or changed, naming the field, the value and why."""


def default_due_days(request_type: str) -> int:
    return DEFAULT_DUE_DAYS.get(request_type, 5)


def _text(field: str, value: str | None, required: bool, limit: int) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise RequestError(f"{field}: required.")
    if len(value) > limit:
        raise RequestError(f"{field}: at most {limit} characters (got {len(value)}).")
    return value or None


def department_of(conn: sa.Connection, username: str) -> str | None:
    """The request queue a user works: their team when it is a request department; a sales rep
    without one is in sales; anyone else is in none (admins work every queue by role)."""
    row = conn.execute(sa.select(users.c.team, users.c.role).where(users.c.username == username)).first()
    if row is None:
        return None
    if row.team in REQUEST_DEPARTMENTS:
        return str(row.team)
    return "sales" if row.role == "sales" else None


def user_department(store: Store, username: str) -> str | None:
    """`department_of` for the pages and the command line."""
    with store.engine.connect() as conn:
        return department_of(conn, username)


def may_work(conn: sa.Connection, actor: Actor, department: str) -> bool:
    """Whether the actor may claim, assign and decide requests in `department`'s queue."""
    if not may(actor, "work_requests"):
        return False
    return actor.role == "admin" or department_of(conn, actor.username) == department


def _require_work(conn: sa.Connection, actor: Actor, request: dict[str, Any]) -> None:
    require(actor, "work_requests")
    if not may_work(conn, actor, request["department"]):
        own = department_of(conn, actor.username)
        raise PermissionDenied(
            f"{actor.username} works the {own or 'no'} queue; request {request['request_id']} is in "
            f"{request['department']}'s.")


def _check_owner(conn: sa.Connection, owner: str, department: str) -> None:
    row = conn.execute(sa.select(users.c.role, users.c.active).where(users.c.username == owner)).first()
    if row is None:
        raise RequestError(f"owner {owner!r}: there is no such user.")
    if not row.active:
        raise RequestError(f"owner {owner!r}: the account is disabled.")
    if not may_work(conn, Actor(owner, str(row.role)), department):
        raise RequestError(f"owner {owner!r}: does not work the {department} queue.")


def request_workers(store: Store, department: str | None = None) -> list[str]:
    """The active users who work `department`'s queue (None: any queue), by username; admins, who
    work every queue, are not listed."""
    roles = sorted(PERMISSIONS["work_requests"] - {"admin"})
    stmt = sa.text("""
        SELECT username FROM (
            SELECT username, CASE WHEN team IN :departments THEN team WHEN role = 'sales' THEN 'sales' END AS queue
            FROM users WHERE active AND role IN :roles) u
        WHERE queue IS NOT NULL AND (queue = :department OR :any = 1)
        ORDER BY username
    """).bindparams(sa.bindparam("departments", expanding=True), sa.bindparam("roles", expanding=True))
    return store.read(stmt, {"departments": list(REQUEST_DEPARTMENTS), "roles": roles,
                             "department": department or "", "any": int(department is None)})["username"].tolist()


def _request(conn: sa.Connection, request_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(requests).where(requests.c.request_id == int(request_id))).mappings().first()
    if row is None:
        raise RequestError(f"request {request_id}: there is no such request.")
    return dict(row)


def raise_request(
    store: Store, actor: Actor, customer_id: str, request_type: str, subject: str, *, details: str = "",
    department: str | None = None, owner: str | None = None, due_date: date | None = None,
    today: date | None = None, now: datetime | None = None, idempotency_key: str | None = None,
) -> int:
    """Raise a request on a customer, routed to `department` (default: the type's); status open.

    `due_date` defaults to `today` (the as-of date on the pages) + `default_due_days(type)`; it
    may not be before `today` nor more than a year after. Returns the request id.
    """
    require(actor, "raise_requests")
    today = today or date.today()
    now = now or datetime.now()
    if request_type not in REQUEST_TYPES:
        raise RequestError(f"type {request_type!r}: choose one of {', '.join(REQUEST_TYPES)}.")
    department = department or DEFAULT_DEPARTMENT.get(request_type)
    if department is None:
        raise RequestError(f"department: required for a request of type {request_type!r}; choose one of "
                           f"{', '.join(REQUEST_DEPARTMENTS)}.")
    if department not in REQUEST_DEPARTMENTS:
        raise RequestError(f"department {department!r}: choose one of {', '.join(REQUEST_DEPARTMENTS)}.")
    due = due_date or today + timedelta(days=default_due_days(request_type))
    if not today <= due <= today + timedelta(days=MAX_DUE_DAYS):
        raise RequestError(f"due date {due}: must be between {today} and {today + timedelta(days=MAX_DUE_DAYS)}.")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64):
        raise RequestError(f"idempotency_key {idempotency_key!r} must be 1 to 64 characters.")
    row = {
        "customer_id": customer_id, "request_type": request_type, "department": department,
        "owner": (owner or "").strip() or None, "raised_by": actor.username, "raised_at": now, "due_date": due,
        "status": "open", "subject": _text("subject", subject, True, 200),
        "details": _text("details", details, False, 4000), "updated_at": now, "idempotency_key": idempotency_key,
    }
    with store.write() as conn:
        if idempotency_key is not None:
            done = conn.execute(sa.select(requests.c.request_id)
                                .where(requests.c.idempotency_key == idempotency_key)).scalar()
            if done is not None:
                return int(done)
        if conn.execute(sa.select(customers.c.customer_id).where(customers.c.customer_id == customer_id)).scalar() \
                is None:
            raise RequestError(f"customer_id {customer_id!r}: there is no such customer.")
        if row["owner"]:
            _check_owner(conn, row["owner"], department)
        request_id = reserve_ids(conn, REQUEST_IDS, 1)
        conn.execute(requests.insert().values(request_id=request_id, **row))
        audit.record(conn, actor, "request.raise", "request", request_id, new=row)
    return request_id


def set_request_status(store: Store, actor: Actor, request_id: int, status: str, note: str = "", *,
                       now: datetime | None = None) -> bool:
    """Move a request to `status` (the transitions in `NEXT_STATUSES`); False, and nothing written,
    when it already has that status. A final status closes it; `rejected` needs a note."""
    if status not in STATUSES:
        raise RequestError(f"status {status!r}: choose one of {', '.join(STATUSES)}.")
    require(actor, "work_requests")
    text = _text("note", note, status == "rejected", 4000)
    now = now or datetime.now()
    with store.write() as conn:
        request = _request(conn, request_id)
        _require_work(conn, actor, request)
        old = request["status"]
        if old == status:
            return False
        if status not in NEXT_STATUSES[old]:
            why = "it is closed" if old in FINAL_STATUSES else f"allowed: {', '.join(NEXT_STATUSES[old])}"
            raise RequestError(f"request {request_id}: cannot go from {old} to {status} ({why}).")
        new: dict[str, Any] = {"status": status, "updated_at": now}
        if status in FINAL_STATUSES:
            new |= {"decided_by": actor.username, "decided_at": now, "closed_at": now, "resolution_note": text}
        if status == "in_progress" and request["owner"] is None:
            new["owner"] = actor.username  # starting on it makes it yours
        conn.execute(requests.update().where(requests.c.request_id == int(request_id)).values(**new))
        audit.record(conn, actor, "request.status", "request", request_id,
                     old={k: request[k] for k in new if k in request and k != "updated_at"},
                     new={k: v for k, v in new.items() if k != "updated_at"})
    return True


def assign_request(store: Store, actor: Actor, request_id: int, owner: str, *, now: datetime | None = None) -> bool:
    """Give an open request to `owner` (someone who works its queue; the actor too: claiming it);
    False when it is theirs already. A closed request keeps its owner."""
    require(actor, "work_requests")
    owner = (owner or "").strip()
    with store.write() as conn:
        request = _request(conn, request_id)
        _require_work(conn, actor, request)
        if request["status"] in FINAL_STATUSES:
            raise RequestError(f"request {request_id}: it is {request['status']}; a closed request keeps its owner.")
        if request["owner"] == owner:
            return False
        _check_owner(conn, owner, request["department"])
        conn.execute(requests.update().where(requests.c.request_id == int(request_id))
                     .values(owner=owner, updated_at=now or datetime.now()))
        audit.record(conn, actor, "request.assign", "request", request_id,
                     old={"owner": request["owner"]}, new={"owner": owner})
    return True


def claim_request(store: Store, actor: Actor, request_id: int, *, now: datetime | None = None) -> bool:
    """Take an open request: it becomes the actor's, and in progress if it was open; False when it
    was already the actor's and in progress."""
    require(actor, "work_requests")
    now = now or datetime.now()
    with store.write() as conn:
        request = _request(conn, request_id)
        _require_work(conn, actor, request)
        if request["status"] in FINAL_STATUSES:
            raise RequestError(f"request {request_id}: it is {request['status']}; a closed request keeps its owner.")
        new = {"owner": actor.username, "status": "in_progress"}
        if all(request[k] == v for k, v in new.items()):
            return False
        conn.execute(requests.update().where(requests.c.request_id == int(request_id)).values(**new, updated_at=now))
        audit.record(conn, actor, "request.claim", "request", request_id,
                     old={k: request[k] for k in new}, new=new)
    return True


_LIST_SQL = """
SELECT r.request_id, r.customer_id, c.name AS customer_name, r.request_type, r.department, r.owner,
       r.raised_by, r.raised_at, r.due_date, r.status, r.subject, r.details, r.decided_by, r.closed_at,
       r.resolution_note
FROM requests r LEFT JOIN customers c ON c.customer_id = r.customer_id
WHERE {where}
ORDER BY CASE WHEN r.status IN ('open', 'in_progress') THEN 0 ELSE 1 END, r.due_date, r.request_id
"""


def list_requests(store: Store, *, department: str | None = None, person: str | None = None,
                  customer_id: str | None = None, open_only: bool = True) -> pd.DataFrame:
    """Requests, open ones first by due date: a department's queue (`department`), a person's own
    (`person`: owned or raised by them), a customer's; `open_only=False` adds the closed ones."""
    where, params = ["1 = 1"], {}
    for value, clause, name in ((department, "r.department = :department", "department"),
                                (customer_id, "r.customer_id = :customer", "customer"),
                                (person, "(r.owner = :person OR r.raised_by = :person)", "person")):
        if value is not None:
            where.append(clause)
            params[name] = value
    if open_only:
        where.append("r.status IN ('open', 'in_progress')")
    return store.read(_LIST_SQL.format(where=" AND ".join(where)), params)  # noqa: S608 - fixed fragments only


def request_counts(store: Store, as_of: date) -> pd.DataFrame:
    """Open, overdue, closed and median days to close (module docstring) per department and type,
    then per department (request_type 'all'), then in total (department 'all'). One query."""
    return store.read(sa.text("""
        SELECT CASE WHEN GROUPING(department) = 1 THEN 'all' ELSE department END AS department,
               CASE WHEN GROUPING(request_type) = 1 THEN 'all' ELSE request_type END AS request_type,
               COUNT(CASE WHEN status IN ('open', 'in_progress') THEN 1 END) AS open,
               COUNT(CASE WHEN status IN ('open', 'in_progress') AND due_date < :as_of THEN 1 END) AS overdue,
               COUNT(CASE WHEN status IN ('approved', 'rejected', 'done') THEN 1 END) AS closed,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_close) AS median_days_to_close
        FROM (SELECT department, request_type, status, due_date,
                     CASE WHEN closed_at IS NOT NULL
                          THEN CAST(closed_at AS DATE) - CAST(raised_at AS DATE) END AS days_to_close
              FROM requests) r
        GROUP BY ROLLUP (department, request_type)
        ORDER BY GROUPING(department), department, GROUPING(request_type), request_type
    """), {"as_of": as_of})
