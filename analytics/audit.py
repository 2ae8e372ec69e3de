"""The audit trail: every write records who, when, what, and the values before and after."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.roles import Actor
from analytics.schema import audit_log
from analytics.store import Store


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


def data_version(store: Store) -> int:
    """A number that changes whenever data changes: every write is audited, so the last audit id.

    Pages key their caches on it, so a page never shows numbers from before an import or action.
    """
    return int(store.scalar("SELECT COALESCE(MAX(audit_id), 0) FROM audit_log"))


# Audit entities whose writes touch only accounts (sign-ins, users) and the activity timeline
# (calls, notes, promises, disputes, tasks): no ledger, customer, FX or dunning figure reads them.
TIMELINE_AND_ACCOUNTS = ("user", "activity")
_figures_seen: dict[str, tuple[int, int]] = {}  # store url -> (data_version, figures_version)
_figures_lock = threading.Lock()


def figures_version(store: Store) -> int:
    """`data_version` ignoring the writes in `TIMELINE_AND_ACCOUNTS`: the last audit id of any
    other entity. Ledger dashboards key their caches on it, so a sign-in or a logged call does
    not make every chart recompute. Incremental: only audit lines newer than the last call are read.
    """
    latest = data_version(store)
    with _figures_lock:
        seen, version = _figures_seen.get(store.url, (0, 0))
    if latest == seen:
        return version
    after, version = (seen, version) if latest > seen else (0, 0)  # fewer lines: the log was reset
    newer = store.read(
        sa.text("SELECT MAX(audit_id) AS newer FROM audit_log WHERE audit_id > :after AND audit_id <= :latest "
                "AND entity NOT IN :ignored").bindparams(sa.bindparam("ignored", expanding=True)),
        {"after": after, "latest": latest, "ignored": list(TIMELINE_AND_ACCOUNTS)})["newer"].iloc[0]
    version = version if pd.isna(newer) else int(newer)
    with _figures_lock:
        _figures_seen[store.url] = (latest, version)
    return version


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
