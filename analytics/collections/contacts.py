"""A customer's contacts, managed by collectors and admins: add, edit, deactivate, mark an email bounced.

Rules (the same for the `contacts` import, `analytics.ingest.team_datasets`):
- An email address is valid when it matches `EMAIL_PATTERN` in full: one `@`, no spaces, something
  before the `@`, and a domain with at least one dot (`ap@acme.example`); nothing is sent to check it.
- `role` is one of `CONTACT_ROLES` (blank: `other`); `preferred_channel` one of `CONTACT_CHANNELS`
  (blank: `email`).
- Natural key: (customer, email, compared case-insensitively) for a contact with an email, else
  (customer, name): a second contact with the same key is refused.
- A **working** contact is active and has an email address that has not bounced, or a phone
  number. Outreach writes only to an active contact's unbounced email (`outreach.recipients`); the
  worklist's `no_ap_contact` item appears for a customer with open invoices and no working
  accounts-payable contact (`collections.worklist`).
- A bounce (`bounced_at`) stays until the contact's email address is changed to another one.

Each write checks the role first (`require(actor, "manage_contacts")`: collectors and admins),
validates, runs in one `store.write()` transaction and records one audit line with the values
before and after.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.store.connection import Store
from analytics.store.schema import contacts, customers

CONTACT_ROLES = ("accounts_payable", "finance_manager", "purchasing", "owner", "other")
CONTACT_CHANNELS = ("email", "phone", "letter", "sms")
# One `@`, no whitespace, a non-empty local part, a domain with a dot: a typo catcher, not RFC 5322.
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
_FIELDS = ("name", "email", "phone", "role", "preferred_channel", "is_primary", "active")
_LIMITS = {"name": 200, "email": 200, "phone": 40}


class ContactError(ValueError):
    """A contact that cannot be saved, naming the field, the value and why."""


def is_valid_email(value: str) -> bool:
    """True when `value` matches `EMAIL_PATTERN` in full."""
    return re.fullmatch(EMAIL_PATTERN, value) is not None


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in ("name", "email", "phone"):
        value = (fields.get(f) or "").strip() or None
        if value is not None and len(value) > _LIMITS[f]:
            raise ContactError(f"{f}: at most {_LIMITS[f]} characters (got {len(value)}).")
        out[f] = value
    if out["email"] is not None and not is_valid_email(out["email"]):
        raise ContactError(f"email {out['email']!r}: not a valid email address (name@domain.example).")
    if out["name"] is None:
        if out["email"] is None:
            raise ContactError("name: required when there is no email address.")
        out["name"] = out["email"]
    out["role"] = (fields.get("role") or "other").strip()
    if out["role"] not in CONTACT_ROLES:
        raise ContactError(f"role {out['role']!r}: choose one of {', '.join(CONTACT_ROLES)}.")
    out["preferred_channel"] = (fields.get("preferred_channel") or "email").strip()
    if out["preferred_channel"] not in CONTACT_CHANNELS:
        raise ContactError(f"preferred channel {out['preferred_channel']!r}: choose one of "
                           f"{', '.join(CONTACT_CHANNELS)}.")
    out["is_primary"] = bool(fields.get("is_primary", False))
    out["active"] = bool(fields.get("active", True))
    return out


def _same_key(conn: sa.Connection, customer_id: str, fields: dict[str, Any], contact_id: int | None) -> int | None:
    """The id of another contact of the customer with the same natural key, if any."""
    c = contacts.c
    query = sa.select(c.contact_id).where(c.customer_id == customer_id)
    if fields["email"] is not None:
        query = query.where(sa.func.lower(c.email) == fields["email"].lower())
    else:
        query = query.where(c.email.is_(None), c.name == fields["name"])
    if contact_id is not None:
        query = query.where(c.contact_id != contact_id)
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def _contact(conn: sa.Connection, contact_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(contacts).where(contacts.c.contact_id == int(contact_id))).mappings().first()
    if row is None:
        raise ContactError(f"contact {contact_id}: there is no such contact.")
    return dict(row)


def add_contact(store: Store, actor: Actor, customer_id: str, *, name: str = "", email: str = "", phone: str = "",
                role: str = "accounts_payable", preferred_channel: str = "email", is_primary: bool = False) -> int:
    """Add an active contact to the customer; returns its id. Refused when the key is taken."""
    require(actor, "manage_contacts")
    fields = _clean({"name": name, "email": email, "phone": phone, "role": role,
                     "preferred_channel": preferred_channel, "is_primary": is_primary, "active": True})
    with store.write() as conn:
        if conn.execute(sa.select(customers.c.customer_id).where(customers.c.customer_id == customer_id)).scalar() is None:
            raise ContactError(f"customer_id {customer_id!r}: there is no such customer.")
        if (other := _same_key(conn, customer_id, fields, None)) is not None:
            raise ContactError(f"contact {other} of {customer_id} already has that "
                               f"{'email address' if fields['email'] else 'name'}; edit it instead.")
        row = {"customer_id": customer_id, **fields, "source": f"added by {actor.username}"[:100],
               "updated_at": datetime.now()}
        contact_id = int(conn.execute(contacts.insert().values(**row).returning(contacts.c.contact_id)).scalar())
        audit.record(conn, actor, "contact.add", "contact", contact_id, new=row)
    return contact_id


def edit_contact(store: Store, actor: Actor, contact_id: int, **changes: Any) -> bool:
    """Change some of name, email, phone, role, preferred_channel, is_primary, active.

    Returns False (and writes nothing) when nothing changes. A new email address clears a bounce.
    """
    require(actor, "manage_contacts")
    unknown = sorted(set(changes) - set(_FIELDS))
    if unknown:
        raise ContactError(f"{', '.join(unknown)}: not a contact field ({', '.join(_FIELDS)}).")
    with store.write() as conn:
        before = _contact(conn, contact_id)
        fields = _clean({**{f: before[f] for f in _FIELDS}, **changes})
        if (other := _same_key(conn, before["customer_id"], fields, int(contact_id))) is not None:
            raise ContactError(f"contact {other} of {before['customer_id']} already has that "
                               f"{'email address' if fields['email'] else 'name'}.")
        diff = {f: v for f, v in fields.items() if v != before[f]}
        new_email = "email" in diff and (fields["email"] or "").lower() != (before["email"] or "").lower()
        if new_email and before["bounced_at"] is not None:
            diff["bounced_at"] = None
        if not diff:
            return False
        conn.execute(contacts.update().where(contacts.c.contact_id == int(contact_id))
                     .values(**diff, updated_at=datetime.now()))
        audit.record(conn, actor, "contact.edit", "contact", contact_id,
                     old={f: before[f] for f in diff}, new=diff, detail=before["customer_id"])
    return True


def deactivate_contact(store: Store, actor: Actor, contact_id: int) -> bool:
    """Make the contact inactive (kept for the record, never written to); False if it already was."""
    return edit_contact(store, actor, contact_id, active=False)


def mark_bounced(store: Store, actor: Actor, contact_id: int) -> bool:
    """Record that mail to the contact's email bounced: outreach stops using the address.

    False (nothing written) when it is already marked; refused when the contact has no email.
    """
    require(actor, "manage_contacts")
    with store.write() as conn:
        before = _contact(conn, contact_id)
        if before["email"] is None:
            raise ContactError(f"contact {contact_id}: has no email address to mark as bounced.")
        if before["bounced_at"] is not None:
            return False
        now = datetime.now()
        conn.execute(contacts.update().where(contacts.c.contact_id == int(contact_id))
                     .values(bounced_at=now, updated_at=now))
        audit.record(conn, actor, "contact.bounced", "contact", contact_id, old={"bounced_at": None},
                     new={"bounced_at": now, "email": before["email"]}, detail=before["customer_id"])
    return True


def customer_contacts(store: Store, customer_id: str) -> pd.DataFrame:
    """The customer's contacts, active and primary first, with whether the email bounced (blank text as None)."""
    frame = store.read(
        "SELECT contact_id, name, role, email, phone, preferred_channel, is_primary, active, "
        "bounced_at IS NOT NULL AS bounced, source FROM contacts "
        "WHERE customer_id = :c ORDER BY active DESC, is_primary DESC, name, contact_id", {"c": customer_id})
    for col in ("email", "phone", "role", "preferred_channel", "source"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame
