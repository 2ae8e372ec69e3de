"""Dunning configurations as policies: the list, and adopting one that came in as imported history.

A `dunning-history` import creates the configurations it names as **inactive** (history, not a
policy: the dunning schedule follows active configurations only). `adopt_configuration` is the
team's decision to keep dunning that way: it activates the configuration's latest version and
assigns it to every customer whose imported (or recorded) runs name it and who has no
configuration of their own yet. Customers with a configuration keep it. Permission
`edit_dunning` (analysts and admins); one audit line for the configuration and one per customer
assigned, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.store.connection import Store


class DunningConfigError(ValueError):
    """A configuration that cannot be adopted, in plain words."""


def dunning_configurations(store: Store) -> pd.DataFrame:
    """Every configuration at its latest version: active or history, its stages and customers assigned."""
    return store.read("""
        SELECT d.config_id, d.version, d.name, d.active, d.segment, d.description,
               (SELECT COUNT(*) FROM dunning_stages s WHERE s.config_id = d.config_id AND s.version = d.version)
                 AS stages,
               (SELECT COUNT(*) FROM customers c WHERE c.dunning_config_id = d.config_id) AS customers,
               (SELECT COUNT(*) FROM dunning_runs r WHERE r.config_id = d.config_id) AS runs
        FROM dunning_configs d
        WHERE d.version = (SELECT MAX(v.version) FROM dunning_configs v WHERE v.config_id = d.config_id)
        ORDER BY d.config_id""")


def adopt_configuration(store: Store, actor: Actor, name: str) -> dict[str, Any]:
    """Activate the configuration `name` and assign it to the customers its runs name (module rule).

    Returns {"config_id", "activated" (False when it already was active), "customers" assigned}.
    """
    require(actor, "edit_dunning")
    with store.write() as conn:
        found = conn.execute(sa.text("""
            SELECT d.config_id, d.version, d.active FROM dunning_configs d
            WHERE d.name = :name AND d.version = (SELECT MAX(v.version) FROM dunning_configs v
                                                  WHERE v.config_id = d.config_id)
            ORDER BY d.config_id LIMIT 1"""), {"name": name}).first()
        if found is None:
            raise DunningConfigError(f"There is no dunning configuration named {name!r}.")
        config_id, version = int(found.config_id), int(found.version)
        if not conn.execute(sa.text("SELECT COUNT(*) FROM dunning_stages WHERE config_id = :c AND version = :v"),
                            {"c": config_id, "v": version}).scalar():
            raise DunningConfigError(f"Dunning configuration {name!r} has no stages; nothing to adopt.")
        now = datetime.now()
        params = {"c": config_id, "v": version, "now": now, "actor": actor.username}
        if not found.active:
            conn.execute(sa.text("UPDATE dunning_configs SET active = TRUE WHERE config_id = :c AND version = :v"),
                         params)
            audit.record(conn, actor, "dunning_config.adopt", "dunning_config", config_id,
                         old={"active": False}, new={"active": True, "name": name, "version": version})
        unassigned = """customer_id IN (SELECT DISTINCT r.customer_id FROM dunning_runs r WHERE r.config_id = :c)
                        AND dunning_config_id IS NULL"""
        conn.execute(sa.text(f"""INSERT INTO audit_log (logged_at, actor, action, entity, entity_id, old_values,
                                                        new_values, detail)
            SELECT :now, :actor, 'customer.dunning_config', 'customer', customer_id, '{{"dunning_config_id": null}}',
                   '{{"dunning_config_id": ' || CAST(:c AS VARCHAR) || '}}', 'adopted from the dunning history'
            FROM customers WHERE {unassigned}"""), params)  # noqa: S608 - constants only
        assigned = conn.execute(sa.text(f"UPDATE customers SET dunning_config_id = :c, updated_at = :now "  # noqa: S608
                                        f"WHERE {unassigned}"), params).rowcount
    return {"config_id": config_id, "activated": not found.active, "customers": int(assigned or 0)}
