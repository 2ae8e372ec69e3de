"""The audit trail: every write records who, when, what, and the values before and after."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.store.connection import Store
from analytics.store.schema import audit_log


def _jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def record(
    conn: sa.Connection,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    detail: str | None = None,
) -> int:
    """Append one audit line inside the caller's transaction; returns its id."""
    return int(conn.execute(
        audit_log.insert().values(
            logged_at=datetime.now(),
            actor=actor.username,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            old_values=None if old is None else json.dumps(old, default=_jsonable, sort_keys=True),
            new_values=None if new is None else json.dumps(new, default=_jsonable, sort_keys=True),
            detail=detail,
        ).returning(audit_log.c.audit_id)
    ).scalar())


def audit_trail(store: Store, limit: int = 500) -> pd.DataFrame:
    """The most recent audit lines, newest first."""
    return store.read(
        "SELECT audit_id, logged_at, actor, action, entity, entity_id, old_values, new_values, detail "
        "FROM audit_log ORDER BY audit_id DESC LIMIT :limit",
        {"limit": limit},
    )


def search_audit(
    store: Store,
    actors: list[str] | None = None,
    actions: list[str] | None = None,
    entities: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    text: str | None = None,
    limit: int | None = 10_000,
) -> pd.DataFrame:
    """Audit lines matching every given filter, newest first (read only: nothing edits the log).

    `start`/`end` are inclusive calendar days; `text` matches the entity id, the old and new
    values and the detail, case-insensitively.
    """
    query = sa.select(audit_log).order_by(audit_log.c.audit_id.desc())
    for column, values in ((audit_log.c.actor, actors), (audit_log.c.action, actions),
                           (audit_log.c.entity, entities)):
        if values:  # OR of equalities, not IN: Store.read compiles without expanding bind lists
            query = query.where(sa.or_(*(column == v for v in values)))
    if start:
        query = query.where(audit_log.c.logged_at >= datetime.combine(start, datetime.min.time()))
    if end:
        query = query.where(audit_log.c.logged_at < datetime.combine(end + timedelta(days=1), datetime.min.time()))
    if text and text.strip():
        pattern = f"%{text.strip().lower()}%"
        query = query.where(sa.or_(*(
            sa.func.lower(sa.func.coalesce(c, "")).like(pattern)
            for c in (audit_log.c.entity_id, audit_log.c.old_values, audit_log.c.new_values, audit_log.c.detail)
        )))
    if limit:
        query = query.limit(limit)
    return store.read(query)


def audit_choices(store: Store) -> dict[str, list[str]]:
    """Distinct actors, actions and entities in the log, for the filter pickers."""
    return {
        column: store.read(f"SELECT DISTINCT {column} AS v FROM audit_log ORDER BY v").v.tolist()  # noqa: S608
        for column in ("actor", "action", "entity")
    }
