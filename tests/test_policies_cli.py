"""`ardesk policies` end to end, and imported dunning history and new runs under one policy's names."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from analytics.access.roles import SYSTEM, Actor
from analytics.cli.main import main
from analytics.collections.dunning_configs import adopt_configuration
from analytics.collections.dunning_policies import Channel, Stage, load_policy, save_policy
from analytics.collections.dunning_schedule import due_stages
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.kpis.dunning_effectiveness import dunning_effectiveness
from analytics.migrations import connect
from analytics.store.connection import Store
from tests.test_dunning_policies import _record

POLICIES = """
[[policy]]
name = "Gentle"
grace_days = 2

[[policy.stage]]
name = "Nudge"
day_offset = 1
channels = [{ channel = "email", template = "reminder_friendly" }]

[[policy.stage]]
name = "Letter"
day_offset = 20
basis = "previous_sent"
channels = [{ channel = "letter", template = "reminder_letter" }, { channel = "call" }]
fee = 10
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _books(tmp_path: Path) -> tuple[str, Store]:
    """C1 owes INV-1 (100, due 2024-02-04) and INV-2 (200, due 2024-02-09), imported; a dunning
    history under "Old policy" (stage 1 for both in February)."""
    db = str(tmp_path / "ardesk.duckdb")
    store = connect(db)
    run_import(store, _write(tmp_path, "inv.csv", "customer_id,document_number,posting_date,due_date,amount\n"
                             "C1,INV-1,2024-01-05,2024-02-04,100\nC1,INV-2,2024-01-10,2024-02-09,200\n"),
               Mapping(dataset="invoices"), SYSTEM)
    run_import(store, _write(tmp_path, "hist.csv", "document_number,configuration,stage_order,stage_name,channel,"
                             "run_date,outcome\nINV-1,Old policy,1,Reminder,email,2024-02-07,sent\n"
                             "INV-2,Old policy,1,Reminder,email,2024-02-14,sent\n"),
               Mapping(dataset="dunning-history"), SYSTEM)
    return db, store


def test_list_export_apply_and_simulate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db, store = _books(tmp_path)
    store.close()
    path = _write(tmp_path, "policies.toml", POLICIES)
    assert main(["--db", db, "policies", "apply", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing written" in out and "Gentle" in out and "created" in out
    assert main(["--db", db, "policies", "apply", str(path), "--as", "system", "--reason", "first cut"]) == 0
    assert "Applied 1 policy" in capsys.readouterr().out
    assert main(["--db", db, "policies", "list", "--format", "json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert (listed["Gentle"]["state"], listed["Gentle"]["stages"]) == ("active", 2)
    assert listed["Old policy"]["state"] == "history"
    assert main(["--db", db, "policies", "export"]) == 0
    exported = capsys.readouterr().out
    assert 'channels = [{ channel = "letter", template = "reminder_letter" }, { channel = "call" }]' in exported
    assert "fee = 10.00" in exported and 'name = "Old policy"' in exported
    # INV-1 due 4 Feb: +1 and 2 grace days = 7 Feb; the letter 20 days after: 27 Feb. INV-2 (due 9 Feb): 12 Feb, 3 Mar
    assert main(["--db", db, "policies", "simulate", str(path), "--from", "2024-02-01", "--to", "2024-03-05",
                 "--scope", "all", "--format", "json"]) == 0
    days = json.loads(capsys.readouterr().out)
    assert [(d["day"][:10], d["stage_no"], d["messages"], d["customers"], d["open_ar"]) for d in days] == [
        ("2024-02-07", 1, 1, 1, 100.0), ("2024-02-12", 1, 1, 1, 200.0),
        ("2024-02-27", 2, 2, 1, 100.0), ("2024-03-03", 2, 2, 1, 200.0)]  # the letter stage: letter and call
    bad = _write(tmp_path, "bad.toml", POLICIES.replace('basis = "previous_sent"', 'basis = "weekly"'))
    assert main(["--db", db, "policies", "apply", str(bad)]) == 2
    assert "stage 2: basis 'weekly' is not one of due, previous_sent, end_of_month" in capsys.readouterr().err
    assert main(["--db", db, "policies", "apply", str(path), "--as", "nobody"]) == 2


def test_imported_history_and_new_runs_show_under_the_same_policy_names(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    db, store = _books(tmp_path)
    analyst = Actor("al.analyst", "analyst")
    adopt_configuration(store, analyst, "Old policy")
    old = load_policy(store, "Old policy")
    assert old.version == 1 and [s.name for s in old.stages] == ["Reminder"]
    # v1 has (imported) runs: the edit adds a letter 30 days after the due date as version 2
    edited = save_policy(store, analyst, replace(
        old, stages=(*old.stages, Stage(2, "Letter", 30, (Channel("letter", "reminder_letter"),)))))
    assert edited["action"] == "new version" and edited["version"] == 2
    assert due_stages(store, date(2024, 3, 4)).empty
    assert due_stages(store, date(2024, 3, 5))["document_number"].tolist() == ["INV-1"]  # due 4 Feb + 30, inclusive
    assert _record(store, date(2024, 3, 10)) == [("INV-1", 2), ("INV-2", 2)]  # their stage 1 was imported
    stages = dunning_effectiveness(store, date(2024, 1, 1), date(2024, 3, 31))
    assert stages[["config_name", "config_version", "stage_no", "invoices"]].to_dict("records") == [
        {"config_name": "Old policy", "config_version": 1, "stage_no": 1, "invoices": 2},
        {"config_name": "Old policy", "config_version": 2, "stage_no": 2, "invoices": 2}]
    store.close()
    assert main(["--db", db, "report", "dunning", "--start", "2024-01-01", "--end", "2024-03-31",
                 "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert sum(line.count("Old policy") for line in out.splitlines()) == 2
