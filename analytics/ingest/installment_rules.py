"""The installments' rules that read the store: each row's invoice exists, no installment is due before
its invoice's posting date, and an invoice's installments sum to its amount. Returns rejected rows
(row_number, column_name, value, reason) for `validation.validate_table`; nothing is written but the
temporary table staged here (see `stages`).

A schedule is all or nothing: when any installment of an invoice is rejected (by the file's rules or
here), every other row of that invoice is rejected too ("schedule incomplete"), and when the
installments do not sum to the invoice's amount every row of the invoice is rejected with the sum,
the amount and the difference. So an invoice's schedule is imported whole or not at all.
"""

# ruff: noqa: S608 - SQL here is composed from our own field names; values from the store side bind as parameters.
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from analytics.ingest.stages import stage
from analytics.ingest.staging import ROW, Staging
from analytics.store.connection import read_df

INSTALLMENT_STAGE = """CREATE TEMPORARY TABLE _import_installments (
    row_number BIGINT, document_number VARCHAR(64), due_date DATE, amount NUMERIC(18,2), rejected INTEGER)"""


def installment_errors(conn: sa.Connection, staging: Staging, errors: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows: unknown invoice, due before the invoice's posting date, schedule incomplete,
    installments not summing to the invoice's amount (see the module docstring)."""
    staging.db.register("rejected_by_file", errors[["row_number"]].drop_duplicates())
    rows = staging.db.sql(f"""
        SELECT "{ROW}" AS row_number, raw_document_number AS document_number, due_date, amount,
               CASE WHEN "{ROW}" IN (SELECT row_number FROM rejected_by_file) THEN 1 ELSE 0 END AS rejected
        FROM typed WHERE raw_document_number IS NOT NULL""").to_arrow_table()
    stage(conn, INSTALLMENT_STAGE, "_import_installments", rows, writable=True)
    found = read_df(conn, """
        SELECT s.row_number, s.document_number, s.due_date, s.amount, s.rejected, i.entry_id,
               i.amount AS invoice_amount, i.posting_date AS invoice_posted
        FROM _import_installments s
        LEFT JOIN ledger_entries i ON i.entry_type = 'invoice' AND i.document_number = s.document_number
        ORDER BY s.row_number""")
    if found.empty:
        return pd.DataFrame(columns=errors.columns)
    src = staging.mapping.source
    unknown = found.entry_id.isna()
    due = pd.to_datetime(found.due_date)
    early = ~unknown & due.notna() & (due < pd.to_datetime(found.invoice_posted))
    # the invoice's other rows: any rejected (by the file or as early) makes its schedule incomplete
    bad = (found.rejected == 1) | early
    bad_rows = found.assign(bad=bad).groupby("document_number")["bad"].transform("sum")
    incomplete = ~unknown & ~bad & (bad_rows > 0)
    cents = (found.amount.astype(float) * 100).round()
    by_doc = found.assign(cents=cents).groupby("document_number")
    total = by_doc["cents"].transform("sum")
    parsed_all = by_doc["cents"].transform("count") == by_doc["cents"].transform("size")
    invoice = (found.invoice_amount.astype(float) * 100).round()
    off = ~unknown & parsed_all & (total != invoice)
    reason = ("installments sum to " + (total / 100).map("{:.2f}".format) + ", the invoice's amount is "
              + (invoice / 100).map("{:.2f}".format) + " (difference " + ((total - invoice) / 100).map("{:+.2f}".format)
              + ")")
    shown = found.amount.astype(float).map("{:.2f}".format)
    parts = [
        pd.DataFrame({"row_number": found.row_number[unknown], "column_name": src("document_number"),
                      "value": found.document_number[unknown], "reason": "unknown invoice"}),
        pd.DataFrame({"row_number": found.row_number[early], "column_name": src("due_date"),
                      "value": due[early].dt.strftime("%Y-%m-%d"),
                      "reason": "installment due before the invoice's posting date"}),
        pd.DataFrame({"row_number": found.row_number[incomplete], "column_name": src("document_number"),
                      "value": found.document_number[incomplete],
                      "reason": "schedule incomplete: another installment of this invoice was rejected"}),
        pd.DataFrame({"row_number": found.row_number[off], "column_name": src("amount"), "value": shown[off],
                      "reason": reason[off]}),
    ]
    parts = [p for p in parts if len(p)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=errors.columns)
    frame["row_number"] = frame["row_number"].astype("int64")
    frame["value"] = frame["value"].astype(str)
    return frame
