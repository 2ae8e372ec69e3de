"""Roles, the pages each may open, and the writes each may make. One definition, no UI imports.

Pages are gated twice: navigation registers only the allowed pages, and each page checks again
when it loads. Writes are checked here, in the engine, so a hidden button is never the only guard.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES: tuple[str, ...] = ("admin", "cfo", "collector", "analyst", "sales", "viewer", "department")

ROLE_LABELS = {
    "admin": "Administrator",
    "cfo": "CFO / controller",
    "collector": "Collector",
    "analyst": "Analyst",
    "sales": "Sales",
    "viewer": "Viewer",
    "department": "Other department",  # logistics, legal, billing, credit staff: their team is users.team
}
# A customer in the portal (`analytics.portal.identity.portal_actor`): not a staff role (not in ROLES,
# so it is no user's role and opens no page); its one permission is portal_self_service.
PORTAL_ROLE = "portal"
ROLE_LABELS[PORTAL_ROLE] = "Customer (portal)"

EVERYONE = frozenset(ROLES)
FINANCE = frozenset({"admin", "cfo", "analyst", "viewer"})


@dataclass(frozen=True)
class PageSpec:
    key: str  # url path
    path: str  # file under the project root
    title: str
    icon: str
    section: str
    roles: frozenset[str]


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "pages/overview.py", "Overview", ":material/home:", "Dashboards", EVERYONE),
    PageSpec("aging", "pages/aging.py", "Aging", ":material/stacked_bar_chart:", "Dashboards",
             frozenset({"admin", "cfo", "analyst", "collector", "viewer"})),
    PageSpec("dso", "pages/dso.py", "DSO & cash", ":material/timer:", "Dashboards", FINANCE),
    PageSpec("cash_forecast", "pages/cash_forecast.py", "Cash forecast", ":material/trending_up:", "Dashboards",
             FINANCE),
    PageSpec("bad_debt", "pages/bad_debt.py", "Bad debt", ":material/money_off:", "Dashboards", FINANCE),
    PageSpec("dunning", "pages/dunning.py", "Dunning effectiveness", ":material/campaign:", "Dashboards",
             frozenset({"admin", "cfo", "analyst"})),
    PageSpec("team", "pages/team.py", "Team", ":material/groups:", "Dashboards",
             frozenset({"admin", "cfo", "analyst"})),
    PageSpec("worklist", "pages/worklist.py", "Worklist", ":material/checklist:", "Collections",
             frozenset({"admin", "collector"})),
    PageSpec("customer", "pages/customer.py", "Customer 360", ":material/person_search:", "Collections",
             frozenset({"admin", "cfo", "analyst", "collector", "sales", "viewer", "department"})),
    PageSpec("bulk", "pages/bulk.py", "Bulk outreach", ":material/forward_to_inbox:", "Collections",
             frozenset({"admin", "collector"})),
    PageSpec("admin", "pages/admin.py", "Users and assignments", ":material/manage_accounts:", "Administration",
             frozenset({"admin"})),
    PageSpec("audit", "pages/audit.py", "Audit log", ":material/history:", "Administration",
             frozenset({"admin", "cfo"})),
    PageSpec("imports", "pages/imports.py", "Imports", ":material/upload_file:", "Administration",
             frozenset({"admin"})),
    PageSpec("requests", "pages/requests.py", "Requests", ":material/assignment:", "Collections", EVERYONE),
    PageSpec("my_week", "pages/my_week.py", "My week", ":material/date_range:", "Collections", EVERYONE),
    # The analyst's studio: what dunning does and says (cfo and collectors read; edit_* permissions write)
    PageSpec("dunning_policies", "pages/dunning_policies.py", "Dunning policies", ":material/rule:", "Studio",
             frozenset({"admin", "analyst", "cfo"})),
    PageSpec("segmentation", "pages/segmentation.py", "Segmentation", ":material/account_tree:", "Studio",
             frozenset({"analyst", "admin"})),
    PageSpec("templates", "pages/templates.py", "Templates", ":material/edit_note:", "Studio",
             frozenset({"admin", "analyst", "collector"})),
    PageSpec("experiments", "pages/experiments.py", "Experiments", ":material/science:", "Studio",
             frozenset({"analyst", "admin", "cfo"})),
    PageSpec("risk", "pages/risk.py", "Risk", ":material/trending_down:", "Dashboards",
             frozenset({"admin", "cfo", "analyst"})),
    PageSpec("account", "pages/account.py", "My account", ":material/key:", "Account", EVERYONE),
)

# Where a role lands after sign-in (a page key); any other role lands on its first page, the Overview.
# Collectors start from their worklist: "if the list is blank, you have done everything".
HOME_PAGES: dict[str, str] = {"collector": "worklist"}
HOME_PAGES["department"] = "requests"  # other departments start from their queue

# Writes: permission -> roles that may perform it.
PERMISSIONS: dict[str, frozenset[str]] = {
    "act_on_customers": frozenset({"collector", "admin"}),  # outreach, calls, promises, disputes, escalations
    "add_notes": frozenset({"collector", "sales", "admin"}),
    "assign_customers": frozenset({"admin"}),
    "edit_segments": frozenset({"analyst", "admin"}),
    "edit_dunning": frozenset({"analyst", "admin"}),
    "edit_templates": frozenset({"analyst", "admin"}),
    "run_experiments": frozenset({"analyst", "admin"}),
    "score_risk": frozenset({"analyst", "admin"}),  # store a month's risk scores and set customers' risk class  # start, stop, promote a champion/challenger test
    "import_data": frozenset({"admin"}),
    "manage_users": frozenset({"admin"}),
    "manage_contacts": frozenset({"collector", "admin"}),  # add, edit, deactivate, mark an email bounced
    "set_targets": frozenset({"admin"}),  # per-collector targets (a manager: admin here)
    "raise_requests": frozenset({"collector", "sales", "department", "admin"}),  # a request to a department
    "work_requests": frozenset({"sales", "department", "admin"}),  # claim, decide, close: own department's queue
    "portal_self_service": frozenset({PORTAL_ROLE}),  # a customer's own dispute, promise, remittance, message
    "see_forecasts": FINANCE,  # a read: the payment-date backtest and the cash forecast (who sees the KPIs)
    "run_backtests": frozenset({"analyst", "cfo", "admin"}),  # run and store the payment-date backtest
}


class PermissionDenied(PermissionError):
    """The actor's role does not allow this write."""


@dataclass(frozen=True)
class Actor:
    """Who is doing something: a signed-in user, or the command line."""

    username: str
    role: str
    name: str = ""


SYSTEM = Actor("system", "admin", "AR Desk")


def allowed_pages(role: str | None) -> list[PageSpec]:
    """The pages a role may open, in navigation order."""
    return [p for p in PAGES if role in p.roles]


def home_page(role: str | None) -> PageSpec | None:
    """The page a role lands on: its `HOME_PAGES` entry if it may open it, else its first page."""
    pages = allowed_pages(role)
    return next((p for p in pages if p.key == HOME_PAGES.get(role or "")), pages[0] if pages else None)


def may(actor: Actor, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return actor.role in PERMISSIONS[permission]


def require(actor: Actor, permission: str) -> None:
    """Raise `PermissionDenied` unless the actor's role grants `permission`."""
    if not may(actor, permission):
        label = ROLE_LABELS.get(actor.role, actor.role)
        raise PermissionDenied(
            f"{actor.username} ({label}) may not {permission.replace('_', ' ')}."
        )


# The customer property that names a role's own accounts: a collector's dashboards open on the
# customers they collect, a sales rep's on the customers they sell to (they may widen the filter).
MY_ACCOUNTS: dict[str, str] = {"collector": "collector", "sales": "sales_rep"}


def my_accounts(actor: Actor | None) -> dict[str, tuple[str, ...]]:
    """The dashboards' default filter for `actor`: {customer property: (their username,)}, or {}."""
    if actor is None or actor.role not in MY_ACCOUNTS:
        return {}
    return {MY_ACCOUNTS[actor.role]: (actor.username,)}
