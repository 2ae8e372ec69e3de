"""Page tests (AppTest): a portal session gets only the portal's navigation and page, which shows its
own invoices and sends its forms through `analytics.portal.account`; the Customer 360's portal link.

AppTest cannot send cookies, so the portal session is given by replacing `links.portal_customer`
(the cookie's own path is tested in test_portal_links.py and the portal browser test). Until helper
PB's `analytics.portal.account` is merged, `tests.portal_fake_account` stands in for it."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.migrations import connect
from analytics.portal import links
from analytics.portal.identity import PortalCustomer
from tests import portal_fake_account
from tests.collector_data import add_customer, add_invoice, setup_people
from tests.conftest import ROOT, button, displayed, signed_in_app

T = date.today()


@pytest.fixture
def portal_file(tmp_path: Path, app_env, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: ANN001
    """C1 with INV-1 (300, 10 days late) and INV-2 (50, not due); C2 with INV-9 (700)."""
    path = tmp_path / "portal.duckdb"
    store = connect(str(path))
    setup_people(store)
    add_customer(store, "C1", name="Acme 1")
    add_customer(store, "C2", name="Acme 2")
    add_invoice(store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 300)
    add_invoice(store, "C1", "INV-2", T, T + timedelta(days=30), 50)
    add_invoice(store, "C2", "INV-9", T - timedelta(days=40), T - timedelta(days=10), 700)
    store.close()
    if portal_fake_account.install_if_missing():
        portal_fake_account.CALLS.clear()
        portal_fake_account.THREAD.clear()
    app_env(path)
    return path


def _as_portal(monkeypatch: pytest.MonkeyPatch, customer_id: str | None) -> AppTest:
    who = None if customer_id is None else PortalCustomer(customer_id, 1)
    monkeypatch.setattr(links, "portal_customer", lambda store, token, **_: who)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def test_a_portal_session_sees_only_its_own_invoices_and_no_staff_page(
        portal_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _as_portal(monkeypatch, "C1").run()
    assert not at.exception
    registered = {info["url_pathname"]: info["script_path"] for info in at._registered_pages.values()}
    assert sorted({p for p in registered.values() if p.endswith(".py")}) == [str(ROOT / "pages/portal.py")]
    assert "customer" in registered and "worklist" in registered  # staff URLs answer "not available"
    assert "actor" not in at.session_state and not [t for t in at.text_input if t.label == "Password"]
    assert [t.value for t in at.title] == ["Your account"]
    shown = at.dataframe[0].value
    assert sorted(shown["Invoice"]) == ["INV-1", "INV-2"]  # never C2's INV-9
    assert [d.label for d in at.get("download_button")] == [
        "Statement of open items (PDF)", "Statement of open items (Excel)", "Invoice list (CSV)"]
    assert at.selectbox(key="dispute_invoice").options == ["INV-1", "INV-2"]


def test_the_forms_go_through_the_account_functions_and_say_the_refusal(
        portal_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics.portal import account

    calls: list[tuple] = []
    monkeypatch.setattr(account, "portal_dispute", lambda store, who, *a: calls.append((who, *a)) or 41)

    def refuse(store, who, *a):  # noqa: ANN001, ANN202
        raise account.PortalError("no such invoice")

    monkeypatch.setattr(account, "portal_promise", refuse)
    at = _as_portal(monkeypatch, "C1").run()
    button(at, "Send the dispute").click().run()
    assert displayed(at.error[0].value) == "Fill in every field (invoice, reason, date) before sending."
    at.selectbox(key="dispute_invoice").select("INV-1")
    at.selectbox(key="dispute_reason").select_index(0)
    at.number_input(key="dispute_amount").set_value(120.5)
    at.text_area(key="dispute_comment").input("Only *half* arrived")
    button(at, "Send the dispute").click().run()
    assert calls == [(PortalCustomer("C1", 1), "INV-1", account.DISPUTE_REASONS[0], 120.5, "Only *half* arrived")]
    assert displayed(at.success[0].value) == "Your dispute was recorded (reference 41). Thank you."
    at.multiselect(key="promise_invoices").select("INV-1")
    at.number_input(key="promise_amount").set_value(300.0)
    at.date_input(key="promise_date").set_value(T + timedelta(days=7))
    button(at, "Send the promise").click().run()
    assert displayed(at.error[0].value) == "no such invoice"
    at.text_area(key="portal_message_body").input("When is **INV-2** due?")
    button(at, "Send the message").click().run()
    assert [t.value for t in at.text] == ["When is **INV-2** due?"]  # shown as text


def test_an_ended_portal_session_says_so_without_the_staff_sign_in(portal_file: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ended = _as_portal(monkeypatch, None)
    ended.session_state["_entry_path"] = "portal"
    ended.run()
    assert not ended.exception and [t.value for t in ended.title] == ["Customer portal"]
    assert "session has ended" in ended.info[0].value and not ended.text_input  # no staff sign-in form here


def test_the_customer_360_makes_a_portal_link_once_and_revokes_them(portal_file: Path) -> None:
    at = signed_in_app("collector", "ana.collector").run()
    at.query_params["customer"] = "C1"
    at.switch_page("pages/customer.py").run()
    button(at, "Create a portal link").click().run()
    assert not at.exception
    url = next(c.value for c in at.code if "/portal/t/" in c.value)
    token = re.fullmatch(r"http://localhost:8501/portal/t/([A-Za-z0-9_-]{43})", url).group(1)
    at.run()
    assert not [c for c in at.code if "/portal/t/" in c.value]  # shown once
    store = connect(str(portal_file))
    try:
        assert isinstance(links.redeem_link(store, token, "x"), links.PortalSessionToken)
    finally:
        store.close()
    button(at, "Revoke all portal links").click().run()
    assert displayed(at.success[0].value) == "1 portal link(s) revoked; their sessions ended."
