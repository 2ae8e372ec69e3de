"""The staging of a file before anything is written: its private DuckDB, the per-row rules, the report.

Rule: parsing and every row rule run as set-based SQL in a private in-memory DuckDB (`Staging`,
whatever the store is), never a Python loop per row. `ValidationReport` lists one row per problem.
The rules that read the store are in `ledger_rules` (allocations, adjustments, write-offs) and
`team_datasets`; `validation.validate` runs them all.
"""

# ruff: noqa: S608 - SQL here is composed from our own field names and from source column names and
# mapping settings quoted by `quote` / `sql_str`; values from the store side bind as parameters.
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from analytics.ingest.attributes import attribute_columns
from analytics.ingest.mapping import (
    AMOUNT_FIELDS,
    BOOLEAN_FIELDS,
    DATE_FIELDS,
    FALSE_VALUES,
    FIELDS,
    FROM_TYPES,
    ISO_CURRENCIES,
    LEDGER_DATASETS,
    Mapping,
)
from analytics.ingest.reading import ImportLimits
from analytics.ingest.team_datasets import DUPLICATE_KEYS, file_rules, word
from analytics.settings import load_settings
from analytics.store.connection import read_df
from analytics.store.schema import (
    CUSTOMER_STATUSES,
    activities,
    allocations,
    contacts,
    customers,
    dunning_configs,
    dunning_stages,
    fx_rates,
    ledger_entries,
)

ROW = "__row"


@dataclass
class ValidationReport:
    """What validation found; `errors` has one row per problem (row_number, column, value, reason).

    Every message names the file's own column and the field it feeds (`fields`: source column ->
    field). `missing_columns` lists the columns the file lacks, each with its field and whether that
    field is required or optional (an optional field whose column the mapping names explicitly).
    """

    dataset: str
    rows_read: int
    missing_columns: list[str]
    errors: pd.DataFrame
    new_customers: list[str] = field(default_factory=list)
    # customers files: {attribute name: file column} kept as customer attributes, and what is not kept
    attributes: dict[str, str] = field(default_factory=dict)
    attributes_not_kept: list[str] = field(default_factory=list)
    _db: duckdb.DuckDBPyConnection | None = field(default=None, repr=False)
    fields: dict[str, str] = field(default_factory=dict)  # source column -> the field(s) it feeds
    file_columns: list[str] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return int(self.errors["row_number"].nunique()) if len(self.errors) else 0

    @property
    def accepted_rows(self) -> int:
        return 0 if self.missing_columns else self.rows_read - self.rejected_rows

    @property
    def ok(self) -> bool:
        return not self.missing_columns and not len(self.errors)

    @property
    def importable(self) -> bool:
        """Whether an import would write anything: the columns are there and some row is accepted."""
        return not self.missing_columns and (self.accepted_rows > 0 or self.rows_read == 0)

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

    def by_column_and_reason(self) -> pd.DataFrame:
        """Problems grouped by reason and the file's column (with the field it feeds): rows, first rows."""
        if not len(self.errors):
            return pd.DataFrame(columns=["reason", "column", "field", "rows", "first_rows"])
        grouped = self.errors.groupby(["reason", "column_name"], sort=False)["row_number"]
        out = pd.DataFrame({
            "rows": grouped.nunique(),
            "first_rows": grouped.apply(lambda s: ", ".join(str(n) for n in sorted(s.unique())[:5])),
        }).reset_index().rename(columns={"column_name": "column"})
        out.insert(2, "field", [self.fields.get(str(c), "") for c in out["column"]])
        return out.sort_values(["rows", "reason", "column"], ascending=[False, True, True], ignore_index=True)

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
        """The report in plain words, grouped by reason and column with counts.

        A file lacking a column is rejected whole: the first line says which column, for which
        field, and lists the file's own columns to map from.
        """
        if self.missing_columns:
            shown = ", ".join(self.file_columns[:30]) + (" ..." if len(self.file_columns) > 30 else "")
            lacks = ", ".join(self.missing_columns[:-1]) + (" and " if len(self.missing_columns) > 1 else "")
            return [f"Nothing can be imported: the file lacks {lacks}{self.missing_columns[-1]}. "
                    f"The file's columns: {shown}."]
        lines = [f"{self.rows_read:,} rows read, {self.accepted_rows:,} accepted, {self.rejected_rows:,} rejected"
                 + (": nothing can be imported." if not self.importable else ".")]
        for rec in self.by_column_and_reason().to_dict("records"):
            feeds = f", field {rec['field']}" if rec["field"] else ""
            lines.append(f"  {rec['rows']:,} row(s): {rec['reason']}; column {rec['column']!r}{feeds} "
                         f"(rows {rec['first_rows']})")
        if self.new_customers:
            shown = ", ".join(self.new_customers[:10]) + (" ..." if len(self.new_customers) > 10 else "")
            lines.append(f"{len(self.new_customers):,} new customer(s) will be created: {shown}")
        lines += self.attribute_lines()
        return lines

    def attribute_lines(self) -> list[str]:
        """Which extra columns of a customers file are kept as customer attributes, and which are not."""
        lines = []
        if self.attributes:
            kept = ", ".join(f"{column!r} as {name}" for name, column in self.attributes.items())
            lines.append(f"Extra column(s) kept as customer attributes: {kept}.")
        return lines + [f"Not kept: {why}." for why in self.attributes_not_kept]


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
    "reason": (ledger_entries.c.reference, activities.c.reason),
    "related_invoice": (ledger_entries.c.related_document,),
    "email": (contacts.c.email,),
    "phone": (contacts.c.phone,),
    "department": (activities.c.department,),
    "configuration": (dunning_configs.c.name,),
    "stage_name": (dunning_stages.c.name,),
    "template": (dunning_stages.c.template,),
}
FIELD_LENGTHS: dict[str, int] = {f: min(c.type.length for c in cols) for f, cols in _STORED_IN.items()}
FIELD_LENGTHS["resolution"] = 2000  # a dispute's resolution goes into the activity's body (TEXT): a note's length


def from_type_sql(text: str) -> str:
    """SQL reading an allocation's from_type as the datasets spell it: `credit-note`, `Credit note`
    and `credit_note` all read `credit_note` (see `FROM_TYPES`)."""
    return f"REPLACE(REPLACE(LOWER(TRIM({text})), '-', '_'), ' ', '_')"


def _adjustment_rules(staging: Staging, add: Any) -> None:
    """Adjustments: a `direction` column says debit or credit (any case); without one the amount's
    sign does (positive = debit). A debit written negative is rejected rather than guessed; a
    credit may be written either way. A due date never precedes the posting date."""
    if "direction" in staging.present:
        add("direction", "raw_direction IS NULL", "missing value (debit or credit)")
        add("direction", "raw_direction IS NOT NULL AND LOWER(raw_direction) NOT IN ('debit', 'credit')",
            "unknown direction (debit or credit)")
        add("amount", "LOWER(raw_direction) = 'debit' AND amount < 0", "negative amount on a debit adjustment")
    if "due_date" in staging.columns:
        add("due_date", "due_date < posting_date", "due date before the posting date")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Staging:
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
        # a column the file lacks: every required field's, and an optional field's the mapping names
        self.missing = [f"column {mapping.source(t)!r} (field {t}, required)"
                        for t in required if mapping.source(t) not in self.types]
        self.missing += [f"column {mapping.columns[t]!r} (field {t}, optional, named by the mapping)"
                         for t in optional if t in mapping.columns and mapping.columns[t] not in self.types]
        self.present = [t for t in required + optional if mapping.source(t) in self.types]
        self.fields: dict[str, str] = {}  # source column -> the field(s) it feeds, for messages
        for t in self.present:
            source = mapping.source(t)
            self.fields[source] = f"{self.fields[source]}/{t}" if source in self.fields else t
        self.attributes, self.attributes_not_kept = attribute_columns(
            [c for c in self.types if c != ROW],  # a sync's watermark column is the sync's, not an attribute
            {mapping.source(t) for t in self.present} | {str(mapping.sync.get("watermark_column", ""))}
        ) if mapping.dataset == "customers" else ({}, [])

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
        col = quote(self.mapping.source(target))
        return f"NULLIF(TRIM(CAST({col} AS VARCHAR)), '')"

    def parsed(self, target: str) -> str:
        """SQL parsing the source column of `target` into its typed value (NULL if unparseable)."""
        m, col = self.mapping, quote(self.mapping.source(target))
        kind = self.types[self.mapping.source(target)].upper()
        if target in DATE_FIELDS:
            if kind.startswith(("DATE", "TIMESTAMP")):
                return f"CAST({col} AS DATE)"
            raw = self.text(target)
            return (f"CAST(COALESCE(TRY_STRPTIME({raw}, {sql_str(m.date_format)}), "
                    f"TRY_CAST({raw} AS TIMESTAMP)) AS DATE)")
        if target in AMOUNT_FIELDS:
            precision = "DECIMAL(18,8)" if target == "rate" else "DECIMAL(18,2)"
            if not kind.startswith(("VARCHAR", "STRING")):
                return f"TRY_CAST({col} AS {precision})"
            raw = self.text(target)
            if m.thousands_separator:
                raw = f"REPLACE({raw}, {sql_str(m.thousands_separator)}, '')"
            if m.decimal_separator != ".":
                raw = f"REPLACE({raw}, {sql_str(m.decimal_separator)}, '.')"
            return f"TRY_CAST(REPLACE({raw}, ' ', '') AS {precision})"
        if target in ("payment_terms_days", "stage_order"):
            return f"TRY_CAST({self.text(target)} AS INTEGER)"
        if target in BOOLEAN_FIELDS:
            yes = ", ".join(sql_str(v) for v in m.true_values)
            no = ", ".join(sql_str(v) for v in FALSE_VALUES)
            raw = f"LOWER({self.text(target)})"
            return f"CASE WHEN {raw} IN ({yes}) THEN TRUE WHEN {raw} IN ({no}) THEN FALSE END"
        if target in ("role", "preferred_channel", "channel", "outcome"):
            return word(self.text(target))
        if target == "disputed":
            values = ", ".join(sql_str(v) for v in m.true_values)
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
            raw = quote(m.source(t)) if typed_source else self.text(t)  # typed: cast to text only to report
            cols.append(f"{raw} AS raw_{t}")
            if t == "currency" and m.dataset != "fx-rates":
                # a blank currency cell falls back to the mapping's default currency
                cols.append(f"COALESCE(UPPER({self.text(t)}), {sql_str(m.currency)}) AS currency")
                continue
            parsed = self.parsed(t)
            exact = (t in DATE_FIELDS and kind == "DATE") or (t == "amount" and kind == "DECIMAL(18,2)")
            if parsed == raw or (typed_source and exact):
                aliases.append(f"raw_{t} AS {t}")
            else:
                cols.append(f"{parsed} AS {t}")
        if "currency" in FIELDS[m.dataset][1] and "currency" not in self.present:
            cols.append(f"{sql_str(m.currency)} AS raw_currency")
            cols.append(f"{sql_str(m.currency)} AS currency")
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
            elif t == "stage_order":
                add(t, f"raw_{t} IS NOT NULL AND {t} IS NULL", "unparseable number")
            elif t in BOOLEAN_FIELDS:
                add(t, f"raw_{t} IS NOT NULL AND {t} IS NULL", "not a yes/no value")
        if ds == "adjustments":
            _adjustment_rules(self, add)
        elif ds == "write-offs":
            add("amount", "amount = 0", "zero amount")
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
            if "from_type" in self.present:
                known = ", ".join(sql_str(t) for t in FROM_TYPES)
                add("from_type", f"raw_from_type IS NOT NULL AND {from_type_sql('raw_from_type')} NOT IN ({known})",
                    "unknown from_type (payment, credit-note, adjustment or write-off)")
        elif ds == "fx-rates":
            add("rate", "rate <= 0", "rate is zero or negative")
        elif ds == "installments":
            add("amount", "amount <= 0", "installment amount is zero or negative")
        for t, where, reason in file_rules(ds, self.columns):
            add(t, where, reason)
        for t in self.present:
            if t in FIELD_LENGTHS and self.longest(t) > FIELD_LENGTHS[t]:
                add(t, f"LENGTH(raw_{t}) > {FIELD_LENGTHS[t]}", f"longer than {FIELD_LENGTHS[t]} characters")
        if ds == "write-offs" and m.write_off_prefix:  # the write-off entry's number is prefix + the item's
            most, prefix = FIELD_LENGTHS["document_number"], m.write_off_prefix
            if self.longest("document_number") > most - len(prefix):
                add("document_number", f"LENGTH(raw_document_number) BETWEEN {most - len(prefix) + 1} AND {most}",
                    f"longer than {most - len(prefix)} characters (the write-off {prefix}<number> must fit in {most})")
        if "settled_date" in self.columns and m.settlement_prefix:
            most, prefix = FIELD_LENGTHS["document_number"], m.settlement_prefix
            if self.longest("document_number") > most - len(prefix):
                add("document_number", f"settled_date IS NOT NULL AND LENGTH(raw_document_number) "
                    f"BETWEEN {most - len(prefix) + 1} AND {most}",
                    f"longer than {most - len(prefix)} characters (the settlement payment {prefix}<number> "
                    f"must fit in {most})")
        latest = date.today() + timedelta(days=limits.max_future_days)
        for t in ("posting_date", "settled_date", "allocation_date", "opened_on", "resolved_on", "run_date"):
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
        if ds in DUPLICATE_KEYS:  # keys that are expressions, compared through named columns
            exprs, reported, label = DUPLICATE_KEYS[ds]
            self.db.execute(f"""CREATE OR REPLACE TABLE dup_keys AS
                SELECT {', '.join(f'{e} AS k{i}' for i, e in enumerate(exprs))} FROM typed
                WHERE {' AND '.join(f'{e} IS NOT NULL' for e in exprs)}
                GROUP BY {', '.join(exprs)} HAVING COUNT(*) > 1""")
            add(reported, f"({', '.join(exprs)}) IN (SELECT ({', '.join(f'k{i}' for i in range(len(exprs)))}) "
                "FROM dup_keys)", label)
        else:
            self.db.execute(f"""CREATE OR REPLACE TABLE dup_keys AS
                SELECT {key_sql} FROM typed
                WHERE {not_null} AND hash({key_sql}) IN (
                    SELECT h FROM (SELECT hash({key_sql}) AS h FROM typed WHERE {not_null}) hashes
                    GROUP BY h HAVING COUNT(*) > 1)
                GROUP BY {key_sql} HAVING COUNT(*) > 1""")
            add(keys[-1], f"({key_sql}) IN (SELECT ({key_sql}) FROM dup_keys)", label)
        if "currency" in self.columns:
            if ds == "fx-rates":
                codes = ", ".join(sql_str(c) for c in sorted(ISO_CURRENCIES))
                add("currency", f"currency IS NOT NULL AND currency NOT IN ({codes})",
                    "unknown currency (not an ISO 4217 code)")
            else:
                codes = ", ".join(sql_str(c) for c in sorted(currencies))
                add("currency", f"currency NOT IN ({codes})",
                    "unknown currency (not the reporting currency and no FX rate)")
        if ds == "customers":
            # segment: any text (the demo's four segments are demo data, not a rule); its length is checked above
            if "status" in self.columns:
                allowed = ", ".join(sql_str(s) for s in CUSTOMER_STATUSES)
                add("status", f"status IS NOT NULL AND LOWER(status) NOT IN ({allowed})", "unknown status")
        if strict and ds in LEDGER_DATASETS:
            self.db.register("known_customer", customers)
            add("customer_id", "customer_id NOT IN (SELECT customer_id FROM known_customer)",
                "unknown customer (--strict)")
        parts = [
            f"SELECT \"{ROW}\" AS row_number, {sql_str(m.source(t))} AS column_name, "
            f"CAST({value} AS VARCHAR) AS value, {sql_str(reason)} AS reason FROM typed WHERE {where}"
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


# A write-off's item: the invoice with that document number, else the debit adjustment. The same
# rule finds an allocation's target (`merges.allocations`).
