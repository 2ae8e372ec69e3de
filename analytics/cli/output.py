"""What every command prints: tables, CSV or JSON, and the one kind of error a person can act on."""

from __future__ import annotations

import sys

import pandas as pd


class UserError(Exception):
    """A problem with the user's input, explained in plain words."""


def emit(frame: pd.DataFrame, fmt: str = "table") -> None:
    """Print a DataFrame as a readable table, CSV or JSON records."""
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=2) + "\n")
    elif frame.empty:
        print("(no rows)")
    else:
        print(frame.to_string(index=False))


def tell(note: str | None, fmt: str = "table") -> None:
    """Print a note beside a report (nothing for None): after a table on stdout, on stderr beside CSV or
    JSON, which stay machine-readable."""
    if note:
        print(note, file=sys.stdout if fmt == "table" else sys.stderr)
