"""Which collector works which customer: assign one by one, or in bulk by segment or country.

Set-based: one INSERT ... SELECT writes an audit line per customer whose collector changes (old and
new collector), one more writes the reassignment to each customer's timeline, one UPDATE moves
them. Customers already with that collector are left alone, so repeating an assignment (double
click, rerun) changes and records nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor, require
from analytics.store.connection import Store
from analytics.store.schema import activities, audit_log, customers, users


class AssignmentError(ValueError):
    """An assignment that cannot be made, explained in plain words."""


def _json_text(column: sa.ColumnElement, key: str) -> sa.ColumnElement:
    """`{"key": "value"}` (or `{"key": null}`) built in SQL, portable to DuckDB and PostgreSQL."""
    escaped = sa.func.replace(sa.func.replace(column, "\\", "\\\\"), '"', '\\"')
    value = sa.case((column.is_(None), sa.literal("null")), else_=sa.literal('"') + escaped + sa.literal('"'))
    return sa.literal(f'{{"{key}": ') + value + sa.literal("}")


def _scope(
    customer_ids: Sequence[str] | None, segment: str | None, country: str | None,
) -> list[sa.ColumnElement]:
    conditions: list[sa.ColumnElement] = []
    if customer_ids is not None:
        conditions.append(customers.c.customer_id.in_(list(customer_ids)))
    if segment:
        conditions.append(customers.c.segment == segment)
    if country:
        conditions.append(customers.c.country == country.upper())
    return conditions


def assign_customers(
    store: Store, actor: Actor, collector: str | None,
    customer_ids: Sequence[str] | None = None, segment: str | None = None, country: str | None = None,
) -> int:
    """Give the chosen customers to `collector` (None: unassign); returns how many changed.

    The choice is the intersection of the given ids, segment and country; at least one is needed,
    so a bare call can never reassign the whole portfolio by accident.
    """
    require(actor, "assign_customers")
    if customer_ids is None and not segment and not country:
        raise AssignmentError("Choose customers, a segment or a country to assign.")
    if customer_ids is not None and not customer_ids:
        return 0
    scope = _scope(customer_ids, segment, country)
    now = datetime.now()
    with store.write() as conn:
        if collector is not None:
            row = conn.execute(sa.select(users.c.role, users.c.active).where(users.c.username == collector)).first()
            if row is None:
                raise AssignmentError(f"There is no user {collector}.")
            if row.role != "collector" or not row.active:
                raise AssignmentError(f"{collector} is not an active collector (role {row.role}).")
        changing = sa.and_(*scope, customers.c.collector.is_distinct_from(collector))
        how = ", ".join(f"{k}={v}" for k, v in
                        (("segment", segment), ("country", country)) if v) or "chosen customers"
        conn.execute(audit_log.insert().from_select(
            ["logged_at", "actor", "action", "entity", "entity_id", "old_values", "new_values", "detail"],
            sa.select(
                sa.literal(now, sa.DateTime), sa.literal(actor.username), sa.literal("customer.assign"),
                sa.literal("customer"), customers.c.customer_id,
                _json_text(customers.c.collector, "collector"),
                _json_text(sa.literal(collector, sa.String), "collector"),
                sa.literal(f"assigned by {how}"),
            ).where(changing),
        ))
        conn.execute(activities.insert().from_select(
            ["customer_id", "kind", "occurred_at", "author", "subject", "target"],
            sa.select(
                customers.c.customer_id, sa.literal("reassignment"), sa.literal(now, sa.DateTime),
                sa.literal(actor.username),
                sa.literal(f"Assigned to {collector}" if collector else "Unassigned"),
                sa.literal(collector, sa.String),
            ).where(changing),
        ))
        return int(conn.execute(
            customers.update().where(changing).values(collector=collector, updated_at=now)
        ).rowcount)


def assignment_preview(
    store: Store, customer_ids: Sequence[str] | None = None, segment: str | None = None,
    country: str | None = None,
) -> pd.DataFrame:
    """How many of the chosen customers each collector has now (collector None: unassigned)."""
    scope = _scope(customer_ids, segment, country)
    query = (sa.select(customers.c.collector, sa.func.count().label("customers"))
             .where(*scope).group_by(customers.c.collector).order_by(customers.c.collector.nulls_first()))
    with store.engine.connect() as conn:  # conn.execute expands the id list (Store.read does not)
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=["collector", "customers"])


def collector_load(store: Store) -> pd.DataFrame:
    """Active collectors with the number of customers each works, busiest first."""
    return store.read(
        "SELECT u.username AS collector, u.name, COUNT(c.customer_id) AS customers "
        "FROM users u LEFT JOIN customers c ON c.collector = u.username "
        "WHERE u.role = 'collector' AND u.active GROUP BY u.username, u.name "
        "ORDER BY customers DESC, u.username"
    )


def assignment_choices(store: Store) -> dict[str, list[str]]:
    """Segments and countries present among customers, for the bulk assignment pickers."""
    segments = store.read("SELECT DISTINCT segment FROM customers WHERE segment IS NOT NULL ORDER BY segment")
    countries = store.read("SELECT DISTINCT country FROM customers WHERE country IS NOT NULL ORDER BY country")
    return {"segment": segments.segment.tolist(), "country": countries.country.tolist()}


def find_customers(store: Store, text: str, limit: int = 50) -> pd.DataFrame:
    """Customers whose id or name contains `text` (case-insensitive), with their collector."""
    return store.read(
        "SELECT customer_id, name, segment, country, collector FROM customers "
        "WHERE LOWER(customer_id) LIKE :t OR LOWER(name) LIKE :t ORDER BY name LIMIT :limit",
        {"t": f"%{text.strip().lower()}%", "limit": limit},
    )


def collectors(store: Store) -> pd.DataFrame:
    """Active collectors (for a manager's choice), with how many customers each owns."""
    return store.read(
        "SELECT u.username, u.name, COUNT(c.customer_id) AS customers FROM users u "
        "LEFT JOIN customers c ON c.collector = u.username "
        "WHERE u.role = 'collector' AND u.active GROUP BY u.username, u.name ORDER BY u.username")
