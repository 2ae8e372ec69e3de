"""`ardesk segments show|export|apply|reassign|simulate`: the segmentation rules as code, reviewed in git.

`export` prints the active rules as TOML (`ardesk segments export > rules.toml`); `apply FILE`
prints the preview (customers and open AR each rule takes, customers changing policy) and, unless
`--dry-run`, saves the file as a new version and re-assigns customers. Writes run as `system` (an
administrator) or `--as USER` (an active account whose role may edit segments), audited. Rules equal
to the active version are not saved again ("unchanged"). While the app owns the DuckDB store,
`apply` (a dry run too) and `reassign` are queued for it (`cli.app_inbox`). `simulate` runs the
whole rule set day by day over the ledger as it was (`dunning_simulation.simulate_rule_set`).
"""

from __future__ import annotations

import argparse
import tomllib
from datetime import date
from pathlib import Path

import pandas as pd

from analytics.access.roles import SYSTEM
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.app_inbox import queue_for_app
from analytics.cli.output import UserError, emit
from analytics.collections.dunning_simulation import rule_set_totals, simulate_rule_set
from analytics.collections.segment_rules_file import rules_from_toml, rules_to_toml
from analytics.collections.segmentation import (
    SegmentRuleError,
    current_rule_set,
    policies,
    preview_rules,
    reassign_all,
)
from analytics.collections.studio_actions import apply_rules_file
from analytics.collections.worklist import default_as_of
from analytics.migrations import connect
from analytics.store.connection import StoreLocked


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segments", help="segmentation rules: which dunning policy each customer follows")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the active rules with the customers and open AR each takes")
    show.add_argument("--as-of", type=date.fromisoformat, default=None,
                      help="YYYY-MM-DD (default: today, or the ledger's last date if earlier)")
    show.add_argument("--format", choices=("table", "csv", "json"), default="table")
    show.set_defaults(handler=_show)
    export = actions.add_parser("export", help="print the active rules as TOML (ardesk segments export > rules.toml)")
    export.set_defaults(handler=_export)
    apply = actions.add_parser(
        "apply", help="preview a rules file and save it as the new version (re-assigns customers)",
        description="Print what the rules in FILE would do (customers and open AR per rule, customers changing "
                    "policy), then save them as a new version and re-assign customers in one transaction. "
                    "--dry-run only prints the preview.")
    apply.add_argument("file", type=Path, help="a TOML file as written by `ardesk segments export`")
    apply.add_argument("--dry-run", action="store_true", help="print the preview; save nothing")
    apply.add_argument("--reason", help="why the rules change (default: 'applied from FILE')")
    apply.add_argument("--as", dest="as_user", metavar="USER", help="who applies them (default: system)")
    apply.add_argument("--as-of", type=date.fromisoformat, default=None,
                       help="the date behaviour is measured on (default: today, or the ledger's last date)")
    apply.add_argument("--format", choices=("table", "csv", "json"), default="table")
    apply.set_defaults(handler=_apply)
    again = actions.add_parser("reassign", help="re-apply the active rules to every customer (behaviour moves "
                                                "with the ledger: run it after imports, e.g. nightly)")
    again.add_argument("--as", dest="as_user", metavar="USER", help="who runs it (default: system)")
    again.add_argument("--as-of", type=date.fromisoformat, default=None)
    again.set_defaults(handler=_reassign)
    sim = actions.add_parser("simulate", help="what the rules (the active ones, or FILE's) would have sent, day by "
                                              "day, every customer on its rule's policy (writes nothing)")
    sim.add_argument("file", type=Path, nargs="?", help="a rules TOML file (default: the active rules)")
    sim.add_argument("--from", dest="start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    sim.add_argument("--to", dest="end", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    sim.add_argument("--as-of", type=date.fromisoformat, default=None,
                     help="the date the rules' behaviour is measured on (default: --to)")
    sim.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sim.set_defaults(handler=_simulate)


def _show(args: argparse.Namespace) -> int:
    store = connect(args.db)
    current = current_rule_set(store)
    if current is None:
        print("No segmentation rules are saved yet.")
        return 0
    print(f"Version {current['version']}, saved by {current['created_by']} at {current['created_at']:%Y-%m-%d %H:%M}: "
          f"{current['reason']}")
    emit(preview_rules(store, current["rules"], args.as_of or default_as_of(store)), args.format)
    return 0


def _export(args: argparse.Namespace) -> int:
    store = connect(args.db)
    current = current_rule_set(store)
    if current is None:
        raise UserError("No segmentation rules are saved yet: there is nothing to export.")
    header = (f"version {current['version']}, saved by {current['created_by']} "
              f"at {current['created_at']:%Y-%m-%d %H:%M}\nreason: {current['reason']}")
    print(rules_to_toml(current["rules"], policies(store), header), end="")
    return 0


def _apply(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
        tomllib.loads(text)  # a broken file is said now, never queued
    except OSError as exc:
        raise UserError(f"Cannot read {args.file}: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{args.file}: The rules file is not valid TOML: {exc}.") from None
    reason = args.reason or f"applied from {args.file.name}"
    user = args.as_user or SYSTEM.username
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        return queue_for_app(args, "segments_apply", {
            "file": args.file.name, "text": text, "reason": reason, "dry_run": args.dry_run,
            "as_of": args.as_of.isoformat() if args.as_of else None}, user, exc)
    try:
        if args.dry_run:  # the preview needs no permission
            rules = rules_from_toml(text, policies(store))
            as_of = args.as_of or default_as_of(store)
            shown = preview_rules(store, rules, as_of)
            emit(shown, args.format)
            print(f"Dry run as of {as_of}: {int(shown['changing'].sum())} customer(s) would change policy; "
                  "nothing saved.")
            return 0
        done = apply_rules_file(store, actor_for(store, user), text, reason=reason,
                                as_of=args.as_of or default_as_of(store))
    except SegmentRuleError as exc:
        raise UserError(f"{args.file}: {exc}") from None
    except BadUser as exc:
        raise UserError(str(exc)) from None
    emit(pd.DataFrame(done["preview"]), args.format)
    if done["action"] == "unchanged":
        print(f"Unchanged: the rules equal the active version {done['version']}; nothing saved.")
    else:
        print(f"Saved as version {done['version']}: {done['customers_changed']} customer(s) changed policy.")
    return 0


def _reassign(args: argparse.Namespace) -> int:
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        return queue_for_app(args, "segments_reassign", {"as_of": args.as_of.isoformat() if args.as_of else None},
                             args.as_user or SYSTEM.username, exc)
    try:
        actor = actor_for(store, args.as_user or SYSTEM.username)
        changed = reassign_all(store, actor, args.as_of)
    except (BadUser, SegmentRuleError) as exc:
        raise UserError(str(exc)) from None
    print(f"{changed} customer(s) changed policy.")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    store = connect(args.db)
    try:
        if args.file is not None:
            rules = rules_from_toml(args.file.read_text(encoding="utf-8"), policies(store))
        elif (current := current_rule_set(store)) is not None:
            rules = current["rules"]
        else:
            raise UserError("No segmentation rules are saved yet: name a rules file to simulate.")
        days = simulate_rule_set(store, rules, args.start, args.end, args.as_of)
    except OSError as exc:
        raise UserError(f"Cannot read {args.file}: {exc.strerror}.") from None
    except (SegmentRuleError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if args.format == "table":
        print(f"Simulated the rule set from {args.start} to {args.end}: "
              f"{int(days['messages'].sum()) if len(days) else 0} message(s), nothing written.")
        emit(rule_set_totals(days), "table")
        print()
    emit(days, args.format)
    return 0
