"""`ardesk users list|add|reset-password|disable|enable|set-role|unlock|bootstrap`: manage who can sign in.

Every change is made as the `system` actor and audited like a change made on the admin page.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from analytics.access.roles import ROLES, SYSTEM
from analytics.access.users import UserError as BadUser
from analytics.access.users import (
    add_user,
    ensure_sign_ins,
    list_users,
    set_active,
    set_password,
    set_role,
    unlock_user,
)
from analytics.cli.output import UserError, emit
from analytics.migrations import connect


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="list, add, disable, re-role and reset users")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="list accounts and roles")
    ls.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ls.set_defaults(handler=_list)
    add = actions.add_parser("add", help="add a user; the password is read from standard input")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--name", required=True)
    add.add_argument("--email")
    add.add_argument("--team")
    add.set_defaults(handler=_add)
    reset = actions.add_parser("reset-password", help="set a new password, read from standard input")
    reset.add_argument("username")
    reset.set_defaults(handler=_reset)
    for name, helptext in (("disable", "stop an account from signing in; its open sessions end on their next page load"),
                           ("enable", "let a disabled account sign in again"),
                           ("unlock", "clear a lock-out after repeated failed sign-ins")):
        act = actions.add_parser(name, help=helptext)
        act.add_argument("username")
        act.set_defaults(handler=_change, change=name)
    role = actions.add_parser("set-role", help="give an account another role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(handler=_change, change="set-role")
    boot = actions.add_parser("bootstrap", help="on first start, give one account per role a password and print it once")
    boot.set_defaults(handler=_bootstrap)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:

            raise UserError("The two passwords differ; nothing was changed.")
        return first
    return sys.stdin.readline().rstrip("\n")


def _list(args: argparse.Namespace) -> int:
    emit(list_users(connect(args.db)), args.format)
    return 0


def _add(args: argparse.Namespace) -> int:
    store = connect(args.db)
    try:
        add_user(store, SYSTEM, args.username, args.name, args.role, email=args.email,
                 password=_read_password(), team=args.team)
    except BadUser as exc:
        raise UserError(str(exc)) from None
    print(f"Added {args.username} ({args.role}).")
    return 0


def _reset(args: argparse.Namespace) -> int:
    store = connect(args.db)
    try:
        set_password(store, SYSTEM, args.username, _read_password())
    except BadUser as exc:
        raise UserError(str(exc)) from None
    print(f"Password of {args.username} changed.")
    return 0


def _change(args: argparse.Namespace) -> int:
    store = connect(args.db)
    try:
        if args.change == "set-role":
            changed = set_role(store, SYSTEM, args.username, args.role)
            done = f"{args.username} is now {args.role}."
        elif args.change == "unlock":
            changed = unlock_user(store, SYSTEM, args.username)
            done = f"{args.username} is unlocked."
        else:
            changed = set_active(store, SYSTEM, args.username, args.change == "enable")
            done = f"{args.username} is {args.change}d."
    except BadUser as exc:
        raise UserError(str(exc)) from None
    print(done if changed else f"{done.rstrip('.')} already; nothing changed.")
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    store = connect(args.db)
    created = ensure_sign_ins(store)
    accounts = list_users(store)
    roles = dict(zip(accounts.username, accounts.role, strict=True))
    if not created:
        can = accounts[accounts.active & accounts.can_sign_in]
        print("Sign-in accounts already exist; nothing changed. Who can sign in (username, role):")
        for row in can.itertuples(index=False):
            print(f"  {row.username:<20} {row.role}")
        return 0
    print("Sign-in accounts created (username, role, password). These passwords are shown once; change them "
          "with `ardesk users reset-password USERNAME`:")
    for username, password in created.items():
        print(f"  {username:<20} {roles[username]:<10} {password}")
    return 0
