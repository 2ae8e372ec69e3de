"""The contacts' merge, on (customer_id, email) or (customer_id, name) for a contact without email.

Only the fields the file has are compared and updated (a contacts file without a phone column
leaves the phones alone); a new contact's absent fields take their defaults (role other, channel
email, not primary, active). A bounce recorded in the app is kept.
"""

# ruff: noqa: S608 - SQL here is composed from our own field names; values bind as parameters.
from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.merges.changes import Counts, audit_updates, null_safe_equal
from analytics.ingest.progress import Clock
from analytics.ingest.stages import stage
from analytics.ingest.staging import ROW, Staging
from analytics.store.connection import read_df

_STAGE = """CREATE TEMPORARY TABLE _import_contacts (
    row_number BIGINT, customer_id VARCHAR(64), name VARCHAR(200), email VARCHAR(200), phone VARCHAR(40),
    role VARCHAR(40), preferred_channel VARCHAR(10), is_primary BOOLEAN, active BOOLEAN)"""
_DEFAULTS = {"phone": "CAST(NULL AS VARCHAR)", "role": "'other'", "preferred_channel": "'email'",
             "is_primary": "FALSE", "active": "TRUE"}


def merge_contacts(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
                   clock: Clock, source_label: str) -> Counts:
    cols = staging.columns
    optional = [f for f in _DEFAULTS if f in cols]
    values = ", ".join(f"COALESCE({f}, {d}) AS {f}" if f in cols else f"{d} AS {f}" for f, d in _DEFAULTS.items())
    rows = staging.accepted(f"""SELECT "{ROW}" AS row_number, raw_customer_id AS customer_id,
        COALESCE(raw_name, raw_email) AS name, raw_email AS email, {values} FROM ok""", errors)
    stage(conn, _STAGE, "_import_contacts", rows, clock, "staging rows")
    compared = ["name", "email", *optional]
    same = " AND ".join(null_safe_equal(f"c.{f}", f"s.{f}") for f in compared)
    old = ", ".join(f"c.{f} AS old_{f}" for f in compared)
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text(f"""CREATE TEMPORARY TABLE _import_match AS
        SELECT s.*, c.contact_id AS existing_id, {old},
               CASE WHEN c.contact_id IS NULL THEN 'new' WHEN {same} THEN 'same' ELSE 'changed' END AS change
        FROM _import_contacts s
        LEFT JOIN (SELECT s2.row_number, MIN(k.contact_id) AS contact_id
                   FROM _import_contacts s2 JOIN contacts k
                     ON k.customer_id = s2.customer_id AND LOWER(k.email) = LOWER(s2.email)
                   GROUP BY s2.row_number
                   UNION ALL
                   SELECT s2.row_number, MIN(k.contact_id)
                   FROM _import_contacts s2 JOIN contacts k
                     ON k.customer_id = s2.customer_id AND k.name = s2.name AND k.email IS NULL
                   WHERE s2.email IS NULL
                   GROUP BY s2.row_number) found ON found.row_number = s.row_number
        LEFT JOIN contacts c ON c.contact_id = found.contact_id"""))
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    old_new = ", ".join(f"old_{f}, {f} AS new_{f}" for f in compared)
    changed = read_df(conn, f"SELECT existing_id AS contact_id, customer_id, {old_new} FROM _import_match "
                            "WHERE change = 'changed'")
    audit_updates(conn, actor, "contact", run_id, changed, ["contact_id", "customer_id"], compared)
    now = datetime.now()
    if not changed.empty:
        sets = ", ".join(f"{f} = m.{f}" for f in compared)
        conn.execute(sa.text(f"""UPDATE contacts SET {sets}, updated_at = :now FROM _import_match m
            WHERE contacts.contact_id = m.existing_id AND m.change = 'changed'"""), {"now": now})
    conn.execute(sa.text("""INSERT INTO contacts (customer_id, name, email, phone, role, preferred_channel,
                                                  is_primary, active, source, updated_at)
        SELECT customer_id, name, email, phone, role, preferred_channel, is_primary, active, :source, :now
        FROM _import_match WHERE change = 'new' ORDER BY row_number"""),
        {"source": source_label[:100], "now": now})
    clock.tick("contacts written", staging.rows)
    return Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))
