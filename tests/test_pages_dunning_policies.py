"""Dunning policies page (AppTest): the list, an edit saved as a new version once the version sent,
a simulation, the Exhausted queue; read only for the CFO; closed to collectors."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.access.roles import SYSTEM
from analytics.collections.dunning_policies import Channel, Policy, Stage, load_policy, save_policy
from analytics.migrations import connect
from analytics.store.ids import reserve_ids
from analytics.store.schema import DUNNING_RUN_IDS
from tests.collector_data import add_customer, add_invoice, setup_people
from tests.dashboard_fixtures import signed_in

PAGE = "pages/dunning_policies.py"
END = date(2026, 10, 31)


def _store(path: Path) -> Path:
    """Standard (two stages, status escalated at the end): C1's invoice got both stages (exhausted),
    C2's invoice falls due within the last month."""
    store = connect(str(path))
    setup_people(store)
    save_policy(store, SYSTEM, Policy("Standard <b>", stages=(
        Stage(1, "Friendly", 1, (Channel("email", "reminder_friendly"),)),
        Stage(2, "Letter", 10, (Channel("letter", "reminder_letter"),))),
        end_action={"kind": "status", "status": "escalated"}))
    save_policy(store, SYSTEM, Policy("Gentle", stages=(Stage(1, "Nudge", 3, (Channel("letter"),)),), grace_days=4))
    add_customer(store, "C1")
    add_customer(store, "C2")
    inv = add_invoice(store, "C1", "INV-1", END - timedelta(days=90), END - timedelta(days=60), 700)
    add_invoice(store, "C2", "INV-2", END - timedelta(days=40), END - timedelta(days=10), 300)
    with store.write() as conn:
        first = reserve_ids(conn, DUNNING_RUN_IDS, 2)
        for k, stage in enumerate((1, 2)):
            conn.execute(sa.text("INSERT INTO dunning_runs VALUES (:r, :e, 'C1', 1, 1, :s, :d, 'sent')"),
                         {"r": first + k, "e": inv, "s": stage, "d": END - timedelta(days=50 - 10 * k)})
    store.close()
    return path


def _frame(at, column: str):
    """The first table on the screen with `column` (AppTest finds tables by position, not key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_analyst_edits_simulates_and_sees_the_exhausted_queue(app_env, tmp_path: Path) -> None:
    path = _store(tmp_path / "pol.duckdb")
    app_env(path)
    at = signed_in("analyst", PAGE).run()
    assert not at.exception
    assert _frame(at, "state")[["name", "version", "state", "customers"]].to_dict("records") == [
        {"name": "Gentle", "version": 1, "state": "active", "customers": 0},
        {"name": "Standard <b>", "version": 1, "state": "active", "customers": 2}]
    at.selectbox(key="policy_choice").set_value("Gentle").run()
    assert (at.text_input(key="pol_name_2_v1").value, at.number_input(key="pol_grace_2_v1").value) == ("Gentle", 4)
    at.selectbox(key="policy_choice").set_value("Standard <b>").run()
    assert "Standard \\<b\\>: versions" in [s.value for s in at.subheader]  # names shown as text
    exhausted = _frame(at, "end_action_done")
    assert exhausted[["customer_id", "invoices", "open_amount"]].to_dict("records") == [
        {"customer_id": "C1", "invoices": 1, "open_amount": 700.0}]
    # simulate October: C2's INV-2 (due 21 Oct) gets stage 1 on 22 Oct, the letter on 31 Oct;
    # C1 got both stages in September: nothing left
    at.date_input(key="pol_sim_from").set_value(date(2026, 10, 1))
    at.date_input(key="pol_sim_to").set_value(END)
    at.button(key="pol_simulate").click().run()
    assert not at.exception
    days = _frame(at, "day")
    assert days[["day", "stage_no", "customers", "open_ar"]].to_dict("records") == [
        {"day": END - timedelta(days=9), "stage_no": 1, "customers": 1, "open_ar": 300.0},
        {"day": END, "stage_no": 2, "customers": 1, "open_ar": 300.0}]  # due 21 Oct + 10, inclusive
    # the version sent: an edit becomes version 2
    at.number_input(key="pol_grace_1_v1").set_value(3).run()
    at.text_input(key="pol_reason").set_value("three days of grace").run()
    at.button(key="pol_save").click().run()
    assert not at.exception
    assert "Standard <b>: new version (version 2)." in at.success[0].value
    store = connect(str(path))
    try:
        assert load_policy(store, "Standard <b>").grace_days == 3
        assert load_policy(store, "Standard <b>", 1).grace_days == 0
        assert store.scalar("SELECT detail FROM audit_log WHERE action = 'dunning_policy.edit'") == "three days of grace"
    finally:
        store.close()


def test_cfo_reads_and_a_collector_is_refused(app_env, tmp_path: Path) -> None:
    app_env(_store(tmp_path / "pol.duckdb"))
    at = signed_in("cfo", PAGE).run()
    assert not at.exception
    assert "read only" in at.caption[0].value
    assert not at.warning  # both overdue customers follow Standard and have a contact to email
    assert not [b for b in at.button if b.key in ("pol_save", "pol_clone", "pol_retire")]
    assert at.number_input(key="pol_grace_2_v1").disabled  # the first policy, Gentle
    at = signed_in("collector", PAGE, username="col").run()
    assert "may not open the Dunning policies page" in at.warning[0].value


def test_a_team_without_a_policy_is_told_who_is_past_due_and_what_to_do(app_env, tmp_path: Path) -> None:
    store = connect(str(tmp_path / "own.duckdb"))
    setup_people(store)
    for cid, contact in (("C1", "ap"), ("C2", None)):
        add_customer(store, cid, contact=contact, config_id=None)
        add_invoice(store, cid, f"INV-{cid}", END - timedelta(days=40), END - timedelta(days=10), 100)
    add_invoice(store, "C1", "INV-NEW", END, END + timedelta(days=30), 50)  # the ledger, so the page, ends on END
    store.close()
    app_env(tmp_path / "own.duckdb")
    at = signed_in("analyst", PAGE).run()
    assert not at.exception
    [warning] = at.warning
    assert warning.value.startswith("Of 2 customer(s) with invoices past due, 2 on no dunning policy (200.00 USD")
    assert "To dun them: create a policy" in warning.value
    assert _frame(at, "label")[["label", "customers", "invoices"]].to_dict("records") == [
        {"label": "on no dunning policy", "customers": 2, "invoices": 2}]
    assert "No dunning policies yet." not in [i.value for i in at.info]  # an analyst may create one


@pytest.mark.slow
def test_the_page_on_demo_data_simulates_and_saves_a_new_version(app_env, demo_store_file: Path,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_store_file, path)
    app_env(path)
    at = signed_in("admin", PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="pol_simulate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert _frame(at, "day")["messages"].sum() > 0  # the demo's last month, by its first policy
    name = at.selectbox(key="policy_choice").value
    store = connect(str(path))
    try:
        before = load_policy(store, name)
    finally:
        store.close()
    grace = next(n for n in at.number_input if n.key.startswith("pol_grace_"))
    grace.set_value(before.grace_days + 1).run()
    at.button(key="pol_save").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    store = connect(str(path))
    try:
        after = load_policy(store, name)
    finally:
        store.close()
    assert after.grace_days == before.grace_days + 1
    assert after.version == before.version + 1  # the demo's versions have runs: immutable
    assert [s.name for s in after.stages] == [s.name for s in before.stages]
