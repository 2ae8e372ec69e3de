"""The ledger entries' merge (invoices, payments, credit notes, adjustments), on (entry_type, document_number).

Signs: invoices as written (> 0), payments and credit notes negative whatever their sign in the
file; adjustments debit (+) or credit (-) by their `direction`, else by the amount's sign as
written. A debit adjustment is due on its due date, else its posting date; its reason is stored as
the entry's reference and its related invoice in `related_document`.

Customers named by the file but unknown are created with the mapping's defaults; a changed entry
keeps its entry_id; an invoice register's settlement dates become a payment and an allocation, and
its dispute flags become dispute activities on the customers' timelines.
"""

# ruff: noqa: S608 - SQL here is composed from our own field names and from source column names and
# mapping settings quoted by `quote` / `sql_str`; values from the store side bind as parameters.
from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor
from analytics.ingest.merges.allocations import merge_allocations
from analytics.ingest.merges.changes import Counts, audit_updates, null_safe_equal
from analytics.ingest.progress import Clock
from analytics.ingest.stages import ALLOC_STAGE, forget, stage
from analytics.ingest.staging import ROW, Staging, sql_str
from analytics.ledger.monthly_summaries import refresh_monthly_summaries
from analytics.ledger.settlement import refresh_settled_on
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import ENTRY_IDS

_ENTRY_STAGE = """CREATE TEMPORARY TABLE _import_entries (
    row_number BIGINT, customer_id VARCHAR(64), customer_name VARCHAR(200), entry_type VARCHAR(16),
    document_number VARCHAR(64), posting_date DATE, due_date DATE, amount NUMERIC(18,2),
    currency VARCHAR(3), reference VARCHAR(200), settled_date DATE, disputed BOOLEAN, related_document VARCHAR(64),
    slot BIGINT)"""


def merge_entries(conn: sa.Connection, actor: Actor, run_id: int, staging: Staging, errors: pd.DataFrame,
                  clock: Clock, source_label: str) -> Counts:
    m = staging.mapping
    etype = m.ledger_entry_type or "invoice"
    sign = "amount" if etype == "invoice" else "-ABS(amount)"
    cols = staging.columns
    if etype == "adjustment":  # debit (+) or credit (-): the direction, else the amount's sign as written
        sign = ("CASE WHEN LOWER(direction) = 'credit' THEN -ABS(amount) ELSE ABS(amount) END"
                if "direction" in cols else "amount")
    terms = f"CAST(posting_date + INTERVAL {int(m.default_terms_days)} DAY AS DATE)"
    if etype == "adjustment":  # a debit is due on its due date, else on its posting date; a credit never
        due = (f"CASE WHEN {sign} > 0 THEN {'COALESCE(due_date, posting_date)' if 'due_date' in cols else 'posting_date'}"
               " END")
    elif etype != "invoice":
        due = "CAST(NULL AS DATE)"
    else:  # an invoice without a due date is due after the mapping's default terms
        due = f"COALESCE(due_date, {terms})" if "due_date" in cols else terms
    name, ref = "raw_customer_name", "raw_reference"  # NULL text when the file has no such column
    related = "CAST(NULL AS VARCHAR)"
    if m.dataset == "adjustments":  # an adjustment's reason is its reference
        ref, related = "raw_reason", "raw_related_invoice"
    settled = "settled_date" if "settled_date" in cols else "CAST(NULL AS DATE)"
    disputed = "disputed" if "disputed" in cols else "FALSE"
    # `slot` numbers new entries without a sort: entry_id = next free id + slot (gaps are harmless)
    per_row = 2 if "settled_date" in cols else 1
    select = (f"SELECT \"{ROW}\" AS row_number, raw_customer_id AS customer_id, {name} AS customer_name, "
              f"{sql_str(etype)} AS entry_type, raw_document_number AS document_number, posting_date, "
              f"{due} AS due_date, {sign} AS amount, currency, {ref} AS reference, "
              f"{settled} AS settled_date, {disputed} AS disputed, {related} AS related_document, "
              f"({ROW} - 1) * {per_row} AS slot FROM ok")
    if "settled_date" in cols:  # an invoice register: each settled invoice also yields its payment
        select += (f" UNION ALL SELECT \"{ROW}\", raw_customer_id, {name}, 'payment', "
                   f"{sql_str(m.settlement_prefix)} || raw_document_number, settled_date, CAST(NULL AS DATE), "
                   f"-amount, currency, 'settles ' || raw_document_number, CAST(NULL AS DATE), FALSE, NULL, "
                   f"({ROW} - 1) * 2 + 1 FROM ok WHERE settled_date IS NOT NULL")
    rows = staging.accepted(select, errors)
    stage(conn, _ENTRY_STAGE, "_import_entries", rows, clock, "staging rows")
    counts = Counts()

    # customers named by the file but unknown: created with the mapping's defaults
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_new_customers"))
    conn.execute(sa.text("""
        CREATE TEMPORARY TABLE _import_new_customers AS
        SELECT customer_id, MIN(COALESCE(customer_name, customer_id)) AS name, MIN(currency) AS currency
        FROM _import_entries s
        WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = s.customer_id)
        GROUP BY customer_id"""))
    created = read_df(conn, "SELECT customer_id FROM _import_new_customers ORDER BY customer_id")
    counts.customers_created = created["customer_id"].astype(str).tolist()
    conn.execute(sa.text("""
        INSERT INTO customers (customer_id, name, segment, currency, payment_terms_days, status, created_at)
        SELECT customer_id, name, :segment, currency, :terms, 'active', :now FROM _import_new_customers"""),
        {"segment": m.default_segment, "terms": m.default_terms_days, "now": datetime.now()})
    conn.execute(sa.text("DROP TABLE _import_new_customers"))

    compared = ["customer_id", "posting_date", "amount", "currency"]
    if "due_date" in cols or etype != "invoice":
        compared.append("due_date")
    if "reference" in cols or "settled_date" in cols or "reason" in cols:
        compared.append("reference")
    if "related_invoice" in cols:
        compared.append("related_document")
    same = " AND ".join(null_safe_equal(f"e.{c}", f"s.{c}") for c in compared)
    kept = ["customer_id", "posting_date", "due_date", "amount", "currency", "reference", "source", "related_document"]
    old = ", ".join(f"e.{c} AS old_{c}" for c in kept)
    # only the rows whose key is already in the ledger: small for a sync, empty for a first import
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text(f"""
        CREATE TEMPORARY TABLE _import_match AS
        SELECT s.*, e.entry_id AS existing_id, CASE WHEN {same} THEN 'same' ELSE 'changed' END AS change, {old}
        FROM _import_entries s
        JOIN ledger_entries e ON e.entry_type = s.entry_type AND e.document_number = s.document_number"""))
    clock.tick("comparing with the ledger", staging.rows)
    staged = read_df(conn, "SELECT entry_type, COUNT(*) AS n FROM _import_entries GROUP BY entry_type")
    matched = read_df(conn, "SELECT change, entry_type, COUNT(*) AS n FROM _import_match GROUP BY change, entry_type")
    main = matched[matched.entry_type == etype].set_index("change")["n"]
    counts.updated, counts.unchanged = int(main.get("changed", 0)), int(main.get("same", 0))
    counts.inserted = int(staged[staged.entry_type == etype]["n"].sum()) - counts.updated - counts.unchanged

    old_new = ", ".join(f"old_{c}, {c} AS new_{c}" for c in compared)
    changed = read_df(conn, f"""SELECT entry_type, document_number, existing_id, {old_new}
        FROM _import_match WHERE change = 'changed'""")
    audit_updates(conn, actor, "ledger_entry", run_id, changed, ["entry_type", "document_number"], compared)
    # A changed entry is deleted and re-inserted under the same entry_id rather than UPDATEd:
    # DuckDB logs an UPDATE per 2,048-row vector, so 10k scattered updates in a 10M-row ledger
    # write a WAL big enough to force a checkpoint at commit (about 15 s, it rewrites the key index).
    values = ", ".join(f"{'' if c in compared else 'old_'}{c}" for c in kept)
    if not changed.empty:  # (an empty INSERT before the big one triggered duckdb 2.0.0's data loss)
        conn.execute(sa.text("""DELETE FROM ledger_entries
            WHERE entry_id IN (SELECT existing_id FROM _import_match WHERE change = 'changed')"""))
        conn.execute(sa.text(f"""
            INSERT INTO ledger_entries (entry_id, entry_type, document_number, {', '.join(kept)}, updated_at)
            SELECT existing_id, entry_type, document_number, {values}, :now
            FROM _import_match WHERE change = 'changed'"""), {"now": datetime.now()})
    changed_ids = changed["existing_id"].astype("int64").tolist()  # amounts or types may differ
    refresh_settled_on(conn, entry_ids=changed_ids)
    refresh_stage_results(conn, entry_ids=changed_ids)
    new_rows = int(read_df(conn, "SELECT COALESCE(MAX(slot), -1) + 1 AS n FROM _import_entries")["n"].iloc[0])
    base = reserve_ids(conn, ENTRY_IDS, new_rows) if new_rows else 0
    conn.execute(sa.text("""
        INSERT INTO ledger_entries (entry_id, customer_id, entry_type, document_number, posting_date, due_date,
                                    amount, currency, reference, source, updated_at, related_document)
        SELECT :base + slot, customer_id, entry_type,
               document_number, posting_date, due_date, amount, currency, reference, :source, :now, related_document
        FROM _import_entries s""" + ("" if matched.empty else """
        WHERE NOT EXISTS (SELECT 1 FROM _import_match m
                          WHERE m.row_number = s.row_number AND m.entry_type = s.entry_type)""")),
        {"base": base, "source": source_label[:100], "now": datetime.now()})
    clock.tick("entries written", staging.rows)
    # the customers of every staged row, and the old customer of a changed entry that moved
    moved = read_df(conn, """SELECT DISTINCT customer_id FROM _import_entries
        UNION SELECT old_customer_id FROM _import_match WHERE change = 'changed'""")
    refresh_monthly_summaries(conn, customer_ids=moved["customer_id"].astype(str).tolist())

    if "settled_date" in cols:
        forget(conn, "_import_allocations")
        conn.execute(sa.text("DROP TABLE IF EXISTS _import_allocations"))
        conn.execute(sa.text(ALLOC_STAGE))
        conn.execute(sa.text("""
            INSERT INTO _import_allocations (row_number, from_type, from_document, to_document, amount, allocation_date)
            SELECT row_number, 'payment', :prefix || document_number, document_number, amount, settled_date
            FROM _import_entries WHERE entry_type = 'invoice' AND settled_date IS NOT NULL"""),
            {"prefix": m.settlement_prefix})
        counts.allocations = merge_allocations(conn, actor, run_id)[0]
    if "disputed" in cols:
        counts.disputes = int(conn.execute(sa.text("""
            INSERT INTO activities (customer_id, entry_id, kind, occurred_at, author, subject, status, resolved_at,
                                    idempotency_key)
            SELECT e.customer_id, e.entry_id, 'dispute', CAST(s.posting_date AS TIMESTAMP), :author,
                   'Disputed (from the ERP export)', CASE WHEN s.settled_date IS NULL THEN 'open' ELSE 'resolved' END,
                   CAST(s.settled_date AS TIMESTAMP), 'import-dispute:' || CAST(e.entry_id AS VARCHAR)
            FROM _import_entries s
            JOIN ledger_entries e ON e.entry_type = s.entry_type AND e.document_number = s.document_number
            WHERE s.disputed AND NOT EXISTS (
                SELECT 1 FROM activities a WHERE a.idempotency_key = 'import-dispute:' || CAST(e.entry_id AS VARCHAR))
            """), {"author": actor.username}).rowcount or 0)
    return counts

