"""`ardesk`: the command line over the engine, so everything the app shows can be scripted.

Each command group lives in `analytics/commands/<group>.py` with a `register(subparsers)` that
adds its parser and sets `handler`. Errors a person can act on (a locked store, a refused
permission, a bad file) print one plain sentence and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import pandas as pd

from analytics.inbox import InboxKeyError
from analytics.roles import PermissionDenied
from analytics.store import StoreError, StoreLocked

COMMAND_GROUPS = ("demo", "users", "db", "report", "imports", "outreach", "dunning")


class UserError(Exception):
    """A problem with the user's input, explained in plain words."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ardesk",
        description="AR Desk: collections workspace. Import ledgers, run reports, generate demo data.",
    )
    parser.add_argument(
        "--db", metavar="PATH_OR_URL",
        help="the store: a DuckDB file path or a SQLAlchemy URL (default: ARDESK_DB, else config/settings.toml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        importlib.import_module(f"analytics.commands.{group}").register(sub)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (StoreLocked, StoreError, PermissionDenied, UserError, InboxKeyError) as exc:
        print(f"ardesk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ardesk: interrupted; nothing was committed by the unfinished step.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # `python -m analytics.cli` runs this file as __main__; the commands raise analytics.cli.UserError,
    # a different class from this copy's, so run the imported module's main to catch it.
    from analytics import cli

    raise SystemExit(cli.main())
