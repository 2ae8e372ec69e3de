"""`ardesk policies list|export|apply FILE [--dry-run]|simulate FILE --from D --to D|exhausted`:
dunning policies as code (TOML), so a team reviews them in git and sees what a change would do.

`apply` saves each policy of the file by name (`--as USER`, default the command line's `system`;
the role must have `edit_dunning`): new names are created, a changed policy whose latest version
sent anything becomes a new version, one that sent nothing is edited in place. `--dry-run` prints
what would happen and writes nothing. `simulate` runs each policy of the file day by day over the
ledger as it was (`collections.dunning_simulation`) and writes nothing. While the app owns the DuckDB
store, `apply` (a dry run too) is queued for it (`cli.app_inbox`).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd

from analytics.access.roles import SYSTEM
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.app_inbox import queue_for_app
from analytics.cli.output import UserError, emit
from analytics.collections.dunning_exhausted import exhausted_customers
from analytics.collections.dunning_policies import (
    DunningPolicyError,
    apply_policies,
    export_policies,
    list_policies,
    load_policy,
    policies_from_toml,
)
from analytics.collections.dunning_simulation import simulate_policy
from analytics.collections.worklist import default_as_of
from analytics.migrations import connect
from analytics.store.connection import StoreLocked

FORMATS = ("table", "csv", "json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policies", help="dunning policies as TOML: list, export, apply, simulate; the exhausted queue")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every policy at its latest version: state, stages, customers, runs")
    listing.add_argument("--format", choices=FORMATS, default="table")
    listing.set_defaults(handler=_list)
    export = actions.add_parser("export", help="print every policy that is not retired as TOML")
    export.set_defaults(handler=_export)
    apply = actions.add_parser("apply", help="save the policies of a TOML file (a sent version is never changed: "
                                             "a change makes a new version)")
    apply.add_argument("file", type=Path)
    apply.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    apply.add_argument("--as", dest="as_user", metavar="USER", default=SYSTEM.username,
                       help="the user saving (default: system); needs the edit_dunning permission")
    apply.add_argument("--reason", default="", help="why: kept with the version in the audit log")
    apply.set_defaults(handler=_apply)
    sim = actions.add_parser("simulate", help="what the file's policies would have sent, day by day (writes nothing)")
    sim.add_argument("file", type=Path)
    sim.add_argument("--from", dest="start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    sim.add_argument("--to", dest="end", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    sim.add_argument("--scope", choices=("assigned", "all"), default=None,
                     help="assigned: the policy's customers today; all: every customer (default: assigned "
                          "when the policy has customers, else all)")
    sim.add_argument("--format", choices=FORMATS, default="table")
    sim.set_defaults(handler=_simulate)
    exhausted = actions.add_parser("exhausted", help="customers whose policy has nothing left to send")
    exhausted.add_argument("--as-of", type=date.fromisoformat, default=None,
                           help="YYYY-MM-DD (default: the ledger's last day)")
    exhausted.add_argument("--format", choices=FORMATS, default="table")
    exhausted.set_defaults(handler=_exhausted)


def _read(path: Path) -> list:
    try:
        return policies_from_toml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"Cannot read {path}: {exc.strerror}.") from None
    except DunningPolicyError as exc:
        raise UserError(f"{path}: {exc}") from None


def _list(args: argparse.Namespace) -> int:
    emit(list_policies(connect(args.db)), args.format)
    return 0


def _export(args: argparse.Namespace) -> int:
    print(export_policies(connect(args.db)), end="")
    return 0


def _apply(args: argparse.Namespace) -> int:
    policies = _read(args.file)  # checked before anything is opened or queued
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        return queue_for_app(args, "policies_apply", {"file": args.file.name, "text": args.file.read_text(
            encoding="utf-8"), "reason": args.reason, "dry_run": args.dry_run}, args.as_user, exc)
    try:
        done = apply_policies(store, actor_for(store, args.as_user), policies, dry_run=args.dry_run,
                              reason=args.reason)
    except (DunningPolicyError, BadUser) as exc:
        raise UserError(str(exc)) from None
    print(("Would apply" if args.dry_run else "Applied") + f" {len(done)} polic{'y' if len(done) == 1 else 'ies'} "
          f"from {args.file}" + (" (dry run: nothing written)." if args.dry_run else "."))
    emit(done, "table")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    policies = _read(args.file)
    store = connect(args.db)
    frames = []
    for policy in policies:
        try:  # a policy of the store keeps its id: its customers and its runs before the period
            policy = replace(policy, config_id=load_policy(store, policy.name).config_id)
        except DunningPolicyError:
            pass
        try:
            result = simulate_policy(store, policy, args.start, args.end, args.scope)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        frames.append(result.assign(policy=policy.name)[["policy", *result.columns]])
    out = pd.concat(frames, ignore_index=True)
    if args.format == "table":
        print(f"Simulated {len(policies)} polic{'y' if len(policies) == 1 else 'ies'} from {args.start} to {args.end}: "
              f"{int(out['messages'].sum()) if len(out) else 0} message(s), nothing written.")
    emit(out, args.format)
    return 0


def _exhausted(args: argparse.Namespace) -> int:
    store = connect(args.db)
    emit(exhausted_customers(store, args.as_of or default_as_of(store)), args.format)
    return 0
