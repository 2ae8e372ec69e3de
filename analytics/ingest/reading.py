"""Reading an ERP export: a CSV, Excel or Parquet file (or a frame) into an Arrow table.

Rule: a file past the `[imports]` caps (`ImportLimits`: rows, uploaded size, unpacked size of an
.xlsx) or not what its name says is refused with `ImportFailed` and a plain reason, before its rows
are parsed.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.ingest.mapping import Mapping
from analytics.settings import load_settings


class ImportFailed(RuntimeError):
    """The import could not be run (bad file, unreadable format); nothing was written."""


MB = 2**20


@dataclass(frozen=True)
class ImportLimits:
    """`[imports]` in settings.toml: how large a file may be before it is read, how far ahead a date.

    `max_rows` caps the data rows of any file (Parquet: from its footer; Excel: the sheet's declared
    size, then while reading; CSV: while reading, so memory stays bounded by the cap).
    `max_upload_mb` caps a file uploaded on the Imports page (bytes handed to `read_source`).
    `max_xlsx_unpacked_mb` caps what an .xlsx (a zip) would unpack to, summed over its parts as its
    zip directory declares them; Python's zipfile never inflates a part past its declared size, so
    the check bounds a zip bomb without inflating it. `max_future_days`: see `Staging.errors`.
    """

    max_future_days: int = 31
    max_upload_mb: int = 200
    max_xlsx_unpacked_mb: int = 256
    max_rows: int = 12_000_000

    @classmethod
    def from_settings(cls) -> ImportLimits:
        section = load_settings().section("imports")
        return cls(**{k: int(section.get(k, getattr(cls, k))) for k in cls.__dataclass_fields__})


def read_source(source: str | Path | pd.DataFrame | pa.Table | bytes, mapping: Mapping,
                filename: str | None = None, limits: ImportLimits | None = None) -> pa.Table:
    """The rows of a CSV, Excel (.xlsx) or Parquet file (or bytes of one, or a frame) as Arrow.

    CSV and Excel cells are read as text, so zero-padded numbers stay as written; Parquet keeps
    its column types (dates and numbers need no parsing). A file past `limits` (default: settings)
    raises `ImportFailed` saying which cap and how to get under it.
    """
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pd.DataFrame):
        return pa.Table.from_pandas(source, preserve_index=False)
    limits = limits or ImportLimits.from_settings()
    label = filename or (str(source) if not isinstance(source, bytes) else "the upload")
    name = (filename or (str(source) if not isinstance(source, bytes) else "")).lower()
    if isinstance(source, bytes) and len(source) > limits.max_upload_mb * MB:
        raise ImportFailed(f"{label} is {len(source) / MB:,.1f} MB, over the {limits.max_upload_mb:,} MB upload "
                           "limit ([imports] max_upload_mb); import it with `ardesk import` instead.")
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        if name.endswith(".parquet"):
            _check_rows(pq.read_metadata(handle).num_rows, label, limits, declared=True)
            if hasattr(handle, "seek"):
                handle.seek(0)
            return pq.read_table(handle)
        if name.endswith((".xlsx", ".xlsm")):
            frame = _read_excel(handle, label, mapping, limits)
        elif name.endswith((".csv", ".txt", ".tsv")):
            frame = pd.read_csv(handle, dtype=str, keep_default_na=False, sep=mapping.delimiter,
                                encoding="utf-8-sig", nrows=limits.max_rows + 1)
        else:
            raise ImportFailed(f"{filename or source}: unknown file type; use .csv, .xlsx or .parquet.")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, pa.ArrowException) as exc:
        raise ImportFailed(f"Could not read {label}: {exc}") from None
    _check_rows(len(frame), label, limits)
    return pa.Table.from_pandas(frame, preserve_index=False)


def _check_rows(rows: int, label: str, limits: ImportLimits, declared: bool = False) -> None:
    if rows > limits.max_rows:
        size = f"declares {rows:,} rows" if declared else f"has more than {limits.max_rows:,} rows"
        raise ImportFailed(f"{label} {size}, over the limit of {limits.max_rows:,} rows ([imports] max_rows); "
                           "nothing was read. Split it into smaller files.")


def _read_excel(handle: Any, label: str, mapping: Mapping, limits: ImportLimits) -> pd.DataFrame:
    """An .xlsx sheet as text cells, after checking the zip directory and the sheet's declared size."""
    try:
        book = zipfile.ZipFile(handle)
    except zipfile.BadZipFile:
        raise ImportFailed(f"{label} is not an Excel workbook: an .xlsx file is a zip archive and this one is "
                           "not a readable zip (another format renamed, or a damaged or cut-short file). "
                           "Save it again as .xlsx, or export CSV.") from None
    with book:
        unpacked = sum(part.file_size for part in book.infolist())
    if unpacked > limits.max_xlsx_unpacked_mb * MB:
        raise ImportFailed(f"{label} would unpack to {unpacked / MB:,.0f} MB, over the {limits.max_xlsx_unpacked_mb:,}"
                           " MB limit for Excel files ([imports] max_xlsx_unpacked_mb); nothing was read. "
                           "Export it as CSV or Parquet instead.")
    if hasattr(handle, "seek"):
        handle.seek(0)
    try:
        return _read_sheet(handle, label, mapping, limits)
    except zipfile.BadZipFile as exc:  # a part inflating past its declared size, or a wrong checksum
        raise ImportFailed(f"{label} is a damaged Excel workbook ({exc}); nothing was read. "
                           "Save it again as .xlsx, or export CSV.") from None


def _read_sheet(handle: Any, label: str, mapping: Mapping, limits: ImportLimits) -> pd.DataFrame:
    # read-only: rows stream from the sheet; its declared size is read from the sheet's first bytes
    workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True, keep_links=False)
    try:
        sheet = mapping.sheet
        names = workbook.sheetnames
        if isinstance(sheet, int) and not 0 <= sheet < len(names) or isinstance(sheet, str) and sheet not in names:
            raise ImportFailed(f"{label} has no sheet {sheet!r}; its sheets: {', '.join(names)}.")
        declared = workbook[names[sheet] if isinstance(sheet, int) else sheet].max_row
        if declared:
            _check_rows(declared - 1, label, limits, declared=True)  # the header row is not data
        return pd.read_excel(pd.ExcelFile(workbook, engine="openpyxl"), sheet_name=sheet, dtype=str,
                             keep_default_na=False, nrows=limits.max_rows + 1)
    finally:
        workbook.close()
