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


# -- the log in words: before -> after per field, actor names, no raw JSON --------------------------
EMPTY = "(empty)"  # a field that had, or was given, no value


def _shown(value: Any) -> str:
    """A field's value in words: empty for None/"", lists joined by commas, nested fields as name=value."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or EMPTY
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items()) or EMPTY
    return str(value)


def _fields(raw: Any) -> dict[str, Any]:
    if raw is None or (isinstance(raw, float) and pd.isna(raw)) or raw == "":
        return {}
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return {"value": raw}  # not JSON (an older line): shown as it is
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def describe_changes(old_values: Any, new_values: Any) -> str:
    """The change of one audit line, one field per line: "field: before → after" for a field both
    sides name and that changed, "field: value" when only one side has it (a creation or a removal
    says so with "(empty)" on the other side); "" when the line recorded no values."""
    old, new = _fields(old_values), _fields(new_values)
    lines = []
    for field in list(dict.fromkeys([*old, *new])):
        before, after = _shown(old.get(field)), _shown(new.get(field))
        if field in old and field in new and before == after:
            continue
        if field in old and field in new or (old and new):
            lines.append(f"{field}: {before} → {after}")
        else:
            lines.append(f"{field}: {after if field in new else before}")
    return "\n".join(lines)


def readable_audit(store: Store, lines: pd.DataFrame) -> pd.DataFrame:
    """Audit lines (from `search_audit`) in words: #, when, who ("Name (username)"; the username alone
    for the command line or a removed account), action, entity, id, changes (`describe_changes`) and
    detail; no raw JSON and no "None" (missing text is "")."""
    names = store.read("SELECT username, name FROM users")
    name_of = dict(zip(names["username"], names["name"], strict=True))
    who = lines["actor"].map(lambda u: f"{name_of[u]} ({u})" if name_of.get(u) else str(u))
    changes = [describe_changes(o, n) for o, n in zip(lines["old_values"], lines["new_values"], strict=True)]
    return pd.DataFrame({
        "audit_id": lines["audit_id"], "logged_at": lines["logged_at"], "who": who, "action": lines["action"],
        "entity": lines["entity"], "entity_id": lines["entity_id"].fillna(""), "changes": changes,
        "detail": lines["detail"].fillna(""),
    })
