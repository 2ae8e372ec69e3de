"""Contacts managed by collectors and admins (engine): add, edit, deactivate,
mark an email bounced; a bounced address is not used by outreach and raises the worklist's
"no accounts-payable contact" item until a working contact is added. Every write is audited. The
Customer 360's contact forms: test_pages_contacts.py."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.collections.contacts import (
    ContactError,
    add_contact,
    customer_contacts,
    deactivate_contact,
    edit_contact,
    is_valid_email,
    mark_bounced,
)
from analytics.collections.outreach.recipients import recipients
from analytics.collections.worklist import worklist
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people

T = date.today()
ANA = Actor("ana.collector", "collector", "Ana Collector")


def _books(store: Store) -> None:
    """C1 (an accounts-payable contact with an email only) owes 500, 10 days overdue."""
    setup_people(store)
    add_dunning_config(store)
    add_customer(store, "C1", name="Acme 1")
    add_invoice(store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 500)


def _no_ap_item(store: Store) -> bool:
    items = worklist(store, T)
    return bool(((items["customer_id"] == "C1") & (items["reason"] == "no_ap_contact")).any())


@pytest.mark.parametrize("text, ok", [
    ("ap@acme.example", True), ("a.b+c@x.co.uk", True), ("ap@acme", False), ("ap acme@x.example", False),
    ("@acme.example", False), ("ap@@acme.example", False), ("ap@acme.example ", False), ("", False)])
def test_the_email_rule(text: str, ok: bool) -> None:
    assert is_valid_email(text) is ok


def test_a_bounced_email_is_not_used_and_raises_the_contact_item_until_a_working_contact_is_added(store: Store) -> None:
    _books(store)
    [pat] = customer_contacts(store, "C1")["contact_id"].astype(int).tolist()
    assert recipients(store, ["C1"])["email"].tolist() == ["ap@c1.example"]
    assert not _no_ap_item(store)

    assert mark_bounced(store, ANA, pat) is True
    assert mark_bounced(store, ANA, pat) is False  # already marked: nothing written
    assert recipients(store, ["C1"])["email"].tolist() == [None]
    assert _no_ap_item(store)

    new = add_contact(store, ANA, "C1", name="Lee AP", email="lee@c1.example", role="accounts_payable")
    assert recipients(store, ["C1"])[["contact_id", "email"]].values.tolist() == [[new, "lee@c1.example"]]
    assert not _no_ap_item(store)

    assert deactivate_contact(store, ANA, new) is True
    assert _no_ap_item(store) and recipients(store, ["C1"])["email"].tolist() == [None]
    # a new address for the bounced contact clears its bounce
    assert edit_contact(store, SYSTEM, pat, email="pat@c1.example") is True
    assert recipients(store, ["C1"])["email"].tolist() == ["pat@c1.example"]
    assert not _no_ap_item(store)

    lines = store.read("SELECT actor, action, entity_id, old_values, new_values FROM audit_log "
                       "WHERE entity = 'contact' ORDER BY audit_id")
    assert lines["action"].tolist() == ["contact.bounced", "contact.add", "contact.edit", "contact.edit"]
    assert lines["entity_id"].tolist() == [str(pat), str(new), str(new), str(pat)]
    assert json.loads(lines["old_values"][2]) == {"active": True} and json.loads(lines["new_values"][2]) == {
        "active": False}
    last_old, last_new = json.loads(lines["old_values"][3]), json.loads(lines["new_values"][3])
    assert last_old["email"] == "ap@c1.example" and last_new == {"email": "pat@c1.example", "bounced_at": None}


def test_contact_writes_are_validated_and_limited_to_collectors_and_admins(store: Store) -> None:
    _books(store)
    audits = store.scalar("SELECT COUNT(*) FROM audit_log")
    for role in ("viewer", "sales", "analyst", "cfo"):
        with pytest.raises(PermissionDenied):
            add_contact(store, Actor("x", role), "C1", name="Nope", email="nope@c1.example")
    with pytest.raises(PermissionDenied):
        mark_bounced(store, Actor("x", "sales"), 1)
    assert store.scalar("SELECT COUNT(*) FROM audit_log") == audits
    for call, message in (
        (lambda: add_contact(store, ANA, "C1", name="Bad", email="bad@"), "not a valid email address"),
        (lambda: add_contact(store, ANA, "C1"), "name: required when there is no email address"),
        (lambda: add_contact(store, ANA, "C1", name="X", role="boss"), "role 'boss'"),
        (lambda: add_contact(store, ANA, "C1", name="X", preferred_channel="fax"), "preferred channel 'fax'"),
        (lambda: add_contact(store, ANA, "GHOST", name="X"), "no such customer"),
        (lambda: add_contact(store, ANA, "C1", email="AP@c1.example"), "already has that email address"),
        (lambda: edit_contact(store, ANA, 999, name="X"), "no such contact"),
        (lambda: edit_contact(store, ANA, 1, colour="red"), "colour: not a contact field"),
    ):
        with pytest.raises(ContactError, match=message):
            call()
    assert store.scalar("SELECT COUNT(*) FROM contacts") == 1
    assert store.scalar("SELECT COUNT(*) FROM audit_log") == audits
    assert edit_contact(store, Actor("ada", "admin"), 1, name="Pat C1") is False  # unchanged: no write, no audit
    assert store.scalar("SELECT COUNT(*) FROM audit_log") == audits
    phone_only = add_contact(store, Actor("ada", "admin"), "C1", name="Switchboard", phone="+1 555", role="other")
    assert customer_contacts(store, "C1").set_index("contact_id").loc[phone_only, "email"] is None
