"""Who is in the portal: one customer, named only by its portal session (`links.portal_customer`).

A `PortalCustomer` is never built from a URL parameter or a form field: the pages get it from the
session, and every portal data function (`portal.account`) takes it instead of a customer id. Its
writes are made as `portal_actor(who)`: username `portal:<customer id>`, role 'portal' (permission
portal_self_service only), so the audit log names the customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from analytics.access.roles import PORTAL_ROLE, Actor
from analytics.store.connection import Store


@dataclass(frozen=True)
class PortalCustomer:
    customer_id: str
    link_id: int | None = None


def portal_actor(who: PortalCustomer, store: Store | None = None) -> Actor:
    """The actor a customer's portal writes are made and audited as; its name is the customer's
    name when a store is given (else the customer id)."""
    name = who.customer_id
    if store is not None:
        with store.engine.connect() as conn:
            found = conn.execute(sa.text("SELECT name FROM customers WHERE customer_id = :c"),
                                 {"c": who.customer_id}).scalar()
        name = found or name
    return Actor(f"portal:{who.customer_id}", PORTAL_ROLE, name)
