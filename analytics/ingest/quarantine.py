"""The quarantine: the rows a run rejected, kept with their reasons in the `quarantine` table and
downloadable as a CSV of the rows as read.

Rule: a rejected row is never merged; its quarantine rows are written in the run's own
transaction, so they are there exactly when the run is.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from analytics.ingest.staging import Staging, ValidationReport
from analytics.store.connection import Store, bulk_insert


def record_rejected(conn: sa.Connection, run_id: int, report: ValidationReport, staging: Staging) -> None:
    """The report's problems as `quarantine` rows of run `run_id`, each with its row as read (JSON)."""
    if not len(report.errors):
        return
    q = report.errors.merge(staging.raw_json(report.errors["row_number"]), on="row_number", how="left")
    q.insert(0, "run_id", run_id)
    bulk_insert(conn, "quarantine", q[["run_id", "row_number", "column_name", "value", "reason", "raw"]])


def quarantined_rows(store: Store, run_id: int) -> pd.DataFrame:
    """The rows a run rejected, with column, value and reason."""
    return store.read("""SELECT row_number, column_name, value, reason, raw FROM quarantine
        WHERE run_id = :run_id ORDER BY row_number, column_name""", {"run_id": run_id})


def write_quarantine_file(report: ValidationReport, folder: Path, run_id: int | None) -> Path | None:
    """The rejected rows (as read, with their reasons) as a CSV under `folder`; None when nothing was rejected."""
    if not len(report.errors):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{report.dataset}-{'run' + str(run_id) if run_id else 'check'}-{stamp}.csv"
    report.quarantine_frame().to_csv(path, index=False)
    return path

