"""The installments' merge: an invoice's payment schedule, keyed by the invoice.

The file's rows of one invoice are its whole schedule, numbered 1, 2, ... in due-date order
(`installment_no`). Per invoice, in the import's one transaction: a schedule the store does not have
is inserted; the same schedule (same installments, dates and amounts) is left alone, so a re-import
changes nothing; a different one replaces the invoice's schedule, with one audit line holding the old
and the new schedule ("2024-01-31 100.00; 2024-02-29 100.00; ..."). The validation
(`installment_rules`) has already rejected unknown invoices, installments due before their invoice and
schedules that do not sum to the invoice's amount. Counts are installments (rows).
"""

# ruff: noqa: S608 - SQL here is composed from our own field names; values bind as parameters.
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.merges.changes import Counts, audit_updates
from analytics.ingest.progress import Clock
from analytics.ingest.stages import stage
from analytics.ingest.staging import ROW, Staging
from analytics.ledger.monthly_summaries import refresh_monthly_summaries
from analytics.store.connection import read_df

_STAGE = """CREATE TEMPORARY TABLE _import_schedules (
    row_number BIGINT, document_number VARCHAR(64), due_date DATE, amount NUMERIC(18,2))"""


def merge_installments(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
                       clock: Clock, source_label: str) -> Counts:
    """The installments dataset: insert new schedules, replace changed ones (audited), keep the same."""
    rows = staging.accepted(f'SELECT "{ROW}" AS row_number, raw_document_number AS document_number, due_date, '
                            "amount FROM ok", errors)
    stage(conn, _STAGE, "_import_schedules", rows, clock, "staging rows")
    for name in ("_import_match", "_import_schedule_status"):
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    conn.execute(sa.text("""CREATE TEMPORARY TABLE _import_match AS
        SELECT i.entry_id, s.document_number, s.due_date, s.amount,
               ROW_NUMBER() OVER (PARTITION BY i.entry_id ORDER BY s.due_date, s.row_number) AS installment_no
        FROM _import_schedules s
        JOIN ledger_entries i ON i.entry_type = 'invoice' AND i.document_number = s.document_number"""))
    conn.execute(sa.text("""CREATE TEMPORARY TABLE _import_schedule_status AS
        WITH incoming AS (
            SELECT entry_id, document_number, COUNT(*) AS n_new FROM _import_match GROUP BY entry_id, document_number
        ), stored AS (
            SELECT x.entry_id, COUNT(*) AS n_old FROM invoice_installments x
            WHERE x.entry_id IN (SELECT entry_id FROM incoming) GROUP BY x.entry_id
        ), same AS (
            SELECT m.entry_id, COUNT(*) AS n_same FROM _import_match m
            JOIN invoice_installments x ON x.entry_id = m.entry_id AND x.installment_no = m.installment_no
                 AND x.due_date = m.due_date AND x.amount = m.amount
            GROUP BY m.entry_id
        )
        SELECT n.entry_id, n.document_number, n.n_new,
               CASE WHEN o.n_old IS NULL THEN 'new'
                    WHEN o.n_old = n.n_new AND COALESCE(s.n_same, 0) = n.n_new THEN 'same'
                    ELSE 'changed' END AS change
        FROM incoming n LEFT JOIN stored o ON o.entry_id = n.entry_id LEFT JOIN same s ON s.entry_id = n.entry_id"""))
    tally = read_df(conn, "SELECT change, SUM(n_new) AS n FROM _import_schedule_status GROUP BY change")
    tally = tally.set_index("change")["n"]
    counts = Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))
    if counts.updated:
        _audit_replaced(conn, actor, run_id)
        conn.execute(sa.text("""DELETE FROM invoice_installments WHERE entry_id IN
            (SELECT entry_id FROM _import_schedule_status WHERE change = 'changed')"""))
    conn.execute(sa.text("""
        INSERT INTO invoice_installments (entry_id, installment_no, due_date, amount)
        SELECT m.entry_id, m.installment_no, m.due_date, m.amount
        FROM _import_match m JOIN _import_schedule_status st ON st.entry_id = m.entry_id
        WHERE st.change IN ('new', 'changed')"""))
    touched = read_df(conn, "SELECT entry_id FROM _import_schedule_status WHERE change IN ('new', 'changed')")
    refresh_monthly_summaries(conn, entry_ids=touched["entry_id"].astype("int64").tolist())
    clock.tick("installments written", staging.rows)
    return counts


def _audit_replaced(conn: sa.Connection, actor: Actor, run_id: int) -> None:
    """One audit line per replaced schedule: the old and the new installments, in due-date order."""
    def schedules(table: str) -> pd.Series:
        frame = read_df(conn, f"""SELECT st.document_number, x.installment_no, x.due_date, x.amount
            FROM {table} x JOIN _import_schedule_status st ON st.entry_id = x.entry_id
            WHERE st.change = 'changed' ORDER BY st.document_number, x.installment_no""")
        text = (pd.to_datetime(frame.due_date).dt.strftime("%Y-%m-%d") + " "
                + frame.amount.astype(float).map("{:.2f}".format))
        return text.groupby(frame.document_number, sort=True).agg("; ".join)

    old, new = schedules("invoice_installments"), schedules("_import_match")
    changed = pd.DataFrame({"document_number": new.index, "old_schedule": old.reindex(new.index).to_numpy(),
                            "new_schedule": new.to_numpy()})
    audit_updates(conn, actor, "invoice_installments", run_id, changed, ["document_number"], ["schedule"])
