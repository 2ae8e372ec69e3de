"""Validation of a file before anything is written: read it, stage it, run every rule, report.

`validate` (the page's and `ardesk import --check`'s) and `validate_table` (the import run's) give
the same report: the per-row rules of `staging`, then the rules that read the store
(`ledger_rules`, `team_datasets`, the attribute lengths). Nothing here changes the store's tables.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from analytics.ingest.attributes import VALUE_LENGTH, attribute_errors
from analytics.ingest.installment_rules import installment_errors
from analytics.ingest.ledger_rules import adjustment_errors, allocation_errors, write_off_errors
from analytics.ingest.mapping import (
    LEDGER_DATASETS,
    Mapping,
)
from analytics.ingest.reading import ImportLimits, read_source
from analytics.ingest.staging import ROW, Staging, ValidationReport, known_currencies
from analytics.ingest.team_datasets import TEAM_DATASETS, store_errors
from analytics.store.connection import Store, read_df


def validate_table(conn: sa.Connection, table: pa.Table, mapping: Mapping, strict: bool,
                   list_new_customers: bool = True, limits: ImportLimits | None = None,
                   ) -> tuple[ValidationReport, Staging]:
    """Check a table already read, on the store connection `conn`: the report, and the staging that
    the merge takes the accepted rows from."""
    staging = Staging(table, mapping)
    if staging.missing:
        empty = pd.DataFrame(columns=["row_number", "column_name", "value", "reason"])
        return ValidationReport(mapping.dataset, staging.rows, staging.missing, empty, _db=staging.db,
                                fields=staging.fields, file_columns=list(table.column_names)), staging
    staging.build_typed()
    wants_known = mapping.dataset in LEDGER_DATASETS and (strict or list_new_customers)
    known = read_df(conn, "SELECT customer_id FROM customers") if wants_known else None
    errors = staging.errors(known_currencies(conn), known if known is not None else pd.DataFrame(), strict,
                            limits or ImportLimits.from_settings())
    if mapping.dataset == "allocations":
        errors = pd.concat([errors, allocation_errors(conn, staging, errors)], ignore_index=True)
        errors = errors.sort_values(["row_number", "column_name"], ignore_index=True)
    elif mapping.dataset in ("adjustments", "write-offs"):
        store_rules = adjustment_errors if mapping.dataset == "adjustments" else write_off_errors
        errors = pd.concat([errors, store_rules(conn, staging, errors)], ignore_index=True)
        errors = errors.sort_values(["row_number", "column_name"], ignore_index=True)
    elif mapping.dataset == "installments":
        errors = pd.concat([errors, installment_errors(conn, staging, errors)], ignore_index=True)
        errors = errors.sort_values(["row_number", "column_name"], ignore_index=True)
    elif staging.attributes:  # customers: an attribute value longer than the store keeps rejects its row
        long_values = attribute_errors(staging.db, staging.attributes, ROW, VALUE_LENGTH)
        if len(long_values):
            errors = pd.concat([errors, long_values], ignore_index=True)
            errors = errors.sort_values(["row_number", "column_name"], ignore_index=True)
    if mapping.dataset in TEAM_DATASETS:
        found = store_errors(conn, staging, errors, ROW)
        if len(found):
            errors = pd.concat([errors, found], ignore_index=True)
            errors = errors.sort_values(["row_number", "column_name"], ignore_index=True)
    report = ValidationReport(mapping.dataset, staging.rows, [], errors, _db=staging.db, fields=staging.fields,
                              file_columns=list(table.column_names), attributes=staging.attributes,
                              attributes_not_kept=staging.attributes_not_kept)
    if known is not None and not strict:
        staging.db.register("known_customer", known)
        fresh = staging.accepted("SELECT DISTINCT customer_id FROM ok WHERE customer_id NOT IN "
                                 "(SELECT customer_id FROM known_customer) ORDER BY customer_id", errors)
        report.new_customers = fresh.column("customer_id").to_pylist()
    return report, staging


def validate(store: Store, source: Any, mapping: Mapping, *, strict: bool = False,
             filename: str | None = None, limits: ImportLimits | None = None) -> ValidationReport:
    """Check a file against the mapping and the store without writing anything."""
    table = read_source(source, mapping, filename, limits)
    with store.engine.connect() as conn:
        try:
            return validate_table(conn, table, mapping, strict, limits=limits)[0]
        finally:
            conn.rollback()  # drops the temporary tables the allocation check may have made
