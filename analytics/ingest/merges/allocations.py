"""The allocations' merge, on (credit entry, invoice or debit adjustment): an allocation file, the
settlements of an invoice register (see merges.entries) or the write-offs (merges.write_offs). All
merge the rows staged in `_import_allocations`; the target is the invoice with the document number,
else the debit adjustment (`ledger_rules.DEBIT_ITEM_JOIN`).

Rule: a changed allocation is updated in place and audited; the invoices and credits it touches get
their settled-on dates and stage results refreshed.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.ledger_rules import DEBIT_ITEM_JOIN
from analytics.ingest.merges.changes import Counts, audit_updates
from analytics.ingest.progress import Clock
from analytics.ingest.staging import Staging
from analytics.ledger.monthly_summaries import refresh_monthly_summaries
from analytics.ledger.settlement import refresh_settled_on
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import bulk_insert, read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import ALLOCATION_IDS


def merge_allocations(conn: sa.Connection, actor: Actor, run_id: int) -> tuple[int, int, int]:
    """Merge `_import_allocations` on (credit entry, invoice): (inserted, updated, unchanged)."""
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text(f"""
        CREATE TEMPORARY TABLE _import_match AS
        SELECT a.row_number, f.customer_id, f.entry_id AS from_id, t.entry_id AS to_id, a.amount, a.allocation_date,
               x.allocation_id AS existing_id, x.amount AS old_amount, x.allocation_date AS old_allocation_date,
               CASE WHEN x.allocation_id IS NULL THEN 'new'
                    WHEN x.amount = a.amount AND x.allocation_date = a.allocation_date THEN 'same'
                    ELSE 'changed' END AS change
        FROM _import_allocations a
        JOIN ledger_entries f ON f.entry_type = a.from_type AND f.document_number = a.from_document{
            DEBIT_ITEM_JOIN.format(doc="a.to_document")}
        LEFT JOIN allocations x ON x.from_entry_id = f.entry_id AND x.to_entry_id = t.entry_id
        WHERE t.entry_id IS NOT NULL"""))  # noqa: S608 - composed from constants
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    changed = read_df(conn, """SELECT existing_id, old_amount, amount AS new_amount,
        old_allocation_date, allocation_date AS new_allocation_date FROM _import_match WHERE change = 'changed'""")
    audit_updates(conn, actor, "allocation", run_id, changed, ["existing_id"], ["amount", "allocation_date"])
    conn.execute(sa.text("""UPDATE allocations SET amount = m.amount, allocation_date = m.allocation_date
        FROM _import_match m WHERE allocations.allocation_id = m.existing_id AND m.change = 'changed'"""))
    new_rows = int(read_df(conn, "SELECT COALESCE(MAX(row_number), 0) AS n FROM _import_match WHERE change = 'new'")["n"].iloc[0])
    base = reserve_ids(conn, ALLOCATION_IDS, new_rows) if new_rows else 0
    conn.execute(sa.text("""
        INSERT INTO allocations (allocation_id, customer_id, from_entry_id, to_entry_id, amount, allocation_date)
        SELECT :base + row_number - 1, customer_id, from_id, to_id, amount,
               allocation_date
        FROM _import_match WHERE change = 'new'"""), {"base": base})
    touched = read_df(conn, """SELECT from_id AS entry_id FROM _import_match WHERE change <> 'same'
        UNION SELECT to_id AS entry_id FROM _import_match WHERE change <> 'same'""")
    touched_ids = touched["entry_id"].astype("int64").tolist()
    refresh_settled_on(conn, entry_ids=touched_ids)
    refresh_stage_results(conn, entry_ids=touched_ids)
    refresh_monthly_summaries(conn, entry_ids=touched_ids)
    return tuple(int(tally.get(k, 0)) for k in ("new", "changed", "same"))  # type: ignore[return-value]


def merge_allocation_file(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging,
                          errors: pd.DataFrame, clock: Clock, source_label: str) -> Counts:
    """The allocations dataset: merge the staged rows that every rule accepted."""
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_rejected"))
    conn.execute(sa.text("CREATE TEMPORARY TABLE _import_rejected (row_number BIGINT)"))
    bulk_insert(conn, "_import_rejected", errors[["row_number"]].drop_duplicates())
    try:
        # `_import_allocations` was staged by the validation (rows that passed the file checks); keep
        # only the rows the store checks accepted too.
        conn.execute(sa.text("DELETE FROM _import_allocations WHERE row_number IN (SELECT row_number FROM _import_rejected)"))
        inserted, updated, unchanged = merge_allocations(conn, actor, run_id)
        clock.tick("allocations written", staging.rows)
        return Counts(inserted, updated, unchanged)
    finally:
        conn.execute(sa.text("DROP TABLE IF EXISTS _import_rejected"))
