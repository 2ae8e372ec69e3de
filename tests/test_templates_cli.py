"""`ardesk templates list|export|apply` (a template as a TOML file: checked, versioned with who, when
and why, audited), and the studio's writes (`segments apply|reassign`, `policies apply`, `templates
apply`) queued for the running app when it owns the DuckDB store, run once by its inbox watcher."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analytics.access.roles import SYSTEM
from analytics.access.users import add_user
from analytics.cli.main import main
from analytics.collections.dunning_policies import CONFIG_IDS
from analytics.ingest.inbox import Folders, ingest_job, ingest_pending, pending_jobs
from analytics.migrations import connect
from analytics.store.connection import StoreLocked
from analytics.store.ids import reserve_ids
from tests.conftest import stored_rows
from tests.test_segmentation import ENTERPRISE, GENTLE, STANDARD, T, build_desk

RULES_FILE = ('[[rule]]\nname = "Big"\npolicy = "Enterprise"\nconditions = [{ field = "open_ar", op = ">=", '
              'value = 1000 }]\n[[rule]]\nname = "Rest"\npolicy = "Standard"\n')
POLICY_FILE = ('[[policy]]\nname = "Patient"\ngrace_days = 3\n\n[[policy.stage]]\nname = "Nudge"\nday_offset = 5\n'
               'channels = [{ channel = "email", template = "reminder_friendly" }]\n')


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    """build_desk's five customers on Standard (C1 owes 5,000.00 due 2026-03-01), an analyst; closed."""
    db = tmp_path / "desk.duckdb"
    store = connect(str(db))
    build_desk(store)
    with store.write() as conn:
        reserve_ids(conn, CONFIG_IDS, 4)  # build_desk wrote policies 1 to 4 without the sequence
    add_user(store, SYSTEM, "al.analyst", "Al Analyst", "analyst")
    store.close()
    return db


def ardesk(db: Path, *args: str) -> int:
    return main(["--db", str(db), *args])


def _exported(db: Path, capsys: pytest.CaptureFixture, path: Path) -> str:
    assert ardesk(db, "templates", "export", "reminder_friendly") == 0
    text = capsys.readouterr().out
    path.write_text(text, encoding="utf-8")
    return text


def test_export_apply_unchanged_then_a_change_with_why_and_a_refused_file(
        desk: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "reminder_friendly.toml"
    text = _exported(desk, capsys, path)
    assert text.startswith("# AR Desk message template reminder_friendly: version 1, from the file config/templates.")
    assert ardesk(desk, "templates", "apply", str(path), "--as", "al.analyst") == 0
    assert "reminder_friendly: unchanged (equal to version 1); nothing saved." in capsys.readouterr().out
    assert stored_rows(desk, "SELECT COUNT(*) AS n FROM message_templates") == [{"n": 0}]

    path.write_text(text.replace("Kind regards,", "Warm regards,"), encoding="utf-8")
    assert ardesk(desk, "templates", "apply", str(path), "--dry-run", "--customer", "C1", "--as-of", str(T),
                  "--as", "al.analyst") == 0
    out = capsys.readouterr().out
    assert "would be saved as version 2 (dry run: nothing written)" in out
    # C1's invoice I1 (5,000.00, due 2026-03-01) is past due on 2026-03-11
    assert f"Preview for C1 as of {T}:\nSubject: Friendly reminder: 1 open invoice for Customer C1" in out
    assert "I1 dated 2026-01-30, due 2026-03-01: 5,000.00 USD (10 days overdue)" in out and "Warm regards," in out
    assert stored_rows(desk, "SELECT COUNT(*) AS n FROM message_templates") == [{"n": 0}]

    assert ardesk(desk, "templates", "apply", str(path), "--why", "warmer sign-off", "--as", "al.analyst") == 0
    assert "reminder_friendly: saved as version 2 (new version)." in capsys.readouterr().out
    assert ardesk(desk, "templates", "list", "--format", "json") == 0
    listed = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert (listed["reminder_friendly"]["version"], listed["reminder_friendly"]["saved_by"],
            listed["reminder_friendly"]["why"]) == (2, "al.analyst", "warmer sign-off")
    assert (listed["final_notice"]["version"], listed["final_notice"]["saved_by"]) == (1, "config/templates")
    assert stored_rows(desk, "SELECT actor, entity_id, detail FROM audit_log WHERE action = 'template.save'") == [
        {"actor": "al.analyst", "entity_id": "reminder_friendly v2", "detail": "warmer sign-off"}]
    _exported(desk, capsys, path)  # the round trip of a saved version: unchanged again
    assert ardesk(desk, "templates", "apply", str(path)) == 0
    assert "unchanged (equal to version 2)" in capsys.readouterr().out

    assert ardesk(desk, "templates", "apply", str(path), "--as", "ana.collector") == 2
    assert "ana.collector (Collector) may not edit templates" in capsys.readouterr().err
    path.write_text(text.replace("Kind regards,", "Regards, {{ sender_nmae }}"), encoding="utf-8")
    assert ardesk(desk, "templates", "apply", str(path)) == 2
    err = capsys.readouterr().err
    assert "the template cannot be saved:\n  - Unknown variable 'sender_nmae' in the plain-text body, line 21" in err  # line 23 of the .j2, after Subject and a blank line
    path.write_text(text.replace("{% for inv in invoices -%}", "{% for inv in %}"), encoding="utf-8")
    assert ardesk(desk, "templates", "apply", str(path)) == 2
    assert "Syntax error in the plain-text body, line 5:" in capsys.readouterr().err
    path.write_text('name = "x"\nsubject = 1\n', encoding="utf-8")
    assert ardesk(desk, "templates", "apply", str(path)) == 2
    err = capsys.readouterr().err
    assert "The key body_text is missing." in err and "subject must be text (a string), not int." in err
    assert ardesk(desk, "templates", "export", "no_such") == 2
    assert "There is no template 'no_such'" in capsys.readouterr().err


def _app_owns_the_store(monkeypatch: pytest.MonkeyPatch, db: Path) -> None:
    """As when the running app holds the DuckDB file: the command line cannot open it, not even read-only."""
    import analytics.cli.policies
    import analytics.cli.segments
    import analytics.cli.templates

    def locked(_db=None):  # noqa: ANN001, ANN202
        raise StoreLocked(str(db), 4242)

    for module in (analytics.cli.policies, analytics.cli.segments, analytics.cli.templates):
        monkeypatch.setattr(module, "connect", locked)


def test_while_the_app_owns_the_store_studio_writes_are_queued_and_applied_once(
        desk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("ARDESK_INBOX", raising=False)
    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)
    folders = Folders(desk.parent / "inbox", desk.parent / "done", desk.parent / "failed", desk.parent / "quarantine")
    template = tmp_path / "t.toml"
    text = _exported(desk, capsys, template)
    template.write_text(text.replace("Kind regards,", "Warm regards,"), encoding="utf-8")
    rules, policy = tmp_path / "rules.toml", tmp_path / "policy.toml"
    rules.write_text(RULES_FILE, encoding="utf-8")
    policy.write_text(POLICY_FILE, encoding="utf-8")
    _app_owns_the_store(monkeypatch, desk)

    def queued(*args: str) -> str:
        assert ardesk(desk, *args) == 0
        out = capsys.readouterr().out
        assert "owns the store" in out
        return out.split("as job ", 1)[1].split(";", 1)[0]

    jobs = {"preview": queued("templates", "apply", str(template), "--dry-run", "--customer", "C1", "--as-of", str(T),
                              "--as", "al.analyst"),
            "template": queued("templates", "apply", str(template), "--why", "warmer", "--as", "al.analyst"),
            "policy": queued("policies", "apply", str(policy), "--as", "al.analyst", "--reason", "patient one"),
            "rules": queued("segments", "apply", str(rules), "--as-of", str(T), "--as", "al.analyst",
                            "--reason", "big ones"),
            "reassign": queued("segments", "reassign", "--as-of", str(T), "--as", "ana.collector")}
    assert len(pending_jobs(folders.inbox)) == 5
    assert ardesk(desk, "templates", "apply", str(template), "--dry-run", "--customer", "C1", "--as-of", str(T),
                  "--as", "al.analyst") == 0  # the same dry run waiting: reused
    capsys.readouterr()
    assert len(pending_jobs(folders.inbox)) == 5
    template.write_text(text.replace("Kind regards,", "{{ nobody }}"), encoding="utf-8")
    assert ardesk(desk, "templates", "apply", str(template)) == 2  # a bad file is said now, never queued
    assert "Unknown variable 'nobody'" in capsys.readouterr().err
    assert len(pending_jobs(folders.inbox)) == 5
    rules_job = folders.inbox / f"{jobs['rules']}.job.json"
    copy = shutil.copy(rules_job, tmp_path / "copy.job.json")

    store = connect(str(desk))  # the app's process
    try:
        ingest_job(store, folders.inbox / f"{jobs['preview']}.job.json", folders)  # before the save it previews
        ingest_pending(store, folders)
        shutil.copy(copy, rules_job)  # a crash between commit and moving the job: it runs again
        ingest_pending(store, folders)
    finally:
        store.close()

    def result(name: str) -> dict:
        return json.loads((folders.done / f"{jobs[name]}.result.json").read_text())

    preview = result("preview")
    assert (preview["action"], preview["outcome"], preview["version"]) == ("templates_apply", "would save", 2)
    assert preview["preview"]["customer_id"] == "C1" and "Warm regards," in preview["preview"]["body"]
    assert (result("template")["version"], result("policy")["policies"]) == (
        2, [{"name": "Patient", "action": "created", "version": 1}])
    assert (result("rules")["outcome"], result("rules")["version"], result("rules")["customers_changed"]) == (
        "unchanged", 1, 0)  # the second run of the job: the rules equal the active version
    refused = (folders.failed / f"{jobs['reassign']}.job.json.error.txt").read_text()
    assert "ana.collector (Collector) may not edit segments" in refused  # checked when the app runs it
    assert stored_rows(desk, "SELECT name, version, created_by FROM message_templates ORDER BY version") == [
        {"name": "reminder_friendly", "version": 1, "created_by": "config/templates"},
        {"name": "reminder_friendly", "version": 2, "created_by": "al.analyst"}]
    assert stored_rows(desk, "SELECT version, created_by, reason FROM segment_rule_sets") == [
        {"version": 1, "created_by": "al.analyst", "reason": "big ones"}]
    assert stored_rows(desk, "SELECT customer_id, dunning_config_id AS c FROM customers ORDER BY customer_id") == [
        {"customer_id": "C1", "c": ENTERPRISE}, {"customer_id": "C2", "c": STANDARD},
        {"customer_id": "C3", "c": ENTERPRISE}, {"customer_id": "C4", "c": STANDARD},
        {"customer_id": "C5", "c": STANDARD}]  # C1 5,000 and C3 2,000 have at least 1,000 open
    assert stored_rows(desk, "SELECT actor, detail FROM audit_log WHERE action LIKE 'dunning_policy.%'") == [
        {"actor": "al.analyst", "detail": "patient one"}]
    assert GENTLE not in {r["c"] for r in stored_rows(desk, "SELECT dunning_config_id AS c FROM customers")}
