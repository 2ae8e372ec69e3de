"""The disputes' merge, on (customer_id, document_number, opened_on): dispute activities.

Each row is a dispute on the customer's timeline (kind 'dispute'), keyed by `idempotency_key` =
'dispute:' + md5 of the natural key, so a re-import finds it again: occurred_at = opened_on,
resolved_at = resolved_on, status open / resolved / rejected (`team_datasets`), the resolution in
the body. The fields the file has are compared; a changed dispute is updated in place and audited.
"""

# ruff: noqa: S608 - SQL here is composed from our own field names; values bind as parameters.
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.merges.changes import Counts, audit_updates, null_safe_equal
from analytics.ingest.progress import Clock
from analytics.ingest.stages import stage
from analytics.ingest.staging import ROW, Staging
from analytics.ingest.team_datasets import DEBITS_SQL
from analytics.store.connection import read_df

_STAGE = """CREATE TEMPORARY TABLE _import_disputes (
    row_number BIGINT, dispute_key VARCHAR(64), customer_id VARCHAR(64), document_number VARCHAR(64),
    occurred_at TIMESTAMP, amount NUMERIC(18,2), reason VARCHAR(200), department VARCHAR(40),
    resolved_at TIMESTAMP, body TEXT, status VARCHAR(20), subject VARCHAR(200))"""
# file field -> the activity columns it sets
_COMPARED = {"amount": ["amount"], "reason": ["reason", "subject"], "department": ["department"],
             "resolved_on": ["resolved_at", "status"], "resolution": ["body", "status"]}


def merge_disputes(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
                   clock: Clock, source_label: str) -> Counts:
    cols = staging.columns
    resolved = "resolved_on" if "resolved_on" in cols else "CAST(NULL AS DATE)"
    amount = "amount" if "amount" in cols else "CAST(NULL AS DECIMAL(18,2))"
    rows = staging.accepted(f"""SELECT "{ROW}" AS row_number,
        'dispute:' || md5(raw_customer_id || '|' || COALESCE(raw_document_number, '') || '|'
                          || CAST(opened_on AS VARCHAR)) AS dispute_key,
        raw_customer_id AS customer_id, raw_document_number AS document_number,
        CAST(opened_on AS TIMESTAMP) AS occurred_at, {amount} AS amount, raw_reason AS reason,
        raw_department AS department, CAST({resolved} AS TIMESTAMP) AS resolved_at,
        CASE WHEN raw_resolution IS NOT NULL THEN 'Resolution: ' || raw_resolution END AS body,
        CASE WHEN {resolved} IS NULL THEN 'open' WHEN LOWER(raw_resolution) = 'rejected' THEN 'rejected'
             ELSE 'resolved' END AS status,
        SUBSTR('Dispute' || COALESCE(' (' || raw_department || ')', '') || ': '
               || COALESCE(raw_reason, 'imported'), 1, 200) AS subject
        FROM ok""", errors)
    stage(conn, _STAGE, "_import_disputes", rows, clock, "staging rows")
    compared = sorted({c for f, targets in _COMPARED.items() if f in cols for c in targets})
    same = " AND ".join(null_safe_equal(f"a.{c}", f"s.{c}") for c in compared) or "TRUE"
    old = "".join(f", a.{c} AS old_{c}" for c in compared)
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text(f"""CREATE TEMPORARY TABLE _import_match AS
        SELECT s.*, d.entry_id, a.activity_id AS existing_id{old},
               CASE WHEN a.activity_id IS NULL THEN 'new' WHEN {same} THEN 'same' ELSE 'changed' END AS change
        FROM _import_disputes s
        LEFT JOIN ({DEBITS_SQL.format(stage="_import_disputes")}) d ON d.document_number = s.document_number
        LEFT JOIN activities a ON a.idempotency_key = s.dispute_key"""))
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    if compared:
        old_new = ", ".join(f"old_{c}, {c} AS new_{c}" for c in compared)
        changed = read_df(conn, f"SELECT existing_id AS activity_id, customer_id, {old_new} FROM _import_match "
                                "WHERE change = 'changed'")
        audit_updates(conn, actor, "dispute", run_id, changed, ["activity_id", "customer_id"], compared)
        if not changed.empty:
            sets = ", ".join(f"{c} = m.{c}" for c in compared)
            conn.execute(sa.text(f"""UPDATE activities SET {sets} FROM _import_match m
                WHERE activities.activity_id = m.existing_id AND m.change = 'changed'"""))
    conn.execute(sa.text("""INSERT INTO activities (customer_id, entry_id, kind, occurred_at, author, department,
                                                    subject, body, amount, status, reason, resolved_at, idempotency_key)
        SELECT customer_id, entry_id, 'dispute', occurred_at, :author, department, subject, body, amount, status,
               reason, resolved_at, dispute_key
        FROM _import_match WHERE change = 'new' ORDER BY row_number"""), {"author": actor.username})
    clock.tick("disputes written", staging.rows)
    return Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))
