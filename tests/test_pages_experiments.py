"""Page test (AppTest): an analyst sees the detectable effect before starting an experiment, starts one,
reads a running experiment's result (arms with intervals, SRM, the sequential look, the verdict) and
stops it, promotes another's winner; the CFO reads without the write controls; a collector may not open the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.access.roles import Actor
from analytics.experiments.lifecycle import start_experiment
from analytics.migrations import connect
from tests.conftest import button, displayed, new_store, signed_in_app
from tests.experiment_data import S, build_experiment_ledger


@pytest.fixture
def desk_file(tmp_path: Path, app_env, cheap_bcrypt) -> Path:
    path = tmp_path / "desk.duckdb"
    store = new_store(path)
    build_experiment_ledger(store)  # the ledger's last posting is S + 31: the page's as-of
    start_experiment(store, Actor("ana.lyst", "analyst"), "Firm early on smb", "smb", 1, 2, 50, 5,
                     planned_days=60, looks=2, as_of=S)
    store.close()
    app_env(path)
    return path


def _app(role: str, username: str):  # noqa: ANN202 - an AppTest
    at = signed_in_app(role, username).run()
    at.switch_page("pages/experiments.py").run()
    assert not at.exception, at.exception
    return at


def test_analyst_plans_starts_reads_and_stops(desk_file: Path) -> None:
    at = _app("analyst", "ana.lyst")
    assert at.title[0].value == "Experiments"
    arms = at.dataframe[1].value  # [0] is the list of experiments
    assert arms["Arm"].tolist() == ["Champion", "Challenger", "Holdout"]
    assert arms["Collected share (%)"].tolist() == [pytest.approx(10.53), 70.0, 25.0]  # 200/1900, 1400/2000, 500/2000
    text = " ".join(displayed(m.value) for m in at.markdown)
    assert "Sample ratio check" in text and "O'Brien-Fleming" in text and "look 1 of 2" in text
    assert any("Verdict:" in displayed(m.value) for m in (*at.info, *at.success, *at.warning))

    at.selectbox(key="exp_segment").select("enterprise").run()
    labels = {m.label: m.value for m in at.metric}
    assert labels["Customers in the segment"] == "1" and labels["Overdue now (measurable)"] == "1"
    assert "Detectable effect at this split" in labels
    at.text_input(key="exp_name").input("Gentle *enterprise*").run()
    at.selectbox(key="exp_champion_enterprise").set_value(1).run()
    at.selectbox(key="exp_challenger_enterprise").set_value(2).run()
    at.button(key="exp_start").click().run()
    assert not at.exception and not at.error
    assert displayed(at.success[0].value) == "Started “Gentle *enterprise*”: 1 customers assigned."

    at.selectbox(key="exp_chosen").select("Firm early on smb").run()
    at.text_input(key="exp_reason").input("seen enough").run()
    button(at, "Stop").click().run()
    assert displayed(at.success[0].value) == "Stopped “Firm early on smb”."
    at.selectbox(key="exp_chosen").select("Gentle *enterprise*").run()
    button(at, "Promote the challenger (Firm early)").click().run()
    assert displayed(at.success[0].value) == "Promoted the challenger: 1 customers changed policy."
    store = connect(str(desk_file))
    try:
        assert store.read("SELECT name, status, started_by FROM experiments ORDER BY experiment_id").values.tolist() == [
            ["Firm early on smb", "stopped", "ana.lyst"], ["Gentle *enterprise*", "promoted", "ana.lyst"]]
        assert store.read("SELECT action FROM audit_log WHERE action LIKE 'experiment.%' ORDER BY audit_id")[
            "action"].tolist() == [
            "experiment.start", "experiment.start", "experiment.stop", "experiment.promote"]
        assert store.scalar("SELECT dunning_config_id FROM customers WHERE customer_id = 'Z900'") == 2
    finally:
        store.close()


def test_the_cfo_reads_without_writing_and_a_collector_may_not_open_it(desk_file: Path) -> None:
    at = _app("cfo", "cee.fo")
    assert at.dataframe[1].value["Customers measured"].tolist() == [2, 2, 2]
    assert not [b for b in at.button if b.key in ("exp_start", "exp_stop", "exp_promote")]
    at = _app("collector", "col.lector")
    assert "may not open the Experiments page" in at.warning[0].value
    assert not at.dataframe
