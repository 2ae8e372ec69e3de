"""The write-offs' merge: each row books a write-off entry and its allocation to the item written off.

A row names the item (the invoice with that document number, else the debit adjustment), the
amount, the date and a reason. It becomes, in the import's one transaction:
- a ledger entry of type `write_off`, document number `write_off_prefix` + the item's number
  (`WO-INV-1`), amount = -|amount| in the item's currency, customer = the item's, posted on the
  date, reference = the reason;
- its allocation to the item on the same date (through `merges.allocations`, which refreshes the
  item's settled-on date, open amount and dunning stage results).
So the open amount, bad debt (write-off entries posted in the month), roll rates and days to pay
(a written-off invoice is not "paid") follow. The natural key is the item: a re-import is a no-op,
a changed amount, date or reason updates the entry and its allocation in place with an audit line.
The validation (`ledger_rules.write_off_errors`) has already rejected unknown items, write-offs
dated before their item and amounts larger than what is open on the item.
"""

# ruff: noqa: S608 - SQL here is composed from our own field names and constants; values bind as parameters.
from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.ledger_rules import DEBIT_ITEM_JOIN
from analytics.ingest.merges.allocations import merge_allocations
from analytics.ingest.merges.changes import Counts, audit_updates, null_safe_equal
from analytics.ingest.progress import Clock
from analytics.ingest.stages import ALLOC_STAGE, forget, stage
from analytics.ingest.staging import ROW, Staging
from analytics.ledger.monthly_summaries import refresh_monthly_summaries
from analytics.ledger.settlement import refresh_settled_on
from analytics.store.connection import read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import ENTRY_IDS

_WRITE_OFF_STAGE = """CREATE TEMPORARY TABLE _import_write_offs (
    row_number BIGINT, item_document VARCHAR(64), posting_date DATE, amount NUMERIC(18,2), reason VARCHAR(200))"""


def merge_write_offs(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
                     clock: Clock, source_label: str) -> Counts:
    """The write-offs dataset: the write-off entries, then their allocations (see the module docstring)."""
    rows = staging.accepted(f"SELECT \"{ROW}\" AS row_number, document_number AS item_document, posting_date, "
                            "ABS(amount) AS amount, raw_reason AS reason FROM ok", errors)
    stage(conn, _WRITE_OFF_STAGE, "_import_write_offs", rows, clock, "staging rows")
    compared = ["customer_id", "posting_date", "amount", "currency"]
    if "reason" in staging.present:
        compared.append("reference")
    same = " AND ".join(null_safe_equal(f"e.{c}", f"s.{c}") for c in compared)
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text(f"""
        CREATE TEMPORARY TABLE _import_match AS
        SELECT s.*, e.entry_id AS existing_id, {', '.join(f'e.{c} AS old_{c}' for c in compared)},
               CASE WHEN e.entry_id IS NULL THEN 'new' WHEN {same} THEN 'same' ELSE 'changed' END AS change
        FROM (SELECT w.row_number, w.item_document, t.customer_id, t.currency, w.posting_date,
                     -w.amount AS amount, w.reason AS reference, 'write_off' AS entry_type,
                     :prefix || w.item_document AS document_number
              FROM _import_write_offs w{DEBIT_ITEM_JOIN.format(doc="w.item_document")}
              WHERE t.entry_id IS NOT NULL) s
        LEFT JOIN ledger_entries e ON e.entry_type = 'write_off' AND e.document_number = s.document_number"""),
        {"prefix": staging.mapping.write_off_prefix})
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    counts = Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))

    changed = read_df(conn, f"""SELECT entry_type, document_number, existing_id,
        {', '.join(f'old_{c}, {c} AS new_{c}' for c in compared)} FROM _import_match WHERE change = 'changed'""")
    audit_updates(conn, actor, "ledger_entry", run_id, changed, ["entry_type", "document_number"], compared)
    if not changed.empty:  # write-offs are few: an UPDATE in place keeps the entry id
        sets = ", ".join(f"{c} = m.{c}" for c in compared)
        conn.execute(sa.text(f"""UPDATE ledger_entries SET {sets}, updated_at = :now FROM _import_match m
            WHERE ledger_entries.entry_id = m.existing_id AND m.change = 'changed'"""), {"now": datetime.now()})
        refresh_settled_on(conn, entry_ids=changed["existing_id"].astype("int64").tolist())
    if counts.inserted:
        span = int(read_df(conn, "SELECT MAX(row_number) AS n FROM _import_match WHERE change = 'new'")["n"].iloc[0])
        base = reserve_ids(conn, ENTRY_IDS, span)
        conn.execute(sa.text("""
            INSERT INTO ledger_entries (entry_id, customer_id, entry_type, document_number, posting_date, due_date,
                                        amount, currency, reference, source, updated_at)
            SELECT :base + row_number - 1, customer_id, 'write_off', document_number, posting_date, NULL,
                   amount, currency, reference, :source, :now
            FROM _import_match WHERE change = 'new'"""),
            {"base": base, "source": source_label[:100], "now": datetime.now()})
    clock.tick("write-offs written", staging.rows)
    # a changed write-off may have moved month or customer even when its allocation stays the same
    moved = read_df(conn, """SELECT customer_id FROM _import_match WHERE change <> 'same'
        UNION SELECT old_customer_id FROM _import_match WHERE change = 'changed'""")
    refresh_monthly_summaries(conn, customer_ids=moved["customer_id"].astype(str).tolist())

    forget(conn, "_import_allocations")
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_allocations"))
    conn.execute(sa.text(ALLOC_STAGE))
    conn.execute(sa.text("""
        INSERT INTO _import_allocations (row_number, from_type, from_document, to_document, amount, allocation_date)
        SELECT row_number, 'write_off', document_number, item_document, -amount, posting_date FROM _import_match"""))
    merge_allocations(conn, actor, run_id)
    return counts
