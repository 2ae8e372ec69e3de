"""Page test (AppTest): an analyst adds a rule on the Segmentation page, sees the live preview, simulates
what the rule set would have sent, saves it with a reason; the store holds the new version and the
re-assignment; a collector may not open it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.migrations import connect
from tests.conftest import button, displayed, new_store, signed_in_app
from tests.test_segmentation import ENTERPRISE, STANDARD, build_desk


@pytest.fixture
def desk_file(tmp_path: Path, app_env, cheap_bcrypt) -> Path:
    path = tmp_path / "desk.duckdb"
    store = new_store(path)
    build_desk(store)  # five customers on Standard; the ledger's last posting is 2026-03-06
    store.close()
    app_env(path)
    return path


def _app(role: str, username: str) -> AppTest:
    at = signed_in_app(role, username).run()
    at.switch_page("pages/segmentation.py").run()
    assert not at.exception, at.exception
    return at



def test_analyst_adds_previews_and_saves_a_rule(desk_file: Path) -> None:
    at = _app("analyst", "ana.lyst")
    assert at.title[0].value == "Segmentation"
    assert "No rules are saved yet" in at.info[0].value
    preview = at.dataframe[0].value
    assert preview[["rule", "policy", "customers", "changing policy"]].values.tolist() == [
        ["Everyone else", "Enterprise", 5, 5]]  # the first active policy by name; everyone on Standard today
    at.selectbox(key="seg_policy_1").select(STANDARD).run()
    assert at.dataframe[0].value["changing policy"].tolist() == [0]

    button(at, "Add rule").click().run()  # a rule before the default, with one empty condition
    assert "needs a value" in displayed(at.error[0].value)
    at.text_input(key="seg_name_2").input("Big *enterprise*").run()
    at.selectbox(key="seg_policy_2").select(ENTERPRISE).run()
    at.selectbox(key="seg_field_3").select("open_ar").run()
    at.selectbox(key="seg_op_3").select(">=").run()
    at.text_input(key="seg_value_3").input("1000").run()
    assert not at.error
    preview = at.dataframe[0].value
    # C1 (5,000.00) and C3 (2,000.00) have at least 1,000 open as of 2026-03-06
    assert preview[["rule", "conditions", "customers", "open AR", "changing policy"]].values.tolist() == [
        ["Big *enterprise*", "open_ar >= 1000", 2, 7000.0, 2], ["Everyone else", "everyone else (default)", 3, 500.0, 0]]
    assert [m.value for m in at.metric] == ["5", "7,500.00", "2"]

    # what the draft would have sent: each policy's one stage ("Reminder") on the due date + 1
    assert (at.date_input(key="seg_sim_from").value, at.date_input(key="seg_sim_to").value) == (
        date(2026, 2, 4), date(2026, 3, 6))  # the 30 days to the ledger's last day
    at.date_input(key="seg_sim_from").set_value(date(2026, 3, 2))
    at.date_input(key="seg_sim_to").set_value(date(2026, 4, 6)).run()
    button(at, "Simulate the rule set").click().run()
    assert not at.exception, at.exception
    _, totals, days = (frame.value for frame in at.dataframe[:3])  # AppTest keeps no dataframe keys
    # C1 (I1 5,000.00 due 1 March) and C3 (I3 2,000.00 due 5 April) -> Enterprise; C2 (I2 500.00 due 21 March)
    assert days[["day", "policy", "stage", "messages", "open_ar"]].astype({"day": str}).values.tolist() == [
        ["2026-03-02", "Enterprise", 1, 1, 5000.0], ["2026-03-22", "Standard", 1, 1, 500.0],
        ["2026-04-06", "Enterprise", 1, 1, 2000.0]]
    assert totals[["policy", "days with messages", "messages", "open_ar"]].values.tolist() == [
        ["Enterprise", 2, 2, 7000.0], ["Standard", 1, 1, 500.0]]
    assert [m.value for m in at.metric][3:] == ["3", "3", "7,500.00"]
    assert at.get("plotly_chart")  # messages per day by policy
    at.date_input(key="seg_sim_to").set_value(date(2026, 4, 5)).run()
    assert "simulate again" in at.caption[-1].value  # a result of other dates is not shown as this one's

    at.button(key="FormSubmitter:seg_save-Save rules").click().run()
    assert "Say why" in at.error[0].value  # no reason: nothing saved
    at.text_input(key="seg_reason").input("Large balances get the firm cadence")
    at.button(key="FormSubmitter:seg_save-Save rules").click().run()
    assert not at.exception
    assert displayed(at.success[0].value) == "Saved as version 1: 2 customer(s) changed policy."
    assert "saved by ana.lyst" in displayed(at.caption[1].value)
    store = connect(str(desk_file))
    try:
        assert store.read("SELECT customer_id FROM customers WHERE dunning_config_id = :e ORDER BY customer_id",
                          {"e": ENTERPRISE})["customer_id"].tolist() == ["C1", "C3"]
        assert store.read("SELECT name, position FROM segment_rules WHERE version = 1 ORDER BY position")[
            "name"].tolist() == ["Big *enterprise*", "Everyone else"]
        assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'segments.save' AND actor = 'ana.lyst'") == 1
    finally:
        store.close()


def test_a_collector_may_not_open_it(desk_file: Path) -> None:
    at = _app("collector", "ana.collector")
    assert "may not open the Segmentation page" in at.warning[0].value
    assert not at.dataframe


def test_rules_move_delete_and_discard(desk_file: Path) -> None:
    at = _app("admin", "ada.admin")

    def names() -> list[str]:
        return [t.value for t in at.text_input if t.key.startswith("seg_name_")]

    button(at, "Add rule").click().run()
    at.text_input(key="seg_name_2").input("First").run()
    button(at, "Add rule").click().run()  # goes just before the default
    at.text_input(key="seg_name_4").input("Second").run()
    assert names() == ["First", "Second", "Everyone else"]
    at.button(key="seg_up_4").click().run()
    assert names() == ["Second", "First", "Everyone else"]
    at.button(key="seg_del_2").click().run()
    assert names() == ["Second", "Everyone else"]
    at.button(key="seg_rm_5").click().run()  # its only condition: a rule before the default needs one
    assert "Rule 1 (Second) has no conditions" in displayed(at.error[0].value)
    button(at, "Discard changes").click().run()
    assert names() == ["Everyone else"] and not at.error
