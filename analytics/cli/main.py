"""`ardesk`: the command line over the engine, so everything the app shows can be scripted.

Each command group lives in `analytics/cli/<group>.py` with a `register(subparsers)` that adds its
parser and sets `handler`. Errors a person can act on (a locked store, a refused permission, a bad
file) print one plain sentence and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from analytics.access.roles import PermissionDenied
from analytics.cli import collectors, db, demo, dunning, followup, imports, outreach, report, targets, users
from analytics.cli import experiments as experiment_commands
from analytics.cli import forecast as forecast_commands
from analytics.cli import policies as policy_commands
from analytics.cli import portal as portal_commands
from analytics.cli import requests as request_commands
from analytics.cli import risk as risk_commands
from analytics.cli import segments as segment_commands
from analytics.cli import templates as template_commands
from analytics.cli.output import UserError
from analytics.cli.store_argument import store_argument
from analytics.ingest.inbox import InboxKeyError
from analytics.store.connection import StoreError, StoreLocked

COMMAND_GROUPS = (demo, users, db, report, imports, outreach, dunning, followup, collectors, targets, request_commands,
                  segment_commands, policy_commands, template_commands, experiment_commands,
                  portal_commands, risk_commands, forecast_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ardesk",
        description="AR Desk: collections workspace. Import ledgers, run reports, generate demo data.",
    )
    parser.add_argument(
        "--db", metavar="PATH_OR_URL", type=store_argument,
        help="the store: a DuckDB file path (relative to the current directory) or a SQLAlchemy URL (default: "
             "ARDESK_DB, else config/settings.toml; their relative paths are to the project's root)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


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
