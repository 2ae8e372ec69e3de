"""Page tests (AppTest): a portal session gets only the portal's navigation and page, which shows its
own invoices and sends its forms through `analytics.portal.account`; the Customer 360's portal link.

AppTest cannot send cookies, so the portal session is given by replacing `links.portal_customer`
(the cookie's own path is tested in test_portal_links.py and the portal browser test); everything
else is real: a small hand-made store, the real `analytics.portal.account`, effects checked in the store."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.access.roles import Actor
from analytics.migrations import connect
from analytics.portal import links
from analytics.portal.identity import PortalCustomer
from tests.collector_data import add_customer, add_invoice, setup_people
from tests.conftest import APPTEST_TIMEOUT_S, ROOT, button, displayed, new_store, signed_in_app

T = date.today()


@pytest.fixture
def portal_file(tmp_path: Path, app_env, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: ANN001
    """C1 with INV-1 (300, 10 days late) and INV-2 (50, not due); C2 with INV-9 (700)."""
    path = tmp_path / "portal.duckdb"
    store = new_store(path)
    setup_people(store)
    add_customer(store, "C1", name="Acme 1")
    add_customer(store, "C2", name="Acme 2")
    add_invoice(store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 300)
    add_invoice(store, "C1", "INV-2", T, T + timedelta(days=30), 50)
    add_invoice(store, "C2", "INV-9", T - timedelta(days=40), T - timedelta(days=10), 700)
    store.close()
    app_env(path)
    return path


def _as_portal(monkeypatch: pytest.MonkeyPatch, customer_id: str | None) -> AppTest:
    who = None if customer_id is None else PortalCustomer(customer_id, 1)
    monkeypatch.setattr(links, "portal_customer", lambda store, token, **_: who)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT_S)


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


def _rows(path: Path, sql: str) -> list[list]:
    store = connect(str(path))
    try:
        frame = store.read(sql)
        return frame.astype(object).where(frame.notna(), None).values.tolist()
    finally:
        store.close()


def test_the_forms_write_the_customers_own_follow_ups_and_say_the_refusal(
        portal_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics.portal import account

    store = connect(str(portal_file))
    try:  # C2's own message and the collector's reply to C1, written before the page opens
        account.portal_message(store, PortalCustomer("C2"), "C2's secret question")
        ben = Actor("ben.collector", "collector", "Ben Collector")
        account.reply_to_portal(store, ben, "C1", "Hello from *Ben*")
    finally:
        store.close()
    at = _as_portal(monkeypatch, "C1").run()
    assert [t.value for t in at.text] == ["Hello from *Ben*"]  # C1's thread only, as text
    button(at, "Send the dispute").click().run()
    assert displayed(at.error[0].value) == "Fill in every field (invoice, reason, date) before sending."
    at.selectbox(key="dispute_invoice").select("INV-1")
    at.selectbox(key="dispute_reason").select(account.DISPUTE_REASONS[0])
    at.number_input(key="dispute_amount").set_value(120.5)
    at.text_area(key="dispute_comment").input("Only *half* arrived")
    button(at, "Send the dispute").click().run()
    assert not at.exception and displayed(at.success[0].value).startswith("Your dispute was recorded (reference ")
    at.multiselect(key="promise_invoices").set_value(["INV-2"])
    at.number_input(key="promise_amount").set_value(50.0)
    at.date_input(key="promise_date").set_value(T - timedelta(days=1))  # in the past: the engine's reason
    button(at, "Send the promise").click().run()
    assert "promised" in displayed(at.error[0].value) and not at.success
    at.multiselect(key="promise_invoices").set_value(["INV-2"])
    at.number_input(key="promise_amount").set_value(50.0)
    at.date_input(key="promise_date").set_value(T + timedelta(days=7))
    button(at, "Send the promise").click().run()
    assert displayed(at.success[0].value).startswith("Your promise to pay was recorded")
    at.multiselect(key="paid_invoices").set_value(["INV-1"])
    at.date_input(key="paid_on").set_value(T)
    at.number_input(key="paid_amount").set_value(179.5)
    at.text_input(key="paid_reference").input("WIRE 12")
    button(at, "Tell us you have paid").click().run()
    assert displayed(at.success[0].value).startswith("Your payment was noted")
    at.text_area(key="portal_message_body").input("When is **INV-2** due?")
    button(at, "Send the message").click().run()
    assert not at.exception
    assert [t.value for t in at.text] == ["Hello from *Ben*", "When is **INV-2** due?"]  # never C2's message
    shown = at.dataframe[0].value.set_index("Invoice")
    assert shown["Status"].to_dict() == {"INV-1": "disputed", "INV-2": "promised"}
    assert _rows(portal_file, "SELECT kind, customer_id, author, department, CAST(amount AS DOUBLE), "
                 "CAST(due_date AS VARCHAR), reason, CAST(paid_on AS VARCHAR), body FROM activities "
                 "WHERE author LIKE 'portal:%' ORDER BY activity_id") == [
        ["portal_message", "C2", "portal:C2", "collections", None, None, None, None, "C2's secret question"],
        ["dispute", "C1", "portal:C1", "sales", 120.5, None, account.DISPUTE_REASONS[0], None,
         "Only *half* arrived"],
        ["promise", "C1", "portal:C1", "portal", 50.0, str(T + timedelta(days=7)), None, None, None],
        ["remittance", "C1", "portal:C1", "collections", 179.5, str(T + timedelta(days=7)), "WIRE 12", str(T), None],
        ["portal_message", "C1", "portal:C1", "collections", None, None, None, None, "When is **INV-2** due?"]]


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
