"""Page tests (AppTest): the worklist's ranks, bands, groups, Done and as-of dates; the Customer 360's
"Next item" walk, kept tab and cleared form; targets on the worklist and the Team page.

The ledger stops 20 days before today (a stale export): every date defaults from that as-of date."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from analytics.access.roles import SYSTEM, Actor
from analytics.collections.followups import add_task
from analytics.collections.targets import set_target
from tests.collector_data import add_customer, add_dunning_config, add_invoice, setup_people
from tests.conftest import button, displayed, new_store, signed_in_app

E = date.today() - timedelta(days=20)  # the ledger's last date: the list's as-of date
ANA = Actor("ana.collector", "collector", "Ana Collector")


@pytest.fixture
def ledger(tmp_path: Path, app_env) -> Path:
    """C1..C3: an invoice of 100 × i, i days past due at E (dunning stage 1 and newly past due); a task on
    C2 due E + 2 (upcoming); ana's target: 5 calls a day."""
    path = tmp_path / "walk.duckdb"
    store = new_store(path)
    setup_people(store)
    add_dunning_config(store)
    for i in (1, 2, 3):
        add_customer(store, f"C{i}", name=f"Acme {i}")
        add_invoice(store, f"C{i}", f"INV-{i}", E - timedelta(days=30 + i), E - timedelta(days=i), 100 * i)
    add_invoice(store, "C1", "INV-LAST", E, E + timedelta(days=30), 10)
    add_task(store, ANA, "C2", "Send the signed contract", E + timedelta(days=2), today=E)
    set_target(store, SYSTEM, "ana.collector", "calls", "day", 5)
    store.close()
    app_env(path)
    return path



def test_worklist_ranks_bands_groups_and_dates_from_as_of(ledger: Path) -> None:
    at = signed_in_app("collector", "ana.collector", "pages/worklist.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns[:4]) == ["rank", "band", "reason_label", "amount_at_risk"]
    # priorities 900, 900, 400, 400, 100, 100 (of 2800): mass above 0, 32, 64, 79, 93, 96 %
    assert table[["rank", "customer_id", "band", "why"]].values.tolist() == [
        [1, "C3", "High", "300 × 3 d × 1.00 × risk 1.00"], [2, "C3", "High", "300 × 3 d × 1.00 × risk 1.00"],
        [3, "C2", "Medium", "200 × 2 d × 1.00 × risk 1.00"], [4, "C2", "Medium", "200 × 2 d × 1.00 × risk 1.00"],
        [5, "C1", "Low", "100 × 1 d × 1.00 × risk 1.00"], [6, "C1", "Low", "100 × 1 d × 1.00 × risk 1.00"]]
    assert at.caption[1].value.startswith("**6 items · 3 customers** · ")
    assert [s.value for s in at.subheader][:3] == ["Tasks", "Stages waiting for approval: 3",  # manual stages
                                                   "Upcoming tasks (not yet due): 1"]
    assert at.dataframe[1].value["customer_id"].tolist() == ["C2"]
    assert at.date_input(key="snooze_until").value == E + timedelta(days=7)
    calls = next(m for m in at.metric if m.label == "Calls · day")
    assert calls.value == "0" and calls.delta == "not yet ≥ 5"
    task = next(b for b in at.button if b.key.startswith("worklist_task_done_"))
    task.click().run()
    assert not at.exception
    assert at.success[0].value == "Task done."
    assert "Upcoming tasks (not yet due): 1" not in [s.value for s in at.subheader]


def test_customer_360_walks_the_list_keeps_the_tab_and_clears_the_form(ledger: Path) -> None:
    at = signed_in_app("collector", "ana.collector")
    at.run()
    at.session_state["worklist_walk"] = {"as_of": E, "collector": "ana.collector", "seen": ["C3"]}
    at.query_params["customer"] = "C3"
    at.switch_page("pages/customer.py").run()
    assert not at.exception
    assert at.date_input(key="promise_date").value == E + timedelta(days=7)
    assert at.date_input(key="task_due").value == E + timedelta(days=3)
    at.session_state["customer_tab"] = "Follow-up"
    at.number_input(key="promise_amount").set_value(120.0)
    button(at, "Record promise").click().run()
    assert not at.exception
    assert at.success[0].value == f"Promise recorded: 120.00 USD by {E + timedelta(days=7)}."
    assert at.session_state["customer_tab"] == "Follow-up"  # still on the follow-up tab
    assert at.number_input(key="promise_amount").value == 300.0  # the form is back to its defaults
    at.text_input(key="task_subject").input("Check the remittance")
    button(at, "Add task").click().run()
    assert at.success[0].value == "Task added." and at.text_input(key="task_subject").value == ""
    assert [t.value for t in at.text] == [f"Open task, due {E + timedelta(days=3)}: Check the remittance"]
    next(b for b in at.button if b.key.startswith("header_task_done_")).click().run()
    assert at.success[0].value == "Task completed." and at.text == []
    button(at, "Next item").click().run()
    assert at.subheader[0].value == "Acme 2 (C2)"  # C3 was worked: the next customer of the list
    button(at, "Next item").click().run()
    assert at.subheader[0].value == "Acme 1 (C1)"
    button(at, "Next item").click().run()  # nothing left that was not walked: back to the list
    assert not at.exception
    assert at.title[0].value == "Worklist"
    assert at.success[0].value == "You have walked the whole list."


def test_team_page_sets_a_target_and_shows_progress(ledger: Path) -> None:
    at = signed_in_app("admin", "boss", "pages/team.py").run()
    assert not at.exception
    at.selectbox(key="target_collector").select("ana.collector")
    at.selectbox(key="target_metric").select("overdue_balance")
    at.selectbox(key="target_period").select("month")
    at.number_input(key="target_value").set_value(1000.0)
    button(at, "Set target").click().run()
    assert not at.exception
    assert displayed(at.success[0].value) == "Target set: ana.collector overdue balance per month at most 1,000.00."
    targets = next(d.value for d in at.dataframe if "label" in d.value.columns)
    assert targets[["collector", "label", "period", "target", "met"]].values.tolist() == [
        ["ana.collector", "Calls", "day", 5.0, False], ["ana.collector", "Overdue balance", "month", 1000.0, True]]  # 600 overdue
