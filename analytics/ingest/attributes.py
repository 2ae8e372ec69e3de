"""Which columns of a customers file are kept as customer attributes, and their length rule.

Rule: every column of a customers file that feeds no customers field (by the mapping, or by its
own name when the mapping does not name the field), other than a sync's `[sync] watermark_column`,
is kept as a customer attribute, named by
`customer_attributes.attribute_name` ("Vehicle Class" → `vehicle_class`). Not kept, and said so in
the report: a header that names no attribute (no letter or digit, or too long), and a second
column whose header gives a name an earlier column already gave. A value is the cell's text,
trimmed; a value longer than the store's column (`VALUE_LENGTH`, read from the schema like the
fields' `validation.FIELD_LENGTHS`) rejects its row, naming the
file's column and the attribute. A blank cell sets nothing and clears nothing.

Used by `validation` (the report and the length rule) and `merges.customer_attributes` (the rows);
the SQL runs in the staging DuckDB over `src`, the file as read.
"""

# ruff: noqa: S608 - SQL here is composed from the file's column names, quoted by `_quote`, and from
# attribute names made of [a-z0-9_] only; no value is ever part of the text.
from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from analytics.ledger.customer_attributes import NAME_LENGTH, VALUE_LENGTH, attribute_name

__all__ = ["VALUE_LENGTH", "attribute_columns", "attribute_errors", "attribute_rows_sql", "value_sql"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def attribute_columns(file_columns: Iterable[str], mapped: set[str]) -> tuple[dict[str, str], list[str]]:
    """({attribute name: file column} kept, [why a column is not kept]) for a customers file whose
    columns `mapped` feed customers fields."""
    kept: dict[str, str] = {}
    skipped: list[str] = []
    for column in file_columns:
        if column in mapped:
            continue
        name = attribute_name(column)
        if name is None:
            skipped.append(f"column {column!r} is not kept: its header names no attribute "
                           f"(no letter or digit, or longer than {NAME_LENGTH} characters)")
        elif name in kept:
            skipped.append(f"column {column!r} is not kept: it gives the attribute name {name!r}, "
                           f"as column {kept[name]!r} does")
        else:
            kept[name] = column
    return kept, skipped


def value_sql(column: str) -> str:
    """An attribute's value in a row of `src`: its text, trimmed; NULL when blank."""
    return f"NULLIF(TRIM(CAST(s.{_quote(column)} AS VARCHAR)), '')"


def attribute_errors(db: duckdb.DuckDBPyConnection, kept: dict[str, str], row_column: str,
                     most: int) -> pd.DataFrame:
    """Rows whose value of a kept column is longer than `most` characters: one error each
    (row_number, column_name, value, reason), the reason naming the attribute."""
    parts = [
        f"SELECT s.{_quote(row_column)} AS row_number, ? AS column_name, {value_sql(column)} AS value, "
        f"? AS reason FROM src s WHERE LENGTH({value_sql(column)}) > {int(most)}"
        for column in kept.values()
    ]
    params = [p for name, column in kept.items()
              for p in (column, f"longer than {most} characters (customer attribute {name})")]
    columns = ["row_number", "column_name", "value", "reason"]
    if not parts:
        return pd.DataFrame(columns=columns)
    frame = db.execute(" UNION ALL ".join(parts), params).df()
    frame["row_number"] = frame["row_number"].astype("int64")
    return frame[columns]


def attribute_rows_sql(kept: dict[str, str], row_column: str) -> str:
    """SELECT (customer_id, name, value) for every non-blank attribute cell of the accepted rows:
    run inside `Staging.accepted`, whose `ok` holds the accepted typed rows."""
    return " UNION ALL ".join(
        f"SELECT ok.raw_customer_id AS customer_id, '{name}' AS name, {value_sql(column)} AS value "
        f"FROM ok JOIN src s ON s.{_quote(row_column)} = ok.{_quote(row_column)} "
        f"WHERE {value_sql(column)} IS NOT NULL"
        for name, column in kept.items()
    )
