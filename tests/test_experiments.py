"""Experiments: the stored hash assignment, the statistics on simulated data (A/A false positives,
coverage of a known effect, SRM, the O'Brien-Fleming constants), a hand-computed interval, the design
formulas, the metric on a hand-made ledger on DuckDB and PostgreSQL, the arm's policy in the dunning
schedule, the lifecycle (role-checked, audited) and `ardesk experiments`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.access.users import add_user
from analytics.cli.main import main
from analytics.collections.dunning_schedule import due_stages
from analytics.collections.segmentation import Rule, current_rule_set, save_rules
from analytics.experiments import statistics as stats
from analytics.experiments.assignment import BUCKETS, arm_of_bucket, arms, assign_arrivals, bucket_of, buckets
from analytics.experiments.design import (
    expected_days,
    minimum_detectable_effect,
    sample_size_per_arm,
    sample_sizes,
)
from analytics.experiments.lifecycle import (
    ExperimentError,
    experiment,
    promote_winner,
    start_experiment,
    stop_experiment,
)
from analytics.experiments.results import experiment_result
from analytics.ingest.imports import run_import
from analytics.ingest.inbox import Folders, ingest_pending, pending_jobs
from analytics.ingest.mapping import Mapping
from analytics.migrations import connect
from analytics.store.connection import StoreLocked
from tests.experiment_data import AS_OF, CHALLENGER, CHAMPION, S, build_experiment_ledger

ROOT = Path(__file__).resolve().parents[1]
ANALYST = Actor("ana.lyst", "analyst")
COLLECTOR = Actor("col.lector", "collector")


# -- assignment -------------------------------------------------------------------------------------------
def test_bucket_is_md5_of_experiment_and_customer() -> None:
    # printf '1:C001' | md5sum -> fff786f4a3a0...; 0xfff786f4 = 4294412020; 4294412020 % 10000 = 2020
    assert int("fff786f4", 16) == 4294412020
    assert bucket_of(1, "C001") == 2020
    assert buckets(1, ["C001", "C001"]).tolist() == [2020, 2020]


def test_arm_rule_at_the_boundaries() -> None:
    # 5% holdout: buckets 0..499; of the 9,500 others the challenger takes (b - 500) < 4,750: 500..5,249
    assert [arm_of_bucket(b, 50, 5) for b in (0, 499, 500, 5249, 5250, 9999)] == [
        "holdout", "holdout", "challenger", "challenger", "champion", "champion"]
    # safe 90/10 without holdout: challenger b < 1,000
    assert [arm_of_bucket(b, 10, 0) for b in (999, 1000)] == ["challenger", "champion"]
    counts = {a: int((arms(np.arange(BUCKETS), 10, 5) == a).sum()) for a in ("holdout", "challenger", "champion")}
    assert counts == {"holdout": 500, "challenger": 950, "champion": 8550}


def test_buckets_are_the_same_in_another_process() -> None:
    ids = [f"C{i:04d}" for i in range(50)]
    code = ("import json, sys; from analytics.experiments.assignment import buckets; "
            "print(json.dumps(buckets(7, json.loads(sys.argv[1])).tolist()))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(ids)], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "123"})
    assert json.loads(out.stdout) == buckets(7, ids).tolist()


# -- statistics ---------------------------------------------------------------------------------------------
def test_hand_computed_intervals_for_a_small_two_arm_table() -> None:
    # Champion (collected, overdue): (50, 100), (0, 100), (100, 200): R_A = 150 / 400 = 0.375;
    #   d = c - 0.375 o = 12.5, -37.5, 25; sum d^2 = 156.25 + 1406.25 + 625 = 2187.5; / (n - 1) = 1093.75;
    #   mean overdue 400/3; Var = 1093.75 / (3 x (400/3)^2) = 1093.75 x 3 / 160000 = 0.0205078125.
    # Challenger: (80, 100), (60, 100): R_B = 0.7; d = 10, -10; sum d^2 / 1 = 200; Var = 200 / (2 x 100^2) = 0.01.
    a = stats.arm_figure(np.array([50, 0, 100]), np.array([100, 100, 200]))
    b = stats.arm_figure(np.array([80, 60]), np.array([100, 100]))
    z = 1.959963984540054
    assert a.ratio == pytest.approx(0.375) and a.se ** 2 == pytest.approx(0.0205078125)
    assert (a.low, a.high) == pytest.approx((0.375 - z * math.sqrt(0.0205078125), 0.375 + z * math.sqrt(0.0205078125)))
    assert (b.low, b.high) == pytest.approx((0.7 - z * 0.1, 0.7 + z * 0.1))
    c = stats.compare(a, b)
    # D = 0.325, Var(D) = 0.0305078125 (se 0.174665); lift = 0.7 / 0.375 - 1 = 0.8666...,
    # Var(lift) = (0.7/0.375)^2 x (0.0205078125/0.140625 + 0.01/0.49) = 3.484444 x (0.1458333 + 0.0204082)
    se_d = math.sqrt(0.0305078125)
    assert (c.difference, c.difference_low, c.difference_high) == pytest.approx((0.325, 0.325 - z * se_d, 0.325 + z * se_d))
    se_l = math.sqrt((0.7 / 0.375) ** 2 * (0.0205078125 / 0.140625 + 0.01 / 0.49))
    assert (c.lift, c.lift_low, c.lift_high) == pytest.approx((0.7 / 0.375 - 1, 0.7 / 0.375 - 1 - z * se_l,
                                                               0.7 / 0.375 - 1 + z * se_l))
    assert c.z == pytest.approx(0.325 / se_d)


def _simulated_arm(rng: np.random.Generator, n: int, mean_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer overdue (lognormal money) and collected = overdue x a Beta share of mean `mean_share`:
    the arm's true ratio E[collected] / E[overdue] = mean_share (share independent of the balance)."""
    overdue = rng.lognormal(7, 1, n)
    return overdue * rng.beta(mean_share * 4, (1 - mean_share) * 4, n), overdue


def test_a_a_experiments_are_significant_in_at_most_7_percent_of_200_seeds() -> None:
    significant = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        comparison = stats.compare_arrays(*_simulated_arm(rng, 1500, 0.6), *_simulated_arm(rng, 1500, 0.6))
        decision = stats.verdict(comparison, {"blocked": False}, look=1, looks=1)["decision"]
        significant += decision in ("challenger_wins", "champion_wins")
    assert significant / 200 <= 0.07


def test_a_known_effect_lies_inside_the_95_percent_interval_in_at_least_90_percent_of_200_seeds() -> None:
    covered_difference = covered_arm = 0
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        champion, challenger = _simulated_arm(rng, 1500, 0.60), _simulated_arm(rng, 1500, 0.65)
        c = stats.compare_arrays(*champion, *challenger)
        covered_difference += c.difference_low <= 0.05 <= c.difference_high
        arm = stats.arm_figure(*challenger)
        covered_arm += arm.low <= 0.65 <= arm.high
    assert covered_difference / 200 >= 0.90 and covered_arm / 200 >= 0.90


def test_a_45_55_assignment_at_a_50_50_split_trips_the_srm_check() -> None:
    planned = {"champion": 0.5, "challenger": 0.5, "holdout": 0.0}
    srm = stats.srm_check({"champion": 900, "challenger": 1100}, planned)
    # chi2 = 100^2 / 1000 x 2 = 20, p = erfc(sqrt(10)) = 7.7e-6
    assert srm["chi2"] == pytest.approx(20) and srm["df"] == 1 and srm["p"] == pytest.approx(math.erfc(math.sqrt(10)))
    assert srm["blocked"]
    decision = stats.verdict(stats.Comparison(0.1, 0.05, 0.15, 0.2, 0.1, 0.3, 5.0), srm, look=5, looks=5)
    assert decision["decision"] == "blocked" and "Sample ratio mismatch" in decision["reason"]
    fine = stats.srm_check({"champion": 990, "challenger": 1010}, planned)
    assert not fine["blocked"]
    three = stats.srm_check({"champion": 475, "challenger": 475, "holdout": 50},
                            {"champion": 0.475, "challenger": 0.475, "holdout": 0.05})
    assert three["df"] == 2 and three["p"] == pytest.approx(1.0)


def test_obrien_fleming_constants_keep_the_false_positive_rate_at_5_percent() -> None:
    rng = np.random.default_rng(16)
    for looks in (2, 5, 10):
        paths = rng.standard_normal((100_000, looks)).cumsum(axis=1) / np.sqrt(np.arange(1, looks + 1))
        crossed = (np.abs(paths) >= np.array(stats.obf_boundaries(looks))).any(axis=1).mean()
        assert 0.045 <= crossed <= 0.055, (looks, crossed)
    assert stats.obf_boundaries(4)[0] == pytest.approx(2.024 * 2)  # c_K / sqrt(1/4)
    assert [stats.current_look(d, 90, 3) for d in (0, 29, 30, 89, 90, 200)] == [0, 0, 1, 2, 3, 3]


# -- design ---------------------------------------------------------------------------------------------------
def test_sample_size_detectable_effect_and_duration() -> None:
    # (1.959964 + 0.841621)^2 x (0.6 x 0.4 + 0.65 x 0.35) / 0.05^2 = 7.848879 x 0.4675 / 0.0025 = 1467.74
    assert sample_size_per_arm(0.60, 0.05) == 1468
    assert sample_sizes(0.60, 0.05, 50) == (1468, 1468)
    n_a, n_b = sample_sizes(0.60, 0.05, 10)  # 90/10: r = 1/9, n_A = 7.848879 x (0.24 + 0.2275 x 9) / 0.0025
    assert n_a == math.ceil(7.848879 * (0.24 + 0.2275 * 9) / 0.0025) and n_b == math.ceil(n_a / 9)
    assert minimum_detectable_effect(0.60, 1468, 1468) == pytest.approx(0.05, abs=2e-4)
    assert expected_days(3000, 1000, 20) == 30 + 100 and expected_days(100, 500, 0) == 30
    assert expected_days(100, 0, 0) == math.inf


# -- the metric, the schedule and the engines ----------------------------------------------------------------
def test_assignments_metric_and_arm_policy_on_each_engine(store_on_each_engine) -> None:
    store = store_on_each_engine
    build_experiment_ledger(store)
    started = start_experiment(store, ANALYST, "Firm early on smb", "smb", 1, 2, 50, 5, planned_days=60,
                               looks=2, why="does an earlier firm reminder pay?", as_of=S)
    assert started == {"experiment_id": 1, "customers": 6, "arms": {"holdout": 2, "challenger": 2, "champion": 2}}
    stored = store.read("SELECT customer_id, bucket, arm, assigned_on FROM experiment_assignments "
                        "ORDER BY customer_id")
    ids = stored.customer_id.tolist()
    assert stored.bucket.tolist() == buckets(1, ids).tolist()
    assert stored.arm.tolist() == arms(buckets(1, ids), 50, 5).tolist()
    assert {str(d)[:10] for d in stored.assigned_on} == {str(S)}

    due = due_stages(store, S + timedelta(days=1)).set_index("customer_id")["config_id"].to_dict()
    assert due == {**{c: 2 for c in CHALLENGER}, **{c: 1 for c in CHAMPION}, "Z900": 1}  # the holdout: nothing

    with store.write() as conn:  # a rate for the reporting currency itself changes nothing (counted once)
        conn.exec_driver_sql("INSERT INTO fx_rates (rate_date, currency, rate) VALUES ('2026-01-01', 'USD', 1)")
    result = experiment_result(store, experiment(store, "Firm early on smb"), AS_OF)
    by_arm = {r["arm"]: r for r in result["arms"]}
    assert by_arm["champion"]["overdue"] == pytest.approx(1900) and by_arm["champion"]["collected"] == pytest.approx(200)
    assert by_arm["challenger"]["ratio"] == pytest.approx(0.7) and by_arm["holdout"]["ratio"] == pytest.approx(0.25)
    assert by_arm["challenger"]["paid_in_full_share"] == 0.5 and by_arm["challenger"]["median_days_to_pay"] == 10
    assert result["comparison"]["difference"] == pytest.approx(0.7 - 200 / 1900)
    assert result["sequential"]["look"] == 1 and result["verdict"]["boundary"] == pytest.approx(1.977 * math.sqrt(2))

    with store.write() as conn:  # a new customer of the segment joins on arrival
        conn.exec_driver_sql("INSERT INTO customers (customer_id, name, segment, currency, created_at) "
                             "VALUES ('K777', 'New', 'smb', 'USD', CURRENT_TIMESTAMP)")
        assert assign_arrivals(conn, S + timedelta(days=2)) == 1
        assert assign_arrivals(conn, S + timedelta(days=3)) == 0  # stored once, never again
    row = store.read("SELECT bucket, arm, assigned_on FROM experiment_assignments WHERE customer_id = 'K777'").iloc[0]
    assert int(row.bucket) == bucket_of(1, "K777") and row.arm == arm_of_bucket(bucket_of(1, "K777"), 50, 5)

    stop_experiment(store, ANALYST, "Firm early on smb", "enough", S + timedelta(days=1))
    assert set(due_stages(store, S + timedelta(days=1)).config_id) == {1}  # everyone back on their own policy, holdout included
    assert len(due_stages(store, S + timedelta(days=1))) == 7  # the seven invoices; K777 has none
    stopped = experiment_result(store, experiment(store, "Firm early on smb"), AS_OF)
    assert stopped["measured_on"] == S + timedelta(days=1)  # windows closed by the end only: none yet
    assert [a["customers"] for a in stopped["arms"]] == [0, 0, 0] and stopped["verdict"]["decision"] == "no_data"


def test_lifecycle_is_checked_and_audited(store) -> None:
    build_experiment_ledger(store)
    with pytest.raises(PermissionDenied):
        start_experiment(store, COLLECTOR, "x", "smb", 1, 2, as_of=S)
    for kwargs, words in (({"challenger_config_id": 1}, "same policy"), ({"holdout_pct": 6}, "0 to 5 %"),
                          ({"challenger_pct": 100}, "1 to 99 %"), ({"challenger_config_id": 9}, "does not exist"),
                          ({"segment": "nobody"}, "has no customers"), ({"looks": 11}, "1 to 10 looks")):
        args = {"name": "x", "segment": "smb", "champion_config_id": 1, "challenger_config_id": 2, **kwargs}
        with pytest.raises(ExperimentError, match=words):
            start_experiment(store, ANALYST, as_of=S, **args)
    start_experiment(store, ANALYST, "first", "smb", 1, 2, as_of=S)
    with pytest.raises(ExperimentError, match="already running on the segment"):
        start_experiment(store, ANALYST, "second", "smb", 1, 2, as_of=S)
    with pytest.raises(PermissionDenied):
        stop_experiment(store, COLLECTOR, "first")
    promoted = promote_winner(store, ANALYST, "first", "challenger", "the challenger collects more", S)
    assert promoted["segment_rule_set"] is None and promoted["customers_changed"] == 6  # no rules: customers set
    assert store.read("SELECT DISTINCT dunning_config_id FROM customers WHERE segment = 'smb'").iloc[:, 0].tolist() == [2]
    assert store.scalar("SELECT dunning_config_id FROM customers WHERE customer_id = 'Z900'") == 1
    with pytest.raises(ExperimentError, match="is promoted, not running"):
        stop_experiment(store, ANALYST, "first")
    log = store.read("SELECT action, entity, entity_id, actor FROM audit_log WHERE action LIKE 'experiment.%' "
                     "OR action = 'customer.dunning_config' ORDER BY audit_id")
    assert log.action.tolist() == ["experiment.start", *["customer.dunning_config"] * 6, "experiment.promote"]
    assert set(log.actor) == {"ana.lyst"}

    # With segmentation rules saved, promotion saves a new version whose first rule names the winner
    save_rules(store, SYSTEM, [Rule("Everyone", 1)], "one policy", S)
    start_experiment(store, ANALYST, "back", "smb", 2, 1, 10, as_of=S)
    done = promote_winner(store, ANALYST, "back", "challenger", "", S)
    rules = current_rule_set(store)
    assert done["segment_rule_set"] == rules["version"] == 2
    assert [(r.name, r.policy_id, [c.as_dict() for c in r.conditions]) for r in rules["rules"]] == [
        ("smb (experiment back)", 1, [{"field": "segment", "op": "=", "value": "smb"}]), ("Everyone", 1, [])]


def test_cli_start_report_json_list_and_stop(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "cli.duckdb")
    store = connect(db)
    build_experiment_ledger(store)
    store.close()
    assert main(["--db", db, "experiments", "start", "cli test", "--segment", "smb", "--champion", "1",
                 "--challenger", "2", "--holdout", "5", "--days", "60", "--looks", "2",
                 "--as-of", str(S)]) == 0
    assert "6 customer(s) assigned (challenger 2, champion 2, holdout 2)" in capsys.readouterr().out
    assert main(["--db", db, "experiments", "report", "cli test", "--as-of", str(AS_OF), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {a["arm"]: round(a["ratio"], 6) for a in report["arms"]} == {
        "champion": round(200 / 1900, 6), "challenger": 0.7, "holdout": 0.25}
    assert report["srm"]["blocked"] is False and report["sequential"]["method"].startswith("O'Brien-Fleming")
    assert report["verdict"]["decision"] in ("continue", "challenger_wins")
    assert main(["--db", db, "experiments", "list", "--format", "csv"]) == 0
    assert "cli test,smb" in capsys.readouterr().out
    assert main(["--db", db, "experiments", "stop", "nope"]) == 2
    assert "There is no experiment 'nope'" in capsys.readouterr().err
    assert main(["--db", db, "experiments", "stop", "cli test", "--reason", "done"]) == 0


def test_a_customers_import_brings_the_segments_new_customers_into_the_running_experiment(
        store, tmp_path: Path) -> None:
    build_experiment_ledger(store)
    start_experiment(store, ANALYST, "arrivals", "smb", 1, 2, 50, 0, as_of=S)
    path = tmp_path / "customers.csv"
    path.write_text("id,name,class\nN1,New One,smb\nN2,New Two,enterprise\nK002,Kept,smb\n")
    mapping = Mapping(dataset="customers", columns={"customer_id": "id", "name": "name", "segment": "class"})
    assert run_import(store, path, mapping, SYSTEM).status == "ok"
    joined = store.read("SELECT customer_id, bucket, arm, assigned_on FROM experiment_assignments "
                        "WHERE assigned_on > :s", {"s": S})
    # only N1 is new to the segment; it joins on the ledger's last date (S + 31), its arm by its own bucket
    assert joined.customer_id.tolist() == ["N1"] and str(joined.assigned_on[0])[:10] == str(AS_OF)
    assert joined.arm[0] == arm_of_bucket(bucket_of(1, "N1"), 50, 0)
    assert run_import(store, path, mapping, SYSTEM).status == "ok"
    assert store.scalar("SELECT COUNT(*) FROM experiment_assignments") == 7  # re-importing changes nothing


def test_while_the_app_owns_the_store_a_start_is_queued_and_run_by_the_app(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import analytics.cli.experiments as cli

    db = tmp_path / "owned.duckdb"
    store = connect(str(db))
    build_experiment_ledger(store)
    add_user(store, SYSTEM, "col.lector", "Col Lector", "collector")
    store.close()
    monkeypatch.delenv("ARDESK_INBOX", raising=False)
    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)

    def locked(_db=None):  # noqa: ANN001, ANN202 - as when the running app holds the DuckDB file
        raise StoreLocked(str(db), 4242)

    monkeypatch.setattr(cli, "connect", locked)
    folders = Folders(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", tmp_path / "quarantine")
    assert main(["--db", str(db), "experiments", "start", "queued", "--segment", "smb", "--champion", "1",
                 "--challenger", "2", "--as-of", str(S)]) == 0
    assert "owns the store" in capsys.readouterr().out
    assert main(["--db", str(db), "experiments", "stop", "queued", "--as", "col.lector"]) == 0
    assert len(pending_jobs(folders.inbox)) == 2
    store = connect(str(db))  # the app's process
    try:
        ingest_pending(store, folders)
        assert store.read("SELECT name, status, started_by FROM experiments").values.tolist() == [
            ["queued", "running", "system"]]
        assert store.scalar("SELECT COUNT(*) FROM experiment_assignments") == 6
    finally:
        store.close()
    errors = " ".join(p.read_text() for p in folders.failed.glob("*.error.txt"))
    assert "col.lector (Collector) may not run experiments" in errors
