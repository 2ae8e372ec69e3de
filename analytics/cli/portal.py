"""`ardesk portal link CUSTOMER [--days N] [--as USER]` and `ardesk portal revoke CUSTOMER [--as USER]`.

`link` prints a new customer portal link (the full URL: `[app] base_url`, default
http://localhost:8501, then /portal/t/<token>), valid N days (default `[portal] link_days`, 25;
1 to 1000). It is shown once: the store keeps only the token's SHA-256 hash. `revoke` revokes every
live link of the customer and ends the portal sessions they opened. Both need a role that may act
on customers (collector, admin; default --as system) and are audited, never with the token.

Both need the store. When the running app owns the DuckDB store they are NOT queued into the app's
inbox: a queued link could not be printed at once, and the job file would hold a token in clear on
disk. Use the app's Customer 360 (Outreach tab: "Create a portal link", "Revoke all portal links")
while it runs, or run the command when the app is stopped (on PostgreSQL it always runs at once).
"""

from __future__ import annotations

import argparse

from analytics.access.portal_tokens import PortalLinkError, link_url
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.output import UserError
from analytics.migrations import connect
from analytics.portal.links import mint_link, revoke_links
from analytics.store.connection import StoreLocked


def _days(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("portal", help="make or revoke a customer's portal link",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    link = actions.add_parser("link", help="print a new portal link for the customer (shown once)")
    revoke = actions.add_parser("revoke", help="revoke every portal link of the customer")
    for a in (link, revoke):
        a.add_argument("customer", metavar="CUSTOMER", help="the customer id")
        a.add_argument("--as", dest="as_user", metavar="USER", default="system",
                       help="the user this is done by (collector or admin; default: system, the command line)")
        a.set_defaults(handler=_portal)
    link.add_argument("--days", type=_days, default=None, help="how long the link is valid, 1 to 1000 days "
                                                               "(default: [portal] link_days, 25)")


def _portal(args: argparse.Namespace) -> int:
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        raise UserError(
            f"The AR Desk app is running and owns the store ({exc.path}). A portal link is not queued for it "
            "(it must be printed at once, and a queued job would hold the link in clear on disk): use the "
            "customer's Customer 360 page, Outreach tab, while the app runs, or stop the app and run this again."
        ) from None
    try:
        actor = actor_for(store, args.as_user)
        if args.action == "link":
            print(link_url(mint_link(store, actor, args.customer, args.days)))
        else:
            print(f"{revoke_links(store, actor, args.customer)} portal link(s) of {args.customer} revoked.")
    except (BadUser, PortalLinkError) as exc:
        raise UserError(str(exc)) from None
    finally:
        store.close()
    return 0
