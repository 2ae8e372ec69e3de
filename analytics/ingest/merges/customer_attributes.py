"""The customer attributes' merge, on (customer_id, name), in the customers import's transaction.

Rule: each non-blank attribute cell of an accepted row (see `ingest.attributes`) is compared with
the store: a new (customer, name) is inserted, a different value replaces the stored one with an
audit line (old → new), an identical value is left alone, so re-importing a file changes nothing.
A blank cell sets nothing and clears nothing; attributes the file does not have are left as they
are. Set-based: the file's cells are staged once and met with the store in three statements.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.attributes import attribute_rows_sql
from analytics.ingest.merges.changes import audit_updates
from analytics.ingest.stages import stage
from analytics.ingest.staging import ROW, Staging
from analytics.store.connection import read_df


def merge_customer_attributes(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging,
                              errors: pd.DataFrame, source_label: str) -> tuple[int, int]:
    """Write the file's attribute values; returns (values inserted, values updated)."""
    if not staging.attributes:
        return 0, 0
    rows = staging.accepted(attribute_rows_sql(staging.attributes, ROW), errors)
    stage(conn, "CREATE TEMPORARY TABLE _import_attributes (customer_id VARCHAR(64), name VARCHAR(64), "
          "value VARCHAR(200))", "_import_attributes", rows)
    changed = read_df(conn, """SELECT s.customer_id, s.name, a.value AS old_value, s.value AS new_value
        FROM _import_attributes s JOIN customer_attributes a ON a.customer_id = s.customer_id AND a.name = s.name WHERE a.value <> s.value""")
    inserted = int(read_df(conn, """SELECT COUNT(*) AS n FROM _import_attributes s
        WHERE NOT EXISTS (SELECT 1 FROM customer_attributes a WHERE a.customer_id = s.customer_id AND a.name = s.name)""")
        ["n"].iloc[0])
    params = {"source": source_label[:100], "now": datetime.now()}
    if len(changed):
        audit_updates(conn, actor, "customer_attribute", run_id, changed, ["customer_id", "name"], ["value"])
        conn.execute(sa.text("""UPDATE customer_attributes SET value = s.value, source = :source, updated_at = :now
            FROM _import_attributes s WHERE customer_attributes.customer_id = s.customer_id
            AND customer_attributes.name = s.name AND customer_attributes.value <> s.value"""), params)
    if inserted:
        conn.execute(sa.text("""INSERT INTO customer_attributes (customer_id, name, value, source, updated_at)
            SELECT s.customer_id, s.name, s.value, :source, :now FROM _import_attributes s
            WHERE NOT EXISTS (SELECT 1 FROM customer_attributes a WHERE a.customer_id = s.customer_id AND a.name = s.name)"""), params)
    return inserted, len(changed)
