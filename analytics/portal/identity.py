"""Who a portal session is: one customer, never chosen by the browser (minimal version for PA's
branch; helper PB's version is kept at merge)."""

from __future__ import annotations

from dataclasses import dataclass

from analytics.access.roles import Actor


@dataclass(frozen=True)
class PortalCustomer:
    customer_id: str
    link_id: int | None = None


def portal_actor(who: PortalCustomer) -> Actor:
    """The actor a portal customer's writes are audited as: `portal:<customer id>`."""
    return Actor(f"portal:{who.customer_id}", "portal", who.customer_id)
