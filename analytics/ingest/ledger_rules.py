"""The rules of the ledger datasets that read the store: an allocation's two documents, an
adjustment's related invoice, a write-off's item and what is open on it. Each returns rejected rows
(row_number, column_name, value, reason) for `validation.validate_table`; nothing is written but
the temporary tables the rules stage (see `stages`).
"""

# ruff: noqa: S608 - SQL here is composed from our own field names and from source column names and
# mapping settings quoted by `quote` / `sql_str`; values from the store side bind as parameters.
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from analytics.ingest.stages import ALLOC_STAGE, stage
from analytics.ingest.staging import ROW, Staging, from_type_sql, sql_str
from analytics.store.connection import read_df

# What an allocation's from_type names, in words (for its rejection reasons).
_CREDIT_WORDS = {"payment": "payment", "credit_note": "credit note", "adjustment": "credit adjustment",
                 "write_off": "write-off"}


DEBIT_ITEM_JOIN = """
        LEFT JOIN ledger_entries ti ON ti.entry_type = 'invoice' AND ti.document_number = {doc}
        LEFT JOIN ledger_entries td ON td.entry_type = 'adjustment' AND td.amount > 0 AND td.document_number = {doc}
        LEFT JOIN ledger_entries t ON t.entry_id = COALESCE(ti.entry_id, td.entry_id)"""


def allocation_errors(conn: sa.Connection, staging: Staging, errors: pd.DataFrame) -> pd.DataFrame:
    """Allocation rules that need the store: both documents exist, same customer, never more than
    open, never dated before either document's posting date; a debit adjustment is never the credit.

    The target (`to_document`) is the invoice with that number, else the debit adjustment
    (`DEBIT_ITEM_JOIN`); the credit is the entry of `from_type` (payment by default; a credit
    adjustment for `adjustment`).

    Open on the invoice = its amount - allocations from other credits - earlier rows of this file;
    the same for what is unapplied on the credit. An allocation already in the store for a
    (credit, invoice) pair the file names is replaced by the file's row, so it counts once, as the
    file's row (re-importing a file that pays one invoice from two payments changes nothing).
    """
    from_type = staging.mapping.entry_type or "payment"
    rows = staging.accepted(
        f"SELECT \"{ROW}\" AS row_number, {from_type_sql(f'COALESCE(raw_from_type, {sql_str(from_type)})')} "
        "AS from_type, "
        "raw_from_document AS from_document, raw_to_document AS to_document, amount, allocation_date FROM ok",
        errors,
    )
    stage(conn, ALLOC_STAGE, "_import_allocations", rows, writable=True)
    found = read_df(conn, """
        SELECT a.row_number, a.from_type, a.from_document, a.to_document, a.amount, a.allocation_date,
               f.entry_id AS from_id, f.customer_id AS from_customer, -f.amount AS credit_amount,
               f.posting_date AS from_posted, t.entry_type AS to_type, t.posting_date AS to_posted,
               t.entry_id AS to_id, t.customer_id AS to_customer, t.amount AS invoice_amount,
               COALESCE((SELECT SUM(x.amount) FROM allocations x
                         WHERE x.to_entry_id = t.entry_id AND x.from_entry_id <> f.entry_id
                           AND NOT EXISTS (SELECT 1 FROM _import_allocations b  -- replaced by a file row
                                           JOIN ledger_entries bf ON bf.entry_type = b.from_type
                                                AND bf.document_number = b.from_document
                                           WHERE b.to_document = a.to_document AND bf.entry_id = x.from_entry_id)
                        ), 0) AS applied_to,
               COALESCE((SELECT SUM(x.amount) FROM allocations x
                         WHERE x.from_entry_id = f.entry_id AND x.to_entry_id <> t.entry_id
                           AND NOT EXISTS (SELECT 1 FROM _import_allocations b  -- replaced by a file row
                                           LEFT JOIN ledger_entries bi ON bi.entry_type = 'invoice'
                                                AND bi.document_number = b.to_document
                                           LEFT JOIN ledger_entries bd ON bd.entry_type = 'adjustment'
                                                AND bd.amount > 0 AND bd.document_number = b.to_document
                                           WHERE b.from_type = a.from_type AND b.from_document = a.from_document
                                             AND COALESCE(bi.entry_id, bd.entry_id) = x.to_entry_id)
                        ), 0) AS applied_from
        FROM _import_allocations a
        LEFT JOIN ledger_entries f ON f.entry_type = a.from_type AND f.document_number = a.from_document
""" + DEBIT_ITEM_JOIN.format(doc="a.to_document") + """
        ORDER BY a.row_number""")
    if found.empty:
        return pd.DataFrame(columns=errors.columns)
    src = staging.mapping.source
    for column in ("allocation_date", "from_posted", "to_posted"):
        found[column] = pd.to_datetime(found[column])
    out = []
    no_from = found["from_id"].isna()
    no_to = found["to_id"].isna()
    out.append(pd.DataFrame({"row_number": found.row_number[no_from], "column_name": src("from_document"),
                             "value": found.from_document[no_from],
                             "reason": "unknown " + found.from_type[no_from].map(_CREDIT_WORDS).fillna("credit")}))
    out.append(pd.DataFrame({"row_number": found.row_number[no_to], "column_name": src("to_document"),
                             "value": found.to_document[no_to], "reason": "unknown invoice or debit adjustment"}))
    debit = ~no_from & (found.credit_amount.astype(float) < 0)  # a debit adjustment owes, it pays nothing
    out.append(pd.DataFrame({"row_number": found.row_number[debit], "column_name": src("from_document"),
                             "value": found.from_document[debit],
                             "reason": "a debit adjustment cannot be applied as a credit"}))
    early_from = ~no_from & (found.allocation_date < found.from_posted)
    out.append(pd.DataFrame({
        "row_number": found.row_number[early_from], "column_name": src("allocation_date"),
        "value": found.allocation_date[early_from].dt.strftime("%Y-%m-%d"),
        "reason": "allocation dated before the posting date of its "
                  + found.from_type[early_from].map(_CREDIT_WORDS).fillna("credit")}))
    early_to = ~no_to & (found.allocation_date < found.to_posted)
    out.append(pd.DataFrame({
        "row_number": found.row_number[early_to], "column_name": src("allocation_date"),
        "value": found.allocation_date[early_to].dt.strftime("%Y-%m-%d"),
        "reason": "allocation dated before the posting date of its "
                  + found.to_type[early_to].map({"invoice": "invoice", "adjustment": "debit adjustment"})}))
    both = found[~no_from & ~no_to & ~debit].copy()
    other = both.from_customer != both.to_customer
    out.append(pd.DataFrame({"row_number": both.row_number[other], "column_name": src("to_document"),
                             "value": both.to_document[other],
                             "reason": "payment and invoice belong to different customers"}))
    # what is open: rows rejected above do not use any of it up
    both = both[~other & ~early_from[both.index] & ~early_to[both.index]]
    amount = both["amount"].astype(float)
    before_to = both.assign(a=amount).groupby("to_id")["a"].cumsum() - amount
    before_from = both.assign(a=amount).groupby("from_id")["a"].cumsum() - amount
    open_to = both.invoice_amount.astype(float) - both.applied_to.astype(float) - before_to
    open_from = both.credit_amount.astype(float) - both.applied_from.astype(float) - before_from
    too_big = (amount > open_to + 0.005) | (amount > open_from + 0.005)
    out.append(pd.DataFrame({
        "row_number": both.row_number[too_big], "column_name": src("amount"),
        "value": amount[too_big].map("{:.2f}".format),
        "reason": "allocation larger than what is open",
    }))
    frame = pd.concat([f for f in out if len(f)], ignore_index=True) if any(len(f) for f in out) else pd.DataFrame(
        columns=errors.columns)
    frame["row_number"] = frame["row_number"].astype("int64")
    frame["value"] = frame["value"].astype(str)
    return frame


def _rule_frame(found: pd.DataFrame, mask: pd.Series, column: str, value: str, reason: str) -> pd.DataFrame:
    return pd.DataFrame({"row_number": found.row_number[mask], "column_name": column,
                         "value": found[value][mask], "reason": reason})


def _errors_frame(parts: list[pd.DataFrame], columns: pd.Index) -> pd.DataFrame:
    parts = [f for f in parts if len(f)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    frame["row_number"] = frame["row_number"].astype("int64")
    frame["value"] = frame["value"].astype(str)
    return frame


def adjustment_errors(conn: sa.Connection, staging: Staging, errors: pd.DataFrame) -> pd.DataFrame:
    """An adjustment's related invoice must be an invoice in the store, of the same customer."""
    if "related_invoice" not in staging.present:
        return pd.DataFrame(columns=errors.columns)
    rows = staging.accepted(f"SELECT \"{ROW}\" AS row_number, customer_id, related_invoice FROM ok "
                            "WHERE related_invoice IS NOT NULL", errors)
    stage(conn, "CREATE TEMPORARY TABLE _import_related (row_number BIGINT, customer_id VARCHAR(64), "
          "related_invoice VARCHAR(64))", "_import_related", rows)
    found = read_df(conn, """
        SELECT r.row_number, r.customer_id, r.related_invoice, i.customer_id AS invoice_customer
        FROM _import_related r
        LEFT JOIN ledger_entries i ON i.entry_type = 'invoice' AND i.document_number = r.related_invoice
        ORDER BY r.row_number""")
    column = staging.mapping.source("related_invoice")
    unknown = found.invoice_customer.isna()
    other = ~unknown & (found.invoice_customer != found.customer_id)
    return _errors_frame([_rule_frame(found, unknown, column, "related_invoice", "unknown related invoice"),
                          _rule_frame(found, other, column, "related_invoice",
                                      "related invoice belongs to another customer")], errors.columns)


def write_off_errors(conn: sa.Connection, staging: Staging, errors: pd.DataFrame) -> pd.DataFrame:
    """Write-off rules that need the store: the item (invoice, else debit adjustment) exists, the
    write-off is not dated before it, and it is never larger than what is open on the item on the
    write-off's date, nor than what its later allocations leave open. The item's allocations from this
    write-off's own entry (a re-import) do not count against it."""
    rows = staging.accepted(f"SELECT \"{ROW}\" AS row_number, document_number, posting_date, ABS(amount) AS amount "
                            "FROM ok", errors)
    stage(conn, "CREATE TEMPORARY TABLE _import_write_offs (row_number BIGINT, document_number VARCHAR(64), "
          "posting_date DATE, amount NUMERIC(18,2))", "_import_write_offs", rows)
    found = read_df(conn, f"""
        SELECT w.row_number, w.document_number, w.posting_date, w.amount, t.entry_id AS item_id,
               t.posting_date AS item_posted, t.amount
                 - COALESCE((SELECT SUM(x.amount) FROM allocations x WHERE x.to_entry_id = t.entry_id
                             AND x.allocation_date <= w.posting_date AND x.from_entry_id <> COALESCE(o.entry_id, -1)), 0)
                 AS open_then,
               t.amount
                 - COALESCE((SELECT SUM(x.amount) FROM allocations x WHERE x.to_entry_id = t.entry_id
                             AND x.from_entry_id <> COALESCE(o.entry_id, -1)), 0) AS open_now
        FROM _import_write_offs w{DEBIT_ITEM_JOIN.format(doc="w.document_number")}
        LEFT JOIN ledger_entries o ON o.entry_type = 'write_off' AND o.document_number = :prefix || w.document_number
        ORDER BY w.row_number""", {"prefix": staging.mapping.write_off_prefix})
    src = staging.mapping.source
    found["shown"] = found["amount"].astype(float).map("{:.2f}".format)
    found["posted"] = pd.to_datetime(found["posting_date"]).dt.strftime("%Y-%m-%d")
    unknown = found.item_id.isna()
    early = ~unknown & (pd.to_datetime(found.posting_date) < pd.to_datetime(found.item_posted))
    amount = found.amount.astype(float)
    too_big = ~unknown & ~early & (amount > found.open_then.astype(float) + 0.005)
    later = ~unknown & ~early & ~too_big & (amount > found.open_now.astype(float) + 0.005)
    return _errors_frame([
        _rule_frame(found, unknown, src("document_number"), "document_number", "unknown invoice or debit adjustment"),
        _rule_frame(found, early, src("posting_date"), "posted", "write-off dated before the item's posting date"),
        _rule_frame(found, too_big, src("amount"), "shown", "write-off larger than what is open on the item that day"),
        _rule_frame(found, later, src("amount"), "shown",
                    "write-off larger than what the item's later payments leave open"),
    ], errors.columns)
