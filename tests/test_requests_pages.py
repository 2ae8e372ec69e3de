"""Page tests (AppTest): a request raised on the Customer 360, worked on the Requests page, counted;
the weekly to-do where a sales assignee completes their own task."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.access.roles import SYSTEM, Actor
from analytics.access.users import add_user
from analytics.collections.followups import add_task
from analytics.collections.my_week import week_of
from analytics.collections.requests import raise_request
from analytics.migrations import connect
from tests.collector_data import add_customer, add_invoice, setup_people
from tests.conftest import button, displayed, new_store, signed_in_app, stored_rows

T = date(2026, 3, 11)  # the ledger's last posting date (a Wednesday): the pages' as-of date
ANA = Actor("ana.collector", "collector")


@pytest.fixture
def desk_file(tmp_path: Path, app_env, cheap_bcrypt) -> Path:
    path = tmp_path / "desk.duckdb"
    store = new_store(path)
    setup_people(store)
    add_user(store, SYSTEM, "leo.logistics", "Leo Logistics", "department", team="logistics")
    add_user(store, SYSTEM, "lena.legal", "Lena Legal", "department", team="legal")
    add_customer(store, "C1", name="Acme")
    add_invoice(store, "C1", "INV-1", T - timedelta(days=40), T - timedelta(days=10), 100)
    add_invoice(store, "C1", "INV-2", T, T + timedelta(days=30), 50)
    store.close()
    app_env(path)
    return path


def _app(role: str, username: str, page: str, **query: str) -> AppTest:
    at = signed_in_app(role, username).run()
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at




def test_sales_raises_logistics_closes_and_the_page_counts_it(desk_file: Path) -> None:
    at = _app("sales", "sam.sales", "pages/customer.py", customer="C1")
    at.selectbox(key="request_type").select("address_change")
    at.text_input(key="request_subject").input("New delivery address: 4 Quai des *Chartrons*")
    button(at, "Raise request").click().run()
    assert not at.exception
    assert displayed(at.success[0].value) == "Request #1 raised: Address change, to logistics."
    at.selectbox(key="request_type").select("address_change")  # the same submit again (a double click)
    at.text_input(key="request_subject").input("New delivery address: 4 Quai des *Chartrons*")
    button(at, "Raise request").click().run()
    assert displayed(at.success[0].value) == "Request #1 raised: Address change, to logistics."  # the first one
    assert stored_rows(desk_file, "SELECT request_id, department, raised_by, due_date, status FROM requests") == [
        {"request_id": 1, "department": "logistics", "raised_by": "sam.sales", "status": "open",
         "due_date": pd.Timestamp(T + timedelta(days=5))}]
    newest = displayed(at.tabs[0].markdown[0].value)
    assert newest.endswith("**request** by sam.sales (logistics): Request #1: New delivery address: 4 Quai des "
                           "*Chartrons* · _address change · open_")

    # sales sees it among their own, not in the sales queue, and may not work logistics' queue
    at = _app("sales", "sam.sales", "pages/requests.py")
    assert [s.value for s in at.subheader] == ["Queue: sales (0 open)", "Mine: raised by me or mine to do (1 open)"]
    assert {m.label: m.value for m in at.metric}["Open"] == "1"

    at = _app("department", "leo.logistics", "pages/requests.py")
    assert at.subheader[0].value == "Queue: logistics (1 open)"
    assert at.dataframe[1].value[["request_id", "customer_name", "request_type", "status"]].to_dict("records") == [
        {"request_id": 1, "customer_name": "Acme", "request_type": "address_change", "status": "open"}]
    at.radio(key="request_status").set_value("rejected")
    button(at, "Save").click().run()
    assert displayed(at.error[0].value) == "note: required."
    at.radio(key="request_status").set_value("done")
    at.text_input(key="request_note").input("Changed in the ERP")
    button(at, "Save").click().run()
    assert not at.exception
    assert at.success[0].value == "Request #1: done."
    assert at.subheader[0].value == "Queue: logistics (0 open)"
    assert {m.label: m.value for m in at.metric} == {"Open": "0", "Overdue": "0", "Closed": "1",
                                                     "Median days to close": "0.0"}
    counts = at.dataframe[0].value
    assert counts[["department", "request_type", "open", "closed"]].to_dict("records") == [
        {"department": "logistics", "request_type": "Address change", "open": 0, "closed": 1},
        {"department": "logistics", "request_type": "all", "open": 0, "closed": 1},
        {"department": "all", "request_type": "all", "open": 0, "closed": 1}]
    assert stored_rows(desk_file, "SELECT actor, action FROM audit_log WHERE entity = 'request' ORDER BY audit_id") == [
        {"actor": "sam.sales", "action": "request.raise"}, {"actor": "leo.logistics", "action": "request.status"}]


def test_a_viewer_reads_the_counts_and_cannot_raise_or_work(desk_file: Path) -> None:
    store = connect(str(desk_file))
    raise_request(store, ANA, "C1", "credit_note", "Credit note for INV-1", today=T)
    store.close()
    at = _app("viewer", "val.viewer", "pages/requests.py")
    assert {m.label: m.value for m in at.metric}["Open"] == "1"
    assert at.info[0].value == "You work no department's queue; the requests you raised are below."
    assert "Your role may read requests but not work them." in [c.value for c in at.caption]
    assert not [f for f in at.button if f.label == "Save"]
    at = _app("viewer", "val.viewer", "pages/customer.py", customer="C1")
    assert not [b for b in at.button if b.label == "Raise request"]


def test_my_week_groups_by_day_and_a_sales_assignee_completes_their_task(desk_file: Path) -> None:
    monday, sunday = week_of(T)
    store = connect(str(desk_file))
    task = add_task(store, ANA, "C1", "Bring the signed PO", sunday, "sam.sales", today=T)
    add_task(store, ANA, "C1", "Next week", sunday + timedelta(days=1), "sam.sales", today=T)
    store.close()
    at = _app("sales", "sam.sales", "pages/my_week.py")
    assert at.title[0].value == "My week"
    days = [s.value for s in at.subheader]
    assert days == [f"{monday + timedelta(days=i):%A %d %B}" + (" · as-of date" if i == 2 else "") for i in range(7)]
    [table] = at.dataframe
    assert table.value[["kind", "item_id", "subject", "person"]].to_dict("records") == [
        {"kind": "task", "item_id": task, "subject": "Bring the signed PO", "person": "sam.sales"}]
    assert "1 open items" in at.caption[0].value
    button(at, "Done").click().run()
    assert not at.exception
    assert at.success[0].value == f"Task #{task} done."
    assert at.success[1].value == "Nothing due this week."
    assert stored_rows(desk_file, f"SELECT status FROM activities WHERE activity_id = {task}") == [{"status": "done"}]
