"""The weekly to-do: every task, request and promise due this week, for one person or the team.

The week is Monday to Sunday around the as-of date D (the pages' list date, not the machine clock).
An item is on a person's week when it is still open and due in that week, on any day of it, so a
task due on Friday shows from Monday on:
- a task: open, assigned to them;
- a request: open or in progress, owned by them, or nobody's yet and in their department's queue;
- a promise to pay: pending, on a customer they collect (or, with no collector, that they recorded).
With `earlier=True` the items still open from before the week come too (`overdue` is true for them).
The team view (username None, for managers: `TEAM_ROLES`) lists everybody's items.

Anyone completes their own: an assignee their task (`followups.complete_task`), whatever their
role; a request's owner or department member their request (`requests.set_request_status`).
Promises are decided by the payment rule, not by hand.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from analytics.collections.followups import refresh_promise_statuses
from analytics.collections.requests import user_department
from analytics.store.connection import Store

TEAM_ROLES = ("admin", "cfo")  # managers: they also see the whole team's week
WEEK_COLUMNS = ("due_date", "overdue", "kind", "item_id", "customer_id", "customer_name", "subject", "person",
                "department", "status", "amount")


def week_of(as_of: date) -> tuple[date, date]:
    """Monday and Sunday of the week holding `as_of`."""
    monday = as_of - timedelta(days=as_of.weekday())
    return monday, monday + timedelta(days=6)


_WEEK_SQL = """
SELECT * FROM (
    SELECT t.due_date, 'task' AS kind, t.activity_id AS item_id, t.customer_id, c.name AS customer_name,
           t.subject, t.assignee AS person, t.department, t.status, CAST(NULL AS DECIMAL(18, 2)) AS amount
    FROM activities t LEFT JOIN customers c ON c.customer_id = t.customer_id
    WHERE t.kind = 'task' AND t.status = 'open' AND t.due_date BETWEEN :start AND :end
      {task_person}
    UNION ALL
    SELECT r.due_date, 'request', r.request_id, r.customer_id, c.name, r.subject, r.owner, r.department,
           r.status, NULL
    FROM requests r LEFT JOIN customers c ON c.customer_id = r.customer_id
    WHERE r.status IN ('open', 'in_progress') AND r.due_date BETWEEN :start AND :end
      {request_person}
    UNION ALL
    SELECT p.due_date, 'promise', p.activity_id, p.customer_id, c.name, p.subject,
           COALESCE(c.collector, p.author), p.department, p.status, p.amount
    FROM activities p LEFT JOIN customers c ON c.customer_id = p.customer_id
    WHERE p.kind = 'promise' AND p.status = 'pending' AND p.due_date BETWEEN :start AND :end
      {promise_person}
) w ORDER BY due_date, kind, item_id
"""


def week_items(store: Store, as_of: date, username: str | None = None, *, earlier: bool = False) -> pd.DataFrame:
    """The week's open items (module docstring) for `username`, or the team's when None; due date
    order. Refreshes promise statuses as of `as_of` first. Columns: WEEK_COLUMNS."""
    refresh_promise_statuses(store, as_of)
    monday, sunday = week_of(as_of)
    params: dict[str, object] = {"start": date(1900, 1, 1) if earlier else monday, "end": sunday}
    person = {"task_person": "", "request_person": "", "promise_person": ""}
    if username is not None:
        params["me"] = username
        person["task_person"] = "AND t.assignee = :me"
        person["promise_person"] = "AND COALESCE(c.collector, p.author) = :me"
        department = user_department(store, username)
        if department is None:
            person["request_person"] = "AND r.owner = :me"
        else:
            params["department"] = department
            person["request_person"] = "AND (r.owner = :me OR (r.owner IS NULL AND r.department = :department))"
    items = store.read(sa.text(_WEEK_SQL.format(**person)), params)  # fixed fragments only
    items["due_date"] = pd.to_datetime(items["due_date"]).dt.date
    items.insert(1, "overdue", items["due_date"] < monday)
    return items[list(WEEK_COLUMNS)]
