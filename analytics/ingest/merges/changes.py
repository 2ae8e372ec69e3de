"""What a merge did with each row: new, changed or same. `Counts` tallies them, `null_safe_equal`
compares a row with the store, `audit_updates` writes one audit line per changed row.

Rule: inserted rows are not audited one by one (each carries its run in `source`); an updated row
is, with the old and new values of the compared fields, in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.store.connection import bulk_insert


@dataclass
class Counts:
    """What a merge did: rows inserted, updated and left unchanged, and what it made besides."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    customers_created: list[str] = field(default_factory=list)
    allocations: int = 0
    disputes: int = 0
    attributes_inserted: int = 0  # customers files: attribute values set for the first time
    attributes_updated: int = 0  # ... and attribute values changed (each audited)


def audit_updates(conn: sa.Connection, actor: Actor, entity: str, run_id: int, changed: pd.DataFrame,
                  key: list[str], fields: list[str]) -> None:
    """One audit line per updated row, old and new values of the compared fields, inserted in bulk."""
    if changed.empty:
        return

    def as_json(prefix: str) -> list[str]:
        # values as text (dates as YYYY-MM-DD), nulls as null; to_json writes all lines in C
        part = changed[[f"{prefix}{f}" for f in fields]].set_axis(fields, axis=1)
        text = {f: (part[f].dt.strftime("%Y-%m-%d") if pd.api.types.is_datetime64_any_dtype(part[f])
                    else part[f].astype(str)).where(part[f].notna(), None) for f in fields}
        return pd.DataFrame(text).to_json(orient="records", lines=True).splitlines()

    entity_id = changed[key[0]].astype(str)
    for k in key[1:]:
        entity_id = entity_id + "/" + changed[k].astype(str)
    lines = pd.DataFrame({
        "logged_at": datetime.now(), "actor": actor.username, "action": "import_update", "entity": entity,
        "entity_id": entity_id.to_numpy(), "old_values": as_json("old_"), "new_values": as_json("new_"),
        "detail": f"import run #{run_id}",
    })
    bulk_insert(conn, "audit_log", lines)


def null_safe_equal(a: str, b: str) -> str:
    return f"({a} = {b} OR ({a} IS NULL AND {b} IS NULL))"
