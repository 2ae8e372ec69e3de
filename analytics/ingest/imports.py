"""Imports of ERP exports: read, map, validate, quarantine, and merge into the store idempotently.

The pipeline, for every dataset (customers, invoices, payments, credit-notes, allocations, fx-rates,
adjustments, write-offs):

1. **Read** a CSV, Excel or Parquet file (or a DataFrame) into an Arrow table, every row numbered
   from 1 (the first data row; the header is not counted). Files past the `[imports]` caps (rows,
   uploaded size, unpacked size of an .xlsx) and files that are not what their name says are
   refused with `ImportFailed` and a plain reason, before their rows are parsed (`ImportLimits`).
2. **Validate before anything is written.** Parsing and every rule run as set-based SQL in a
   private in-memory DuckDB (the staging engine, whatever the store is), never a Python loop per
   row. Rules: required columns present and non-blank; dates and amounts parse (with the mapping's
   date format and separators; ISO dates always parse); invoice amounts > 0 and payment/credit
   note amounts non-zero; due date not before the invoice date; a document number only once in the
   file; currency known (see `known_currencies`); with `strict`, customers must already exist;
   an allocation never larger than what is open on the invoice or unapplied on the credit; no text
   longer than the store's column for it (`FIELD_LENGTHS`); no posting, settlement or allocation
   date more than `[imports] max_future_days` after today.
3. **Write in one transaction** (`store.write()`): the `import_runs` row, the quarantine rows, and
   the merge. The merge compares on the natural key, (entry_type, document_number) for ledger
   entries, customer_id for customers, (rate_date, currency) for FX rates, (from entry, to entry)
   for allocations: a new key is inserted, a changed row is updated and audited with its old and
   new values, an identical row is left alone. So re-importing a file changes nothing.

Audit: one line per run with the counts, plus one line per updated row (old and new values of the
compared fields), built in bulk. Inserted rows are not audited one by one; each carries
`source = "import #<run>"` so it traces back to its run.

Where each step lives in `analytics.ingest`: `reading` (1), `validation` (2), `merges` (3, one
module per dataset family), `stages` (the store-side temporary tables the merges compare),
`quarantine` (the rejected rows) and `progress`. This module runs the whole import in its one
transaction, records the run, and reads the runs back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.ingest.mapping import Mapping
from analytics.ingest.merges import merge
from analytics.ingest.progress import Clock, ProgressFn
from analytics.ingest.quarantine import record_rejected
from analytics.ingest.reading import ImportLimits, read_source
from analytics.ingest.stages import drop_stages
from analytics.ingest.staging import ValidationReport
from analytics.ingest.validation import validate_table
from analytics.settings import DATA_DIR
from analytics.store.connection import Store
from analytics.store.locks import IMPORTS, take_turn
from analytics.store.schema import import_runs


@dataclass
class ImportResult:
    """What an import did. `status`: ok, rejected (nothing importable) or failed."""

    run_id: int
    dataset: str
    status: str
    rows_read: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    customers_created: list[str] = field(default_factory=list)
    allocations: int = 0
    disputes: int = 0
    attributes_inserted: int = 0
    attributes_updated: int = 0
    report: ValidationReport | None = None

    def summary_lines(self) -> list[str]:
        lines = [f"Run #{self.run_id} ({self.dataset}): {self.status}. {self.rows_read:,} rows read; "
                 f"{self.inserted:,} inserted, {self.updated:,} updated, {self.unchanged:,} unchanged, "
                 f"{self.rejected:,} rejected."]
        if self.allocations:
            lines.append(f"{self.allocations:,} settlement(s) turned into a payment and an allocation.")
        if self.disputes:
            lines.append(f"{self.disputes:,} dispute(s) recorded on the customers' timelines.")
        if self.customers_created:
            shown = ", ".join(self.customers_created[:10]) + (" ..." if len(self.customers_created) > 10 else "")
            lines.append(f"{len(self.customers_created):,} customer(s) created: {shown}")
        if self.report is not None and self.report.attributes:
            lines += self.report.attribute_lines()
            lines.append(f"Customer attributes: {self.attributes_inserted:,} value(s) set, "
                         f"{self.attributes_updated:,} changed (each audited).")
        if self.report is not None and self.report.missing_columns:  # the whole file: say why
            lines += self.report.summary_lines()
        elif self.report is not None and len(self.report.errors):
            lines += [line for line in self.report.summary_lines()[1:] if line.startswith("  ")]
        return lines


def _set_watermark(conn: sa.Connection, source: str, dataset: str, value: str) -> None:
    params = {"source": source[:300], "dataset": dataset, "wm": value, "now": datetime.now()}
    hit = conn.execute(sa.text("UPDATE sync_watermarks SET watermark = :wm, updated_at = :now "
                               "WHERE source = :source AND dataset = :dataset"), params).rowcount
    if not hit:
        conn.execute(sa.text("INSERT INTO sync_watermarks (source, dataset, watermark, updated_at) "
                             "VALUES (:source, :dataset, :wm, :now)"), params)


def run_import(
    store: Store,
    source: Any,
    mapping: Mapping,
    actor: Actor,
    *,
    strict: bool = False,
    filename: str | None = None,
    source_label: str | None = None,
    kind: str = "import",
    progress: ProgressFn | None = None,
    watermark: tuple[str, str] | None = None,
    limits: ImportLimits | None = None,
) -> ImportResult:
    """Validate `source` and merge its accepted rows into the store in ONE transaction.

    Rejected rows go to `quarantine` (with the run id); the run is recorded in `import_runs`.
    `watermark=(source, value)` advances that sync watermark in the same transaction. On any error
    the transaction rolls back (the store is exactly as before) and a `failed` run is recorded.
    """
    require(actor, "import_data")
    label = source_label or filename or (str(source) if isinstance(source, (str, Path)) else "upload")
    table = read_source(source, mapping, filename, limits)
    clock = Clock(table.num_rows, progress)
    clock.tick("read", 0)
    started = datetime.now()
    try:
        with store.write() as conn:
            take_turn(conn, IMPORTS)  # on PostgreSQL: one import merges at a time, on the other's result
            # the merge lists the customers it creates, so validation need not
            report, staging = validate_table(conn, table, mapping, strict, list_new_customers=False, limits=limits)
            clock.tick("validated", 0)
            status = "rejected" if report.missing_columns or report.accepted_rows == 0 and report.rows_read else "ok"
            run_id = int(conn.execute(import_runs.insert().values(
                kind=kind, dataset=mapping.dataset, source=label, actor=actor.username, started_at=started,
                status="running", rows_read=report.rows_read,
            ).returning(import_runs.c.run_id)).scalar())
            result = ImportResult(run_id, mapping.dataset, status, report.rows_read,
                                  rejected=report.rejected_rows if not report.missing_columns else report.rows_read,
                                  report=report)
            record_rejected(conn, run_id, report, staging)
            if status == "ok":
                counts = merge(conn, actor, run_id, staging, report.errors, clock, f"{kind} #{run_id}: {label}")
                result.inserted, result.updated, result.unchanged = counts.inserted, counts.updated, counts.unchanged
                result.customers_created, result.allocations = counts.customers_created, counts.allocations
                result.disputes = counts.disputes
                result.attributes_inserted, result.attributes_updated = counts.attributes_inserted, counts.attributes_updated
            drop_stages(conn)
            if watermark is not None and not report.missing_columns:  # rejected rows wait in quarantine
                _set_watermark(conn, watermark[0], mapping.dataset, watermark[1])
            counts_json = {"rows_read": result.rows_read, "inserted": result.inserted, "updated": result.updated,
                           "unchanged": result.unchanged, "rejected": result.rejected,
                           "customers_created": len(result.customers_created)}
            # a rejected run keeps why (a missing column, or every row's reasons) for the Last runs list
            lines = [line.strip() for line in report.summary_lines()]
            error = " ".join([lines[0], "; ".join(lines[1:])]).strip() if status == "rejected" else None
            conn.execute(import_runs.update().where(import_runs.c.run_id == run_id).values(
                finished_at=datetime.now(), status=status, rows_inserted=result.inserted,
                rows_updated=result.updated, rows_unchanged=result.unchanged, rows_rejected=result.rejected,
                customers_created=len(result.customers_created), error=error))
            detail = f"{label}"
            if result.customers_created:
                detail += "; customers created: " + ", ".join(result.customers_created[:100])
                if len(result.customers_created) > 100:
                    detail += f" and {len(result.customers_created) - 100} more"
            audit.record(conn, actor, kind, mapping.dataset, run_id, new=counts_json, detail=detail[:2000])
        clock.tick("committed", table.num_rows)
        return result
    except Exception as exc:
        _record_failure(store, kind, mapping.dataset, label, actor, started, table.num_rows, exc)
        raise


def _record_failure(store: Store, kind: str, dataset: str, label: str, actor: Actor, started: datetime,
                    rows: int, exc: BaseException) -> None:
    """After a rollback: one `failed` run, so the failure is visible in the app's run list."""
    try:
        with store.write() as conn:
            conn.execute(import_runs.insert().values(
                kind=kind, dataset=dataset, source=label, actor=actor.username, started_at=started,
                finished_at=datetime.now(), status="failed", rows_read=rows,
                error=f"{type(exc).__name__}: {exc}"[:2000]))
    except Exception:  # noqa: BLE001 - the original error matters more than this note
        pass


# -- reading back ---------------------------------------------------------------------------------
def recent_runs(store: Store, limit: int = 50) -> pd.DataFrame:
    """The last imports and syncs, newest first: when, what, rows in, rejected, status, error."""
    return store.read("""
        SELECT run_id, kind, dataset, source, actor, started_at, finished_at, status, rows_read,
               rows_inserted, rows_updated, rows_unchanged, rows_rejected, customers_created, error
        FROM import_runs ORDER BY run_id DESC LIMIT :limit""", {"limit": limit})


def job_payload(mapping: Mapping, strict: bool, source_label: str, actor: Actor) -> str:
    """The JSON an inbox job carries next to its rows (see analytics.inbox)."""
    return json.dumps({"kind": "import", "mapping": mapping.to_dict(), "strict": strict, "source": source_label,
                       "actor": {"username": actor.username, "role": actor.role, "name": actor.name},
                       "created_at": datetime.now().isoformat(timespec="seconds")}, indent=2)


SAMPLES_DIR = DATA_DIR / "samples"


def sample_files() -> list[Path]:
    """Small example exports shipped in data/samples/ (to try the import page without an ERP)."""
    return sorted(p for p in SAMPLES_DIR.glob("*") if p.suffix.lower() in {".csv", ".xlsx", ".parquet"})
