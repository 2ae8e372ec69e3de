"""Contacts on the Customer 360 (AppTest): a collector adds, edits, bounces and deactivates them, each
write audited; sales gets no contact forms. The contact rules: test_contacts.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import button, new_store, signed_in_app, stored_rows
from tests.test_contacts import _books


@pytest.fixture
def contacts_file(tmp_path: Path, app_env) -> Path:
    path = tmp_path / "contacts.duckdb"
    store = new_store(path)
    _books(store)
    store.close()
    app_env(path)
    return path


def test_customer_page_adds_edits_bounces_and_deactivates_contacts(contacts_file: Path) -> None:
    at = signed_in_app("collector", "ana.collector").run()
    at.query_params["customer"] = "C1"
    at.switch_page("pages/customer.py").run()
    assert not at.exception
    at.text_input(key="contact_add_name").input("Lee AP")
    at.text_input(key="contact_add_email").input("lee@c1.example")
    at.selectbox(key="contact_add_role").select("accounts_payable")
    button(at, "Add contact").click().run()
    assert not at.exception and at.success[0].value == "Contact added."
    assert stored_rows(contacts_file, "SELECT name, email, role, active FROM contacts ORDER BY contact_id") == [
        {"name": "Pat C1", "email": "ap@c1.example", "role": "accounts_payable", "active": True},
        {"name": "Lee AP", "email": "lee@c1.example", "role": "accounts_payable", "active": True}]

    at.text_input(key="contact_add_name").input("Broken")
    at.text_input(key="contact_add_email").input("broken@")
    button(at, "Add contact").click().run()
    assert "not a valid email address" in at.error[0].value
    assert len(stored_rows(contacts_file, "SELECT contact_id FROM contacts")) == 2

    at.selectbox(key="contact_pick").select(1)
    at.run()
    button(at, "Mark email bounced").click().run()
    assert not at.exception and at.success[0].value == "Email marked as bounced: outreach no longer uses it."
    at.selectbox(key="contact_pick").select(2)
    at.run()
    at.text_input(key="contact_phone_2").input("+1 555 0100")
    button(at, "Save changes").click().run()
    assert at.success[0].value == "Contact saved."
    at.selectbox(key="contact_pick").select(2)
    at.run()
    button(at, "Deactivate").click().run()
    assert at.success[0].value == "Contact deactivated."
    assert stored_rows(contacts_file, "SELECT contact_id, phone, active, bounced_at IS NOT NULL AS bounced "
                                "FROM contacts ORDER BY contact_id") == [
        {"contact_id": 1, "phone": None, "active": True, "bounced": True},
        {"contact_id": 2, "phone": "+1 555 0100", "active": False, "bounced": False}]
    assert [r["action"] for r in stored_rows(contacts_file, "SELECT action FROM audit_log WHERE entity = 'contact' "
                                                      "ORDER BY audit_id")] == [
        "contact.add", "contact.bounced", "contact.edit", "contact.edit"]
    table = at.tabs[3].dataframe[0].value
    assert table[["contact_id", "bounced", "active"]].values.tolist() == [[1, True, True], [2, False, False]]


def test_customer_page_offers_no_contact_forms_to_sales(contacts_file: Path) -> None:
    at = signed_in_app("sales", "sam.sales").run()
    at.query_params["customer"] = "C1"
    at.switch_page("pages/customer.py").run()
    assert not at.exception
    assert not [b for b in at.button if b.label in ("Add contact", "Save changes", "Mark email bounced")]
