"""Imports of ERP exports: read, map, validate, quarantine, and merge into the store idempotently.

The pipeline, for every dataset (customers, invoices, payments, credit-notes, allocations, fx-rates):

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
"""

# ruff: noqa: S608 - SQL here is composed from our own field names and from source column names and
# mapping settings quoted by `_quote` / `_sql_str`; values from the store side bind as parameters.
from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.ingest.mapping import (
    AMOUNT_FIELDS,
    DATE_FIELDS,
    FIELDS,
    ISO_CURRENCIES,
    LEDGER_DATASETS,
    Mapping,
)
from analytics.ledger.settlement import refresh_settled_on
from analytics.ledger.stage_results import refresh_stage_results
from analytics.settings import DATA_DIR, load_settings
from analytics.store.connection import Store, bulk_insert, read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import (
    ALLOCATION_IDS,
    CUSTOMER_STATUSES,
    ENTRY_IDS,
    SEGMENTS,
    allocations,
    customers,
    fx_rates,
    import_runs,
    ledger_entries,
)

ROW = "__row"
CHUNK_ROWS = 1_000_000


class ImportFailed(RuntimeError):
    """The import could not be run (bad file, unreadable format); nothing was written."""


# -- progress -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportProgress:
    """Where a long import is: rows done of the total, and the rate so far."""

    step: str
    rows_done: int
    rows_total: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate (None before the first rows)."""
        return (self.rows_total - self.rows_done) / self.rate if self.rate else None

    @property
    def fraction(self) -> float:
        return min(1.0, self.rows_done / self.rows_total) if self.rows_total else 1.0

    def __str__(self) -> str:
        left = f", {self.eta_s:,.0f} s left" if self.eta_s is not None and self.rows_done < self.rows_total else ""
        return f"{self.step}: {self.rows_done:,} of {self.rows_total:,} rows, {self.rate:,.0f} rows/s{left}"


ProgressFn = Callable[[ImportProgress], None]


class _Clock:
    def __init__(self, total: int, progress: ProgressFn | None) -> None:
        self.total, self.progress, self.start = total, progress, time.monotonic()

    def tick(self, step: str, done: int) -> None:
        if self.progress:
            self.progress(ImportProgress(step, done, self.total, time.monotonic() - self.start))


# -- reading files --------------------------------------------------------------------------------
MB = 2**20


@dataclass(frozen=True)
class ImportLimits:
    """`[imports]` in settings.toml: how large a file may be before it is read, how far ahead a date.

    `max_rows` caps the data rows of any file (Parquet: from its footer; Excel: the sheet's declared
    size, then while reading; CSV: while reading, so memory stays bounded by the cap).
    `max_upload_mb` caps a file uploaded on the Imports page (bytes handed to `read_source`).
    `max_xlsx_unpacked_mb` caps what an .xlsx (a zip) would unpack to, summed over its parts as its
    zip directory declares them; Python's zipfile never inflates a part past its declared size, so
    the check bounds a zip bomb without inflating it. `max_future_days`: see `_Staging.errors`.
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


# -- validation -----------------------------------------------------------------------------------
@dataclass
class ValidationReport:
    """What validation found; `errors` has one row per problem (row_number, column, value, reason)."""

    dataset: str
    rows_read: int
    missing_columns: list[str]
    errors: pd.DataFrame
    new_customers: list[str] = field(default_factory=list)
    _db: duckdb.DuckDBPyConnection | None = field(default=None, repr=False)

    @property
    def rejected_rows(self) -> int:
        return int(self.errors["row_number"].nunique()) if len(self.errors) else 0

    @property
    def accepted_rows(self) -> int:
        return 0 if self.missing_columns else self.rows_read - self.rejected_rows

    @property
    def ok(self) -> bool:
        return not self.missing_columns and not len(self.errors)

    def by_reason(self) -> pd.DataFrame:
        """Problems grouped by reason: how many rows, and the first few row numbers."""
        if not len(self.errors):
            return pd.DataFrame(columns=["reason", "rows", "first_rows"])
        grouped = self.errors.groupby("reason", sort=False)["row_number"]
        out = pd.DataFrame({
            "rows": grouped.nunique(),
            "first_rows": grouped.apply(lambda s: ", ".join(str(n) for n in sorted(s.unique())[:5])),
        }).reset_index()
        return out.sort_values(["rows", "reason"], ascending=[False, True], ignore_index=True)

    def quarantine_frame(self) -> pd.DataFrame:
        """The rejected rows as read, each with its problem(s): what the downloadable file holds."""
        if self._db is None or not len(self.errors):
            return self.errors.copy()
        self._db.register("report_errors", self.errors)
        try:
            return self._db.sql(
                f'SELECT e.*, s.* EXCLUDE ("{ROW}") FROM report_errors e JOIN src s ON s."{ROW}" = e.row_number '
                "ORDER BY e.row_number, e.column_name"
            ).df()
        finally:
            self._db.unregister("report_errors")

    def summary_lines(self) -> list[str]:
        """The report in plain words, grouped by reason with counts."""
        if self.missing_columns:
            return [f"The file lacks required column(s) {', '.join(self.missing_columns)}; nothing was imported."]
        lines = [f"{self.rows_read:,} rows read, {self.accepted_rows:,} accepted, {self.rejected_rows:,} rejected."]
        for rec in self.by_reason().to_dict("records"):
            lines.append(f"  {rec['rows']:,} row(s): {rec['reason']} (rows {rec['first_rows']})")
        if self.new_customers:
            shown = ", ".join(self.new_customers[:10]) + (" ..." if len(self.new_customers) > 10 else "")
            lines.append(f"{len(self.new_customers):,} new customer(s) will be created: {shown}")
        return lines


def known_currencies(conn: sa.Connection) -> set[str]:
    """Currencies a ledger row may use: the reporting currency and every currency with an FX rate.

    Amounts in any other currency could not be converted, so KPIs would silently leave them out.
    (The fx-rates dataset itself accepts any active ISO 4217 code.)
    """
    rates = read_df(conn, "SELECT DISTINCT currency FROM fx_rates")
    return {load_settings().reporting_currency.upper(), *(str(c).upper() for c in rates["currency"])}


# The store column(s) each text field is written to (a customer id lands in several tables): a value
# may be as long as the shortest of them. The lengths are read from the schema, never copied.
_STORED_IN: dict[str, tuple[sa.Column, ...]] = {
    "customer_id": (customers.c.customer_id, ledger_entries.c.customer_id, allocations.c.customer_id),
    "name": (customers.c.name,),
    "customer_name": (customers.c.name,),
    "segment": (customers.c.segment,),
    "country": (customers.c.country,),
    "currency": (customers.c.currency, ledger_entries.c.currency, fx_rates.c.currency),
    "status": (customers.c.status,),
    "collector": (customers.c.collector,),
    "sales_rep": (customers.c.sales_rep,),
    "document_number": (ledger_entries.c.document_number,),
    "from_document": (ledger_entries.c.document_number,),
    "to_document": (ledger_entries.c.document_number,),
    "from_type": (ledger_entries.c.entry_type,),
    "reference": (ledger_entries.c.reference,),
}
FIELD_LENGTHS: dict[str, int] = {f: min(c.type.length for c in cols) for f, cols in _STORED_IN.items()}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _Staging:
    """The private DuckDB where a file is parsed and checked: `src` (as read) and `typed`."""

    def __init__(self, table: pa.Table, mapping: Mapping) -> None:
        n = table.num_rows
        self.mapping, self.table = mapping, table
        self.rows = n
        self.db = duckdb.connect()
        self.db.execute("SET threads = 2")
        self.db.register("src", table.append_column(ROW, pa.array(np.arange(1, n + 1, dtype=np.int64))))
        self.types = {r[0]: r[1] for r in self.db.execute("DESCRIBE src").fetchall()}
        required, optional = FIELDS[mapping.dataset]
        self.missing = [f"{t} (from column {mapping.source(t)!r})" if t in mapping.columns else t
                        for t in required if mapping.source(t) not in self.types]
        self.missing += [f"{t} (from column {mapping.columns[t]!r})" for t in optional
                         if t in mapping.columns and mapping.columns[t] not in self.types]
        self.present = [t for t in required + optional if mapping.source(t) in self.types]

    def longest(self, target: str) -> float:
        """An upper bound of the characters in `target`'s values: the most bytes in its source column.

        Read from the Arrow offsets (milliseconds for 10M rows), so a length rule only scans a file
        that has a value long enough to break it. Infinite for a column that is not text.
        """
        column = self.table.column(self.mapping.source(target))
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            return float("inf")
        return pc.max(pc.binary_length(column)).as_py() or 0

    def text(self, target: str) -> str:
        col = _quote(self.mapping.source(target))
        return f"NULLIF(TRIM(CAST({col} AS VARCHAR)), '')"

    def parsed(self, target: str) -> str:
        """SQL parsing the source column of `target` into its typed value (NULL if unparseable)."""
        m, col = self.mapping, _quote(self.mapping.source(target))
        kind = self.types[self.mapping.source(target)].upper()
        if target in DATE_FIELDS:
            if kind.startswith(("DATE", "TIMESTAMP")):
                return f"CAST({col} AS DATE)"
            raw = self.text(target)
            return (f"CAST(COALESCE(TRY_STRPTIME({raw}, {_sql_str(m.date_format)}), "
                    f"TRY_CAST({raw} AS TIMESTAMP)) AS DATE)")
        if target in AMOUNT_FIELDS:
            precision = "DECIMAL(18,8)" if target == "rate" else "DECIMAL(18,2)"
            if not kind.startswith(("VARCHAR", "STRING")):
                return f"TRY_CAST({col} AS {precision})"
            raw = self.text(target)
            if m.thousands_separator:
                raw = f"REPLACE({raw}, {_sql_str(m.thousands_separator)}, '')"
            if m.decimal_separator != ".":
                raw = f"REPLACE({raw}, {_sql_str(m.decimal_separator)}, '.')"
            return f"TRY_CAST(REPLACE({raw}, ' ', '') AS {precision})"
        if target == "payment_terms_days":
            return f"TRY_CAST({self.text(target)} AS INTEGER)"
        if target == "disputed":
            values = ", ".join(_sql_str(v) for v in m.true_values)
            return f"COALESCE(LOWER({self.text(target)}) IN ({values}), FALSE)"
        if target in {"currency"}:
            return f"UPPER({self.text(target)})"
        return self.text(target)

    def build_typed(self) -> None:
        """Build `typed_base` (raw text and parsed values); `typed` is a view over it.

        A parsed value identical to its raw column (text fields, Parquet columns already of the
        right type) is only an alias in the view, so 10M-row files are not copied twice.
        """
        m = self.mapping
        cols, aliases = [f'"{ROW}"'], []
        for t in self.present:
            kind = self.types[m.source(t)].upper()
            typed_source = (t in DATE_FIELDS or t in AMOUNT_FIELDS) and not kind.startswith(("VARCHAR", "STRING"))
            raw = _quote(m.source(t)) if typed_source else self.text(t)  # typed: cast to text only to report
            cols.append(f"{raw} AS raw_{t}")
            if t == "currency" and m.dataset != "fx-rates":
                # a blank currency cell falls back to the mapping's default currency
                cols.append(f"COALESCE(UPPER({self.text(t)}), {_sql_str(m.currency)}) AS currency")
                continue
            parsed = self.parsed(t)
            exact = (t in DATE_FIELDS and kind == "DATE") or (t == "amount" and kind == "DECIMAL(18,2)")
            if parsed == raw or (typed_source and exact):
                aliases.append(f"raw_{t} AS {t}")
            else:
                cols.append(f"{parsed} AS {t}")
        if "currency" in FIELDS[m.dataset][1] and "currency" not in self.present:
            cols.append(f"{_sql_str(m.currency)} AS raw_currency")
            cols.append(f"{_sql_str(m.currency)} AS currency")
        for t in FIELDS[m.dataset][1]:  # optional fields absent from the file read as NULL
            if t not in self.present and t != "currency":
                cols.append(f"CAST(NULL AS VARCHAR) AS raw_{t}")
        # Text to parse (CSV, Excel) is parsed once into a table; typed sources (Parquet) only need
        # cheap casts, so a view avoids copying millions of rows.
        parses = any((t in DATE_FIELDS or t in AMOUNT_FIELDS) and self.types[m.source(t)].upper().startswith(
            ("VARCHAR", "STRING")) for t in self.present)
        self.db.execute(f"CREATE {'TABLE' if parses else 'VIEW'} typed_base AS SELECT {', '.join(cols)} FROM src")
        self.db.execute(f"CREATE VIEW typed AS SELECT *{''.join(', ' + a for a in aliases)} FROM typed_base")
        self.columns = {r[0] for r in self.db.execute("DESCRIBE typed").fetchall()}

    def errors(self, currencies: set[str], customers: pd.DataFrame, strict: bool,
               limits: ImportLimits) -> pd.DataFrame:
        """Every rule as one SELECT; their UNION ALL is the error list.

        Lengths: a text field longer than its store column (`FIELD_LENGTHS`) is rejected; with a
        settlement date the document number must also leave room for the settlement prefix.
        Future dates: posting, settlement and allocation dates more than `limits.max_future_days`
        after today are rejected: the last posting date is the reports' default as-of date (a typo
        such as 2099 would move it there), and a settlement becomes a payment posted that day. Due
        dates may lie far ahead (long terms) and FX rate dates never set the as-of date, so
        neither is checked.
        """
        m, ds = self.mapping, self.mapping.dataset
        required = FIELDS[ds][0]
        checks: list[tuple[str, str, str, str]] = []  # (column target, value sql, where, reason)

        def add(target: str, where: str, reason: str, value: str | None = None) -> None:
            checks.append((target, value or f"raw_{target}", where, reason))

        for t in required:
            add(t, f"raw_{t} IS NULL", "missing value", "NULL")
        for t in self.present:
            if t in DATE_FIELDS:
                add(t, f"raw_{t} IS NOT NULL AND {t} IS NULL", f"unparseable date (expected {m.date_format})")
            elif t in AMOUNT_FIELDS:
                add(t, f"raw_{t} IS NOT NULL AND {t} IS NULL", "unparseable amount")
            elif t == "payment_terms_days":
                add(t, f"raw_{t} IS NOT NULL AND {t} IS NULL", "unparseable number of days")
        if ds == "invoices":
            add("amount", "amount <= 0", "invoice amount is zero or negative")
            if "due_date" in self.columns:
                add("due_date", "due_date < posting_date", "due date before the invoice date")
            if "settled_date" in self.columns:
                add("settled_date", "settled_date < posting_date", "settlement date before the invoice date")
        elif ds in LEDGER_DATASETS:
            add("amount", "amount = 0", "zero amount")
        elif ds == "allocations":
            add("amount", "amount <= 0", "allocation amount is zero or negative")
        elif ds == "fx-rates":
            add("rate", "rate <= 0", "rate is zero or negative")
        for t in self.present:
            if t in FIELD_LENGTHS and self.longest(t) > FIELD_LENGTHS[t]:
                add(t, f"LENGTH(raw_{t}) > {FIELD_LENGTHS[t]}", f"longer than {FIELD_LENGTHS[t]} characters")
        if "settled_date" in self.columns and m.settlement_prefix:
            most, prefix = FIELD_LENGTHS["document_number"], m.settlement_prefix
            if self.longest("document_number") > most - len(prefix):
                add("document_number", f"settled_date IS NOT NULL AND LENGTH(raw_document_number) "
                    f"BETWEEN {most - len(prefix) + 1} AND {most}",
                    f"longer than {most - len(prefix)} characters (the settlement payment {prefix}<number> "
                    f"must fit in {most})")
        latest = date.today() + timedelta(days=limits.max_future_days)
        for t in ("posting_date", "settled_date", "allocation_date"):
            if t in self.columns:
                add(t, f"{t} > DATE '{latest.isoformat()}'",
                    f"date more than {limits.max_future_days} days in the future (after {latest.isoformat()})")
        keys = {"customers": ["customer_id"], "fx-rates": ["rate_date", "currency"],
                "allocations": ["from_document", "to_document"]}.get(ds, ["document_number"])
        key_sql = ", ".join(f"raw_{k}" for k in keys)
        label = {"customers": "duplicate customer id in the file", "fx-rates": "duplicate rate (date, currency) in the file",
                 "allocations": "duplicate allocation in the file"}.get(ds, "duplicate document number in the file")
        # Duplicates: group 64-bit hashes first (far cheaper than 10M strings), then confirm the few
        # candidate keys on their text.
        not_null = " AND ".join(f"raw_{k} IS NOT NULL" for k in keys)
        self.db.execute(f"""CREATE OR REPLACE TABLE dup_keys AS
            SELECT {key_sql} FROM typed
            WHERE {not_null} AND hash({key_sql}) IN (
                SELECT h FROM (SELECT hash({key_sql}) AS h FROM typed WHERE {not_null}) hashes
                GROUP BY h HAVING COUNT(*) > 1)
            GROUP BY {key_sql} HAVING COUNT(*) > 1""")
        add(keys[-1], f"({key_sql}) IN (SELECT ({key_sql}) FROM dup_keys)", label)
        if "currency" in self.columns:
            if ds == "fx-rates":
                codes = ", ".join(_sql_str(c) for c in sorted(ISO_CURRENCIES))
                add("currency", f"currency IS NOT NULL AND currency NOT IN ({codes})",
                    "unknown currency (not an ISO 4217 code)")
            else:
                codes = ", ".join(_sql_str(c) for c in sorted(currencies))
                add("currency", f"currency NOT IN ({codes})",
                    "unknown currency (not the reporting currency and no FX rate)")
        if ds == "customers":
            if "segment" in self.columns:
                allowed = ", ".join(_sql_str(s) for s in SEGMENTS)
                add("segment", f"segment IS NOT NULL AND LOWER(segment) NOT IN ({allowed})", "unknown segment")
            if "status" in self.columns:
                allowed = ", ".join(_sql_str(s) for s in CUSTOMER_STATUSES)
                add("status", f"status IS NOT NULL AND LOWER(status) NOT IN ({allowed})", "unknown status")
        if strict and ds in LEDGER_DATASETS:
            self.db.register("known_customer", customers)
            add("customer_id", "customer_id NOT IN (SELECT customer_id FROM known_customer)",
                "unknown customer (--strict)")
        parts = [
            f"SELECT \"{ROW}\" AS row_number, {_sql_str(m.source(t))} AS column_name, "
            f"CAST({value} AS VARCHAR) AS value, {_sql_str(reason)} AS reason FROM typed WHERE {where}"
            for t, value, where, reason in checks
        ]
        errors = self.db.sql(" UNION ALL ".join(parts) + " ORDER BY row_number, column_name").df()
        errors["row_number"] = errors["row_number"].astype("int64")
        errors["value"] = errors["value"].astype(object).where(errors["value"].notna(), None)
        return errors

    def accepted(self, select: str, errors: pd.DataFrame) -> pa.Table:
        """`select` over the typed rows that have no error."""
        self.db.register("rejected", errors[["row_number"]].drop_duplicates())
        return self.db.sql(
            f"WITH ok AS (SELECT * FROM typed WHERE \"{ROW}\" NOT IN (SELECT row_number FROM rejected)) {select}"
        ).to_arrow_table()

    def raw_json(self, rows: pd.Series) -> pd.DataFrame:
        self.db.register("wanted", pd.DataFrame({"row_number": rows.unique()}))
        return self.db.sql(
            f'SELECT "{ROW}" AS row_number, CAST(to_json(s) AS VARCHAR) AS raw FROM src s '
            f'WHERE "{ROW}" IN (SELECT row_number FROM wanted)'
        ).df()


def _validate(conn: sa.Connection, table: pa.Table, mapping: Mapping, strict: bool,
              list_new_customers: bool = True, limits: ImportLimits | None = None,
              ) -> tuple[ValidationReport, _Staging]:
    staging = _Staging(table, mapping)
    if staging.missing:
        empty = pd.DataFrame(columns=["row_number", "column_name", "value", "reason"])
        return ValidationReport(mapping.dataset, staging.rows, staging.missing, empty, _db=staging.db), staging
    staging.build_typed()
    wants_known = mapping.dataset in LEDGER_DATASETS and (strict or list_new_customers)
    known = read_df(conn, "SELECT customer_id FROM customers") if wants_known else None
    errors = staging.errors(known_currencies(conn), known if known is not None else pd.DataFrame(), strict,
                            limits or ImportLimits.from_settings())
    if mapping.dataset == "allocations":
        errors = pd.concat([errors, _allocation_errors(conn, staging, errors)], ignore_index=True)
        errors = errors.sort_values(["row_number", "column_name"], ignore_index=True)
    report = ValidationReport(mapping.dataset, staging.rows, [], errors, _db=staging.db)
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
            return _validate(conn, table, mapping, strict, limits=limits)[0]
        finally:
            conn.rollback()  # drops the temporary tables the allocation check may have made


# -- the store side -------------------------------------------------------------------------------
_ENTRY_STAGE = """CREATE TEMPORARY TABLE _import_entries (
    row_number BIGINT, customer_id VARCHAR(64), customer_name VARCHAR(200), entry_type VARCHAR(16),
    document_number VARCHAR(64), posting_date DATE, due_date DATE, amount NUMERIC(18,2),
    currency VARCHAR(3), reference VARCHAR(200), settled_date DATE, disputed BOOLEAN, slot BIGINT)"""
_ALLOC_STAGE = """CREATE TEMPORARY TABLE _import_allocations (
    row_number BIGINT, from_type VARCHAR(16), from_document VARCHAR(64), to_document VARCHAR(64),
    amount NUMERIC(18,2), allocation_date DATE)"""
_STAGES = ("_import_entries", "_import_allocations", "_import_customers", "_import_fx", "_import_match",
           "_import_new_customers")


def _drop_stages(conn: sa.Connection) -> None:
    for name in _STAGES:
        _forget(conn, name)
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


def _forget(conn: sa.Connection, name: str) -> None:
    if conn.dialect.name == "duckdb":
        conn.connection.driver_connection.unregister(name)


def _stage(conn: sa.Connection, ddl: str, name: str, rows: pa.Table, clock: _Clock | None = None,
           step: str = "staging", writable: bool = False) -> int:
    """Make `rows` queryable as `name` on the store's connection, for set-based SQL.

    DuckDB reads the Arrow table in place (no copy); other engines get a temporary table loaded
    in bulk (COPY on PostgreSQL). `writable` stages always get a real temporary table.
    """
    _forget(conn, name)
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    if conn.dialect.name == "duckdb" and not writable:
        conn.connection.driver_connection.register(name, rows)
        if clock:
            clock.tick(step, clock.total)
        return rows.num_rows
    conn.execute(sa.text(ddl))
    done = 0
    for start in range(0, rows.num_rows, CHUNK_ROWS):
        chunk = rows.slice(start, CHUNK_ROWS).to_pandas(types_mapper=pd.ArrowDtype)
        done += bulk_insert(conn, name, chunk)
        if clock:  # staged rows can outnumber file rows (a settlement adds a payment): report file rows
            clock.tick(step, clock.total * done // max(rows.num_rows, 1))
    return done


def _allocation_errors(conn: sa.Connection, staging: _Staging, errors: pd.DataFrame) -> pd.DataFrame:
    """Allocation rules that need the store: both documents exist, same customer, never more than open.

    Open on the invoice = its amount - allocations from other credits - earlier rows of this file;
    the same for what is unapplied on the credit. An allocation already in the store for the same
    (credit, invoice) pair is replaced by the file's row, so it does not count against itself.
    """
    from_type = staging.mapping.entry_type or "payment"
    rows = staging.accepted(
        f"SELECT \"{ROW}\" AS row_number, COALESCE(LOWER(raw_from_type), {_sql_str(from_type)}) AS from_type, "
        "raw_from_document AS from_document, raw_to_document AS to_document, amount, allocation_date FROM ok",
        errors,
    )
    _stage(conn, _ALLOC_STAGE, "_import_allocations", rows, writable=True)
    found = read_df(conn, """
        SELECT a.row_number, a.from_document, a.to_document, a.amount,
               f.entry_id AS from_id, f.customer_id AS from_customer, -f.amount AS credit_amount,
               t.entry_id AS to_id, t.customer_id AS to_customer, t.amount AS invoice_amount,
               COALESCE((SELECT SUM(x.amount) FROM allocations x
                         WHERE x.to_entry_id = t.entry_id AND x.from_entry_id <> f.entry_id), 0) AS applied_to,
               COALESCE((SELECT SUM(x.amount) FROM allocations x
                         WHERE x.from_entry_id = f.entry_id AND x.to_entry_id <> t.entry_id), 0) AS applied_from
        FROM _import_allocations a
        LEFT JOIN ledger_entries f ON f.entry_type = a.from_type AND f.document_number = a.from_document
        LEFT JOIN ledger_entries t ON t.entry_type = 'invoice' AND t.document_number = a.to_document
        ORDER BY a.row_number""")
    if found.empty:
        return pd.DataFrame(columns=errors.columns)
    src = staging.mapping.source
    out = []
    no_from = found["from_id"].isna()
    no_to = found["to_id"].isna()
    out.append(pd.DataFrame({"row_number": found.row_number[no_from], "column_name": src("from_document"),
                             "value": found.from_document[no_from], "reason": "unknown payment or credit note"}))
    out.append(pd.DataFrame({"row_number": found.row_number[no_to], "column_name": src("to_document"),
                             "value": found.to_document[no_to], "reason": "unknown invoice"}))
    both = found[~no_from & ~no_to].copy()
    other = both.from_customer != both.to_customer
    out.append(pd.DataFrame({"row_number": both.row_number[other], "column_name": src("to_document"),
                             "value": both.to_document[other],
                             "reason": "payment and invoice belong to different customers"}))
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
        if self.report is not None and len(self.report.errors):
            lines += [line for line in self.report.summary_lines()[1:] if line.startswith("  ")]
        return lines


@dataclass
class _Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    customers_created: list[str] = field(default_factory=list)
    allocations: int = 0
    disputes: int = 0


def _audit_updates(conn: sa.Connection, actor: Actor, entity: str, run_id: int, changed: pd.DataFrame,
                   key: list[str], fields: list[str]) -> None:
    """One audit line per updated row, old and new values of the compared fields, inserted in bulk."""
    if changed.empty:
        return

    def as_json(prefix: str) -> list[str]:
        # values as text (dates as YYYY-MM-DD), nulls as null; to_json writes all lines in C
        part = changed[[f"{prefix}{f}" for f in fields]].set_axis(fields, axis=1)
        text = {f: (part[f].dt.strftime("%Y-%m-%d") if pd.api.types.is_datetime64_any_dtype(part[f])
                    else part[f].astype(str)).where(part[f].notna(), None) for f in fields}
        return pd.DataFrame(text).to_json(orient="records", lines=True).splitlines()

    entity_id = changed[key[0]].astype(str)
    for k in key[1:]:
        entity_id = entity_id + "/" + changed[k].astype(str)
    lines = pd.DataFrame({
        "logged_at": datetime.now(), "actor": actor.username, "action": "import_update", "entity": entity,
        "entity_id": entity_id.to_numpy(), "old_values": as_json("old_"), "new_values": as_json("new_"),
        "detail": f"import run #{run_id}",
    })
    bulk_insert(conn, "audit_log", lines)


def _null_safe_equal(a: str, b: str) -> str:
    return f"({a} = {b} OR ({a} IS NULL AND {b} IS NULL))"


def _merge_entries(conn: sa.Connection, actor: Actor, run_id: int, staging: _Staging, errors: pd.DataFrame,
                   clock: _Clock, source_label: str) -> _Counts:
    m = staging.mapping
    etype = m.ledger_entry_type or "invoice"
    sign = "amount" if etype == "invoice" else "-ABS(amount)"
    cols = staging.columns
    terms = f"CAST(posting_date + INTERVAL {int(m.default_terms_days)} DAY AS DATE)"
    if etype != "invoice":
        due = "CAST(NULL AS DATE)"
    else:  # an invoice without a due date is due after the mapping's default terms
        due = f"COALESCE(due_date, {terms})" if "due_date" in cols else terms
    name, ref = "raw_customer_name", "raw_reference"  # NULL text when the file has no such column
    settled = "settled_date" if "settled_date" in cols else "CAST(NULL AS DATE)"
    disputed = "disputed" if "disputed" in cols else "FALSE"
    # `slot` numbers new entries without a sort: entry_id = next free id + slot (gaps are harmless)
    per_row = 2 if "settled_date" in cols else 1
    select = (f"SELECT \"{ROW}\" AS row_number, raw_customer_id AS customer_id, {name} AS customer_name, "
              f"{_sql_str(etype)} AS entry_type, raw_document_number AS document_number, posting_date, "
              f"{due} AS due_date, {sign} AS amount, currency, {ref} AS reference, "
              f"{settled} AS settled_date, {disputed} AS disputed, ({ROW} - 1) * {per_row} AS slot FROM ok")
    if "settled_date" in cols:  # an invoice register: each settled invoice also yields its payment
        select += (f" UNION ALL SELECT \"{ROW}\", raw_customer_id, {name}, 'payment', "
                   f"{_sql_str(m.settlement_prefix)} || raw_document_number, settled_date, CAST(NULL AS DATE), "
                   f"-amount, currency, 'settles ' || raw_document_number, CAST(NULL AS DATE), FALSE, "
                   f"({ROW} - 1) * 2 + 1 FROM ok WHERE settled_date IS NOT NULL")
    rows = staging.accepted(select, errors)
    _stage(conn, _ENTRY_STAGE, "_import_entries", rows, clock, "staging rows")
    counts = _Counts()

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
    if "reference" in cols or "settled_date" in cols:
        compared.append("reference")
    same = " AND ".join(_null_safe_equal(f"e.{c}", f"s.{c}") for c in compared)
    kept = ["customer_id", "posting_date", "due_date", "amount", "currency", "reference", "source"]
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
    _audit_updates(conn, actor, "ledger_entry", run_id, changed, ["entry_type", "document_number"], compared)
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
                                    amount, currency, reference, source, updated_at)
        SELECT :base + slot, customer_id, entry_type,
               document_number, posting_date, due_date, amount, currency, reference, :source, :now
        FROM _import_entries s""" + ("" if matched.empty else """
        WHERE NOT EXISTS (SELECT 1 FROM _import_match m
                          WHERE m.row_number = s.row_number AND m.entry_type = s.entry_type)""")),
        {"base": base, "source": source_label[:100], "now": datetime.now()})
    clock.tick("entries written", staging.rows)

    if "settled_date" in cols:
        _forget(conn, "_import_allocations")
        conn.execute(sa.text("DROP TABLE IF EXISTS _import_allocations"))
        conn.execute(sa.text(_ALLOC_STAGE))
        conn.execute(sa.text("""
            INSERT INTO _import_allocations (row_number, from_type, from_document, to_document, amount, allocation_date)
            SELECT row_number, 'payment', :prefix || document_number, document_number, amount, settled_date
            FROM _import_entries WHERE entry_type = 'invoice' AND settled_date IS NOT NULL"""),
            {"prefix": m.settlement_prefix})
        counts.allocations = _merge_allocations(conn, actor, run_id)[0]
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


def _merge_allocations(conn: sa.Connection, actor: Actor, run_id: int) -> tuple[int, int, int]:
    """Merge `_import_allocations` on (credit entry, invoice): (inserted, updated, unchanged)."""
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text("""
        CREATE TEMPORARY TABLE _import_match AS
        SELECT a.row_number, f.customer_id, f.entry_id AS from_id, t.entry_id AS to_id, a.amount, a.allocation_date,
               x.allocation_id AS existing_id, x.amount AS old_amount, x.allocation_date AS old_allocation_date,
               CASE WHEN x.allocation_id IS NULL THEN 'new'
                    WHEN x.amount = a.amount AND x.allocation_date = a.allocation_date THEN 'same'
                    ELSE 'changed' END AS change
        FROM _import_allocations a
        JOIN ledger_entries f ON f.entry_type = a.from_type AND f.document_number = a.from_document
        JOIN ledger_entries t ON t.entry_type = 'invoice' AND t.document_number = a.to_document
        LEFT JOIN allocations x ON x.from_entry_id = f.entry_id AND x.to_entry_id = t.entry_id"""))
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    changed = read_df(conn, """SELECT existing_id, old_amount, amount AS new_amount,
        old_allocation_date, allocation_date AS new_allocation_date FROM _import_match WHERE change = 'changed'""")
    _audit_updates(conn, actor, "allocation", run_id, changed, ["existing_id"], ["amount", "allocation_date"])
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
    return tuple(int(tally.get(k, 0)) for k in ("new", "changed", "same"))  # type: ignore[return-value]


_CUSTOMER_FIELDS = ("name", "segment", "country", "currency", "payment_terms_days", "credit_limit", "status",
                    "collector", "sales_rep")


def _merge_customers(conn: sa.Connection, actor: Actor, run_id: int, staging: _Staging, errors: pd.DataFrame,
                     clock: _Clock) -> _Counts:
    m, cols = staging.mapping, staging.columns
    mapped = [f for f in _CUSTOMER_FIELDS if f in cols]
    lower = {"segment", "status"}
    exprs = [f"LOWER({f}) AS {f}" if f in lower else f"{f}" for f in mapped]
    rows = staging.accepted(f"SELECT \"{ROW}\" AS row_number, raw_customer_id AS customer_id"
                            f"{''.join(', ' + e for e in exprs)} FROM ok", errors)
    types = {"name": "VARCHAR(200)", "segment": "VARCHAR(40)", "country": "VARCHAR(2)", "currency": "VARCHAR(3)",
             "payment_terms_days": "INTEGER", "credit_limit": "NUMERIC(18,2)", "status": "VARCHAR(20)",
             "collector": "VARCHAR(64)", "sales_rep": "VARCHAR(64)"}
    ddl = ("CREATE TEMPORARY TABLE _import_customers (row_number BIGINT, customer_id VARCHAR(64)"
           + "".join(f", {f} {types[f]}" for f in mapped) + ")")
    _stage(conn, ddl, "_import_customers", rows, clock, "staging rows")
    same = " AND ".join(_null_safe_equal(f"c.{f}", f"s.{f}") for f in mapped) or "TRUE"
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text(f"""CREATE TEMPORARY TABLE _import_match AS
        SELECT s.*, CASE WHEN c.customer_id IS NULL THEN 'new' WHEN {same} THEN 'same' ELSE 'changed' END AS change
        FROM _import_customers s LEFT JOIN customers c ON c.customer_id = s.customer_id"""))
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    counts = _Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))
    if mapped:
        old_new = ", ".join(f"c.{f} AS old_{f}, m.{f} AS new_{f}" for f in mapped)
        changed = read_df(conn, f"""SELECT m.customer_id, {old_new} FROM _import_match m
            JOIN customers c ON c.customer_id = m.customer_id WHERE m.change = 'changed'""")
        _audit_updates(conn, actor, "customer", run_id, changed, ["customer_id"], mapped)
        sets = ", ".join(f"{f} = m.{f}" for f in mapped)
        conn.execute(sa.text(f"""UPDATE customers SET {sets}, updated_at = :now FROM _import_match m
            WHERE customers.customer_id = m.customer_id AND m.change = 'changed'"""), {"now": datetime.now()})
    defaults = {"name": "customer_id", "segment": ":segment", "currency": ":currency",
                "payment_terms_days": ":terms", "status": "'active'"}
    insert_cols = ["customer_id", *mapped, *[d for d in defaults if d not in mapped], "created_at"]
    values = ["customer_id", *[f"COALESCE({f}, {defaults[f]})" if f in defaults else f for f in mapped],
              *[defaults[d] for d in defaults if d not in mapped], ":now"]
    conn.execute(sa.text(f"""INSERT INTO customers ({', '.join(insert_cols)})
        SELECT {', '.join(values)} FROM _import_match WHERE change = 'new'"""),
        {"segment": m.default_segment, "currency": m.currency, "terms": m.default_terms_days, "now": datetime.now()})
    return counts


def _merge_fx(conn: sa.Connection, actor: Actor, run_id: int, staging: _Staging, errors: pd.DataFrame,
              clock: _Clock) -> _Counts:
    rows = staging.accepted(f"SELECT \"{ROW}\" AS row_number, rate_date, currency, rate FROM ok", errors)
    _stage(conn, "CREATE TEMPORARY TABLE _import_fx (row_number BIGINT, rate_date DATE, currency VARCHAR(3), "
           "rate NUMERIC(18,8))", "_import_fx", rows, clock, "staging rows")
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_match"))
    conn.execute(sa.text("""CREATE TEMPORARY TABLE _import_match AS
        SELECT s.*, f.rate AS old_rate,
               CASE WHEN f.rate IS NULL THEN 'new' WHEN f.rate = s.rate THEN 'same' ELSE 'changed' END AS change
        FROM _import_fx s LEFT JOIN fx_rates f ON f.rate_date = s.rate_date AND f.currency = s.currency"""))
    tally = read_df(conn, "SELECT change, COUNT(*) AS n FROM _import_match GROUP BY change").set_index("change")["n"]
    changed = read_df(conn, "SELECT rate_date, currency, old_rate, rate AS new_rate FROM _import_match "
                            "WHERE change = 'changed'")
    _audit_updates(conn, actor, "fx_rate", run_id, changed, ["rate_date", "currency"], ["rate"])
    conn.execute(sa.text("""UPDATE fx_rates SET rate = m.rate FROM _import_match m
        WHERE fx_rates.rate_date = m.rate_date AND fx_rates.currency = m.currency AND m.change = 'changed'"""))
    conn.execute(sa.text("INSERT INTO fx_rates (rate_date, currency, rate) "
                         "SELECT rate_date, currency, rate FROM _import_match WHERE change = 'new'"))
    return _Counts(*(int(tally.get(k, 0)) for k in ("new", "changed", "same")))


def _merge_allocation_file(conn: sa.Connection, actor: Actor, run_id: int, staging: _Staging,
                           errors: pd.DataFrame, clock: _Clock) -> _Counts:
    # `_import_allocations` was staged by the validation (rows that passed the file checks); keep
    # only the rows the store checks accepted too.
    conn.execute(sa.text("DELETE FROM _import_allocations WHERE row_number IN (SELECT row_number FROM _import_rejected)"))
    inserted, updated, unchanged = _merge_allocations(conn, actor, run_id)
    clock.tick("allocations written", staging.rows)
    return _Counts(inserted, updated, unchanged)


# -- the whole import -----------------------------------------------------------------------------
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
    clock = _Clock(table.num_rows, progress)
    clock.tick("read", 0)
    started = datetime.now()
    try:
        with store.write() as conn:
            # the merge lists the customers it creates, so validation need not
            report, staging = _validate(conn, table, mapping, strict, list_new_customers=False, limits=limits)
            clock.tick("validated", 0)
            status = "rejected" if report.missing_columns or report.accepted_rows == 0 and report.rows_read else "ok"
            run_id = int(conn.execute(import_runs.insert().values(
                kind=kind, dataset=mapping.dataset, source=label, actor=actor.username, started_at=started,
                status="running", rows_read=report.rows_read,
            ).returning(import_runs.c.run_id)).scalar())
            result = ImportResult(run_id, mapping.dataset, status, report.rows_read,
                                  rejected=report.rejected_rows if not report.missing_columns else report.rows_read,
                                  report=report)
            if len(report.errors):
                q = report.errors.merge(staging.raw_json(report.errors["row_number"]), on="row_number", how="left")
                q.insert(0, "run_id", run_id)
                bulk_insert(conn, "quarantine", q[["run_id", "row_number", "column_name", "value", "reason", "raw"]])
            if status == "ok":
                counts = _merge(conn, actor, run_id, staging, report.errors, clock, f"{kind} #{run_id}: {label}")
                result.inserted, result.updated, result.unchanged = counts.inserted, counts.updated, counts.unchanged
                result.customers_created, result.allocations = counts.customers_created, counts.allocations
                result.disputes = counts.disputes
            _drop_stages(conn)
            if watermark is not None and not report.missing_columns:  # rejected rows wait in quarantine
                _set_watermark(conn, watermark[0], mapping.dataset, watermark[1])
            counts_json = {"rows_read": result.rows_read, "inserted": result.inserted, "updated": result.updated,
                           "unchanged": result.unchanged, "rejected": result.rejected,
                           "customers_created": len(result.customers_created)}
            error = "; ".join(report.summary_lines()) if report.missing_columns else None
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


def _merge(conn: sa.Connection, actor: Actor, run_id: int, staging: _Staging, errors: pd.DataFrame,
           clock: _Clock, source_label: str) -> _Counts:
    ds = staging.mapping.dataset
    if ds in LEDGER_DATASETS:
        return _merge_entries(conn, actor, run_id, staging, errors, clock, source_label)
    if ds == "customers":
        return _merge_customers(conn, actor, run_id, staging, errors, clock)
    if ds == "fx-rates":
        return _merge_fx(conn, actor, run_id, staging, errors, clock)
    conn.execute(sa.text("DROP TABLE IF EXISTS _import_rejected"))
    conn.execute(sa.text("CREATE TEMPORARY TABLE _import_rejected (row_number BIGINT)"))
    bulk_insert(conn, "_import_rejected", errors[["row_number"]].drop_duplicates())
    try:
        return _merge_allocation_file(conn, actor, run_id, staging, errors, clock)
    finally:
        conn.execute(sa.text("DROP TABLE IF EXISTS _import_rejected"))


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


def job_payload(mapping: Mapping, strict: bool, source_label: str, actor: Actor) -> str:
    """The JSON an inbox job carries next to its rows (see analytics.inbox)."""
    return json.dumps({"kind": "import", "mapping": mapping.to_dict(), "strict": strict, "source": source_label,
                       "actor": {"username": actor.username, "role": actor.role, "name": actor.name},
                       "created_at": datetime.now().isoformat(timespec="seconds")}, indent=2)


SAMPLES_DIR = DATA_DIR / "samples"


def sample_files() -> list[Path]:
    """Small example exports shipped in data/samples/ (to try the import page without an ERP)."""
    return sorted(p for p in SAMPLES_DIR.glob("*") if p.suffix.lower() in {".csv", ".xlsx", ".parquet"})
