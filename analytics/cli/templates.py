"""`ardesk templates list|export NAME|apply FILE [--dry-run] [--why TEXT] --as USER`: message templates as
TOML files (`collections.outreach.template_file`), so a team reviews their wording in git.

`apply` checks the file (sandboxed Jinja, unknown variables, syntax errors with their part and line,
said in words) and saves it as a new version (who, when, why), audited; the user needs
`edit_templates` (analysts, admins; default user: the command line's `system`). A file equal to the
latest version saves nothing ("unchanged"). `--dry-run` prints the check and a preview for a customer
(`--customer ID`, default: the first with open items). While the app owns the DuckDB store, apply
(and a dry run) is queued for it (`cli.app_inbox`).
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from analytics.access.roles import SYSTEM
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.app_inbox import queue_for_app
from analytics.cli.output import UserError, emit
from analytics.collections.outreach.config import OutreachError
from analytics.collections.outreach.message_templates import TemplateProblems, check_template
from analytics.collections.outreach.template_file import (
    apply_template_file,
    export_template,
    list_message_templates,
    template_from_toml,
)
from analytics.migrations import connect
from analytics.store.connection import StoreLocked


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("templates", help="message templates as TOML: list, export, apply (checked, versioned)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every template with its current version, who saved it, when and why")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.set_defaults(handler=_list)
    export = actions.add_parser("export", help="print a template's latest version as TOML "
                                               "(ardesk templates export NAME > NAME.toml)")
    export.add_argument("name", metavar="NAME")
    export.set_defaults(handler=_export)
    apply = actions.add_parser("apply", help="check a template file and save it as a new version",
                               description=__doc__.split("\n\n", 1)[1],
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    apply.add_argument("file", type=Path, help="a TOML file as written by `ardesk templates export`")
    apply.add_argument("--dry-run", action="store_true", help="check and preview it; save nothing")
    apply.add_argument("--why", default="", metavar="TEXT", help="why it changes: kept with the version in the audit log")
    apply.add_argument("--as", dest="as_user", metavar="USER", default=SYSTEM.username,
                       help="the user saving (default: system); needs the edit_templates permission")
    apply.add_argument("--customer", metavar="ID", help="the customer of the dry run's preview "
                                                        "(default: the first with open items)")
    apply.add_argument("--as-of", type=date.fromisoformat, default=None,
                       help="the preview's date, YYYY-MM-DD (default: the ledger's last day)")
    apply.set_defaults(handler=_apply)


def _list(args: argparse.Namespace) -> int:
    emit(list_message_templates(connect(args.db)), args.format)
    return 0


def _export(args: argparse.Namespace) -> int:
    try:
        print(export_template(connect(args.db), args.name), end="")
    except OutreachError as exc:
        raise UserError(str(exc)) from None
    return 0


def _refused(path: Path, exc: TemplateProblems) -> UserError:
    return UserError(f"{path}: the template cannot be saved:\n  - " + "\n  - ".join(exc.problems))


def _apply(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"Cannot read {args.file}: {exc.strerror}.") from None
    try:  # checked before anything is opened or queued: a bad file never waits in the app's inbox
        found = template_from_toml(text)
        if problems := check_template(found.subject, found.body_text, found.body_html):
            raise TemplateProblems(problems)
    except TemplateProblems as exc:
        raise _refused(args.file, exc) from None
    arguments = {"file": args.file.name, "text": text, "why": args.why, "dry_run": args.dry_run,
                 "customer": args.customer, "as_of": args.as_of.isoformat() if args.as_of else None}
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        return queue_for_app(args, "templates_apply", arguments, args.as_user, exc)
    try:
        done = apply_template_file(store, actor_for(store, args.as_user), text, why=args.why, dry_run=args.dry_run,
                                   customer_id=args.customer, as_of=args.as_of)
    except TemplateProblems as exc:
        raise _refused(args.file, exc) from None
    except (OutreachError, BadUser) as exc:
        raise UserError(str(exc)) from None
    print("No problems found: every variable exists and it renders for a sample customer.")
    if done["action"] == "unchanged":
        print(f"{done['name']}: unchanged (equal to version {done['version']}); nothing saved.")
    elif args.dry_run:
        print(f"{done['name']}: would be saved as version {done['version']} (dry run: nothing written).")
    else:
        print(f"{done['name']}: saved as version {done['version']} ({done['action']}).")
    if shown := done.get("preview"):
        print(f"\nPreview for {shown['customer_id']} as of {shown['as_of']}"
              + (f" (this customer would not be sent it: {shown['problem']})" if shown["problem"] else "") + ":")
        print(f"Subject: {shown['subject']}\n\n{shown['body']}", end="" if shown["body"].endswith("\n") else "\n")
    elif args.dry_run:
        print("No customer has open items to preview it with.")
    return 0
