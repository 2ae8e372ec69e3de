"""Every channel of a due dunning stage acts once (email, letter, call, sms, escalation), the stage is
recorded once; manual stages wait for a collector's "approve and send" or "skip" (frozen clock). On the
pages: test_pages_dunning_approval.py."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.cli.main import main
from analytics.collections.automatic_dunning import run_automatic_dunning
from analytics.collections.dunning_approval import (
    StageApprovalError,
    approve_stage,
    skip_stage,
    stages_waiting,
)
from analytics.collections.dunning_channels import letter_of_task
from analytics.collections.dunning_policies import Channel, Policy, Stage, save_policy
from analytics.collections.dunning_schedule import due_stages
from analytics.collections.followups import open_dispute
from analytics.collections.statements import statement_items, statement_pdf
from analytics.collections.worklist import worklist
from analytics.ingest.inbox import Folders, ingest_pending, pending_jobs
from analytics.migrations import connect
from analytics.store.connection import Store, StoreLocked
from tests.collector_data import add_customer, add_invoice, setup_people

D0 = date(2026, 3, 10)  # the frozen clock: stage 1 (due + 1) is due on D0 for invoices due before it
D15 = D0 + timedelta(days=15)
ANA = Actor("ana.collector", "collector", "Ana Collector")
POLICY = Policy(name="Standard", stages=(
    Stage(1, "Reminder", 1, (Channel("email", "reminder_friendly"), Channel("letter", "reminder_letter"),
                             Channel("call"))),
    Stage(2, "Personal", 20, (Channel("email", "reminder_firm"), Channel("sms", "reminder_firm"),
                              Channel("escalation")), mode="manual"),
    Stage(3, "Final", 40, (Channel("call"),))))


def _rows(store: Store, sql: str) -> list[dict]:
    frame = store.read(sql).astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def _books(store: Store) -> Store:
    """C1: INV-1a 300 and INV-1b 200, C2: INV-2 800, C3: INV-3 900, all due D0 - 5 (ana.collector's)."""
    setup_people(store)
    save_policy(store, SYSTEM, POLICY)  # config 1, the customers' policy
    for cid, docs in (("C1", (("INV-1a", 300), ("INV-1b", 200))), ("C2", (("INV-2", 800),)),
                      ("C3", (("INV-3", 900),))):
        add_customer(store, cid)
        for doc, amount in docs:
            add_invoice(store, cid, doc, D0 - timedelta(days=35), D0 - timedelta(days=5), amount)
    return store


def _runs(store: Store) -> list[tuple]:
    return [(r["document_number"], r["stage_no"], str(r["run_date"]), r["outcome"]) for r in _rows(store, """
        SELECT e.document_number, r.stage_no, CAST(r.run_date AS VARCHAR(10)) AS run_date, r.outcome FROM dunning_runs r
        JOIN ledger_entries e ON e.entry_id = r.entry_id ORDER BY 1, 2""")]


def _tasks(store: Store) -> list[tuple]:
    return [(r["customer_id"], r["subject"], r["assignee"], str(r["due_date"])) for r in _rows(
        store, "SELECT customer_id, subject, assignee, CAST(due_date AS VARCHAR(10)) AS due_date FROM activities WHERE kind = 'task' ORDER BY 1, 2")]


def test_every_channel_of_an_automatic_stage_acts_once_and_the_stage_is_recorded_once(store: Store, smtp) -> None:
    handler, config = smtp
    books = _books(store)
    dry = run_automatic_dunning(books, SYSTEM, D0, dry_run=True, config=config)
    assert dry[["customer_id", "channel", "status", "action"]].values.tolist() == [
        ["C1", "email", "would send", "email reminder_friendly"],
        ["C2", "email", "would send", "email reminder_friendly"],
        ["C3", "email", "would send", "email reminder_friendly"],
        ["C1", "letter", "would create task", "task for ana.collector: Post letter Reminder (reminder_letter)"],
        ["C2", "letter", "would create task", "task for ana.collector: Post letter Reminder (reminder_letter)"],
        ["C3", "letter", "would create task", "task for ana.collector: Post letter Reminder (reminder_letter)"],
        ["C1", "call", "would create task", "task for ana.collector: Call Reminder"],
        ["C2", "call", "would create task", "task for ana.collector: Call Reminder"],
        ["C3", "call", "would create task", "task for ana.collector: Call Reminder"]]
    assert _runs(books) == [] and _tasks(books) == [] and handler.messages == []

    done = run_automatic_dunning(books, SYSTEM, D0, config=config)
    assert sorted(done[["customer_id", "channel", "status"]].values.tolist()) == sorted(
        [[c, "email", "sent"] for c in ("C1", "C2", "C3")] + [[c, ch, "task created"] for c in ("C1", "C2", "C3")
                                                                for ch in ("letter", "call")])
    assert sorted(m["To"] for m in handler.messages) == ["ap@c1.example", "ap@c2.example", "ap@c3.example"]
    # the invoice's stage once, not once per channel (the email recorded it; the tasks add no run)
    assert _runs(books) == [("INV-1a", 1, str(D0), "sent"), ("INV-1b", 1, str(D0), "sent"),
                            ("INV-2", 1, str(D0), "sent"), ("INV-3", 1, str(D0), "sent")]
    assert _tasks(books) == [(c, s, "ana.collector", str(D0)) for c in ("C1", "C2", "C3")
                             for s in ("Call: Reminder", "Post letter: Reminder (reminder_letter)")]
    letter = books.scalar("SELECT body FROM activities WHERE customer_id = 'C1' AND subject LIKE 'Post letter%'")
    assert "post it" in letter and "INV-1a" in letter and "INV-1b" in letter  # the rendered letter, to print
    text = letter_of_task(letter)
    assert text.startswith("Subject: ") and "INV-1a" in text and "post it" not in text
    assert statement_pdf("Customer C1", "C1", "USD", statement_items(books, "C1", D0), D0,
                         letter=text).startswith(b"%PDF")
    items = worklist(books, D0, "ana.collector")
    assert sorted(items.loc[items["reason"] == "task_due", "customer_id"]) == ["C1", "C1", "C2", "C2", "C3", "C3"]
    assert not (items["reason"] == "dunning_stage").any()  # the stage was run: off the list

    again = run_automatic_dunning(books, SYSTEM, D0, config=config)  # the same day, e.g. a second cron
    assert again.empty and len(handler.messages) == 3 and len(_tasks(books)) == 6 and len(_runs(books)) == 4
    audited = books.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'activity.task'")
    assert audited == 6


def test_a_call_only_stage_is_recorded_by_its_task_and_a_back_dated_run_records_its_date(store: Store) -> None:
    books = _books(store)
    with books.write() as conn:  # stages 1 and 2 already sent for every invoice
        for stage, day in ((1, "2026-03-11"), (2, "2026-03-30")):
            conn.exec_driver_sql(
                "INSERT INTO dunning_runs SELECT nextval('dunning_run_id_seq'), entry_id, customer_id, 1, 1, "
                f"{stage}, DATE '{day}', 'sent' FROM ledger_entries ORDER BY entry_id")
    day = D0 + timedelta(days=36)  # due + 41: stage 3 (a call only, automatic), run for a past day
    done = run_automatic_dunning(books, SYSTEM, day)
    assert done[["customer_id", "channel", "status"]].values.tolist() == [
        ["C1", "call", "task created"], ["C2", "call", "task created"], ["C3", "call", "task created"]]
    assert [r for r in _runs(books) if r[1] == 3] == [("INV-1a", 3, str(day), "sent"), ("INV-1b", 3, str(day), "sent"),
                                                      ("INV-2", 3, str(day), "sent"), ("INV-3", 3, str(day), "sent")]
    assert _rows(books, "SELECT entity_id, new_values FROM audit_log WHERE action = 'dunning.stage_run' "
                        "AND entity_id = 'C1'")[0]["new_values"].endswith('"stage_no":3,"invoices":2}')
    assert run_automatic_dunning(books, SYSTEM, day).empty


def test_a_manual_stage_waits_then_approve_sends_its_channels_once_and_skip_moves_on(
        store_on_each_engine: Store, smtp) -> None:
    """On DuckDB and PostgreSQL (the tasks and runs go in by COPY there, the escalation by one UPDATE)."""
    handler, config = smtp
    books = _books(store_on_each_engine)
    run_automatic_dunning(books, SYSTEM, D0, config=config)  # stage 1 for everyone
    handler.messages.clear()
    assert run_automatic_dunning(books, SYSTEM, D15, config=config).empty  # stage 2 is manual: the run leaves it
    waiting = stages_waiting(books, D15, "ana.collector")
    assert waiting[["customer_id", "stage_no", "channels", "invoices", "open_amount"]].values.tolist() == [
        ["C3", 2, "email (reminder_firm), sms (reminder_firm), escalation", 1, 900.0],
        ["C2", 2, "email (reminder_firm), sms (reminder_firm), escalation", 1, 800.0],
        ["C1", 2, "email (reminder_firm), sms (reminder_firm), escalation", 2, 500.0]]

    with pytest.raises(PermissionDenied):
        approve_stage(books, Actor("val.viewer", "viewer"), "C1", D15, config=config)
    done = approve_stage(books, ANA, "C1", D15, config=config)
    assert (done["status"], done["stage_no"], done["repeated"]) == ("sent", 2, False)
    assert done["channels"] == "email: sent; sms: task created; escalation: escalated"
    assert [m["To"] for m in handler.messages] == ["ap@c1.example"]
    assert [r for r in _runs(books) if r[1] == 2] == [("INV-1a", 2, str(D15), "sent"), ("INV-1b", 2, str(D15), "sent")]
    sms = books.scalar("SELECT body FROM activities WHERE subject LIKE 'Send SMS%'")
    assert "no SMS gateway" in sms
    assert books.scalar("SELECT status FROM customers WHERE customer_id = 'C1'") == "escalated"
    assert books.scalar("SELECT COUNT(*) FROM activities WHERE kind = 'escalation' AND target = 'manager'") == 1
    assert "C1" not in stages_waiting(books, D15)["customer_id"].tolist()  # the item left the list

    twice = approve_stage(books, ANA, "C1", D15, config=config)
    assert twice["repeated"] and len(handler.messages) == 1 and len([r for r in _runs(books) if r[1] == 2]) == 2
    assert books.scalar("SELECT COUNT(*) FROM activities WHERE kind IN ('task', 'escalation') "
                        "AND customer_id = 'C1'") == 4  # letter and call of stage 1, sms and escalation of stage 2
    assert books.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'dunning.approve'") == 1

    open_dispute(books, ANA, "C3", "Wrong price", None, "sales", entry_ids=[4])  # logged today, after D15
    with pytest.raises(StageApprovalError, match="INV-3 disputed"):
        approve_stage(books, ANA, "C3", D15, config=config)
    assert len(handler.messages) == 1 and not [r for r in _runs(books) if r[0] == "INV-3" and r[1] == 2]

    skipped = skip_stage(books, ANA, "C2", D15)
    assert (skipped["status"], skipped["invoices"]) == ("skipped", 1)
    assert ("INV-2", 2, str(D15), "waived") in _runs(books)
    assert skip_stage(books, ANA, "C2", D15)["repeated"]
    assert stages_waiting(books, D15).empty  # C1 approved, C2 skipped, C3 disputed now: nothing to approve
    later = due_stages(books, D0 + timedelta(days=45))  # waived counts as passed: INV-2 goes on to stage 3
    assert later.loc[later["document_number"] == "INV-2", "stage_no"].tolist() == [3]
    with pytest.raises(StageApprovalError, match="no invoice is due for a manual stage"):
        approve_stage(books, ANA, "C2", D0 + timedelta(days=16), config=config)


def test_cli_approve_is_queued_while_the_app_owns_the_store_and_runs_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import analytics.cli.followup as cli

    monkeypatch.delenv("ARDESK_INBOX", raising=False)
    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)
    db = tmp_path / "ardesk.duckdb"
    store = _books(connect(str(db)))
    save_policy(store, SYSTEM, Policy(name="Standard", config_id=1, stages=(  # no run yet: edited in place
        Stage(1, "Call first", 1, (Channel("call"), Channel("sms")), mode="manual"),)))
    store.close()

    def locked(_db=None):  # noqa: ANN001, ANN202 - as when the running app holds the DuckDB file
        raise StoreLocked(str(db), 4242)

    monkeypatch.setattr(cli, "connect", locked)
    args = ("dunning", "approve", "C2", "--as-of", str(D0), "--as", "ana.collector")
    assert main(["--db", str(db), *args]) == 0
    assert "owns the store" in capsys.readouterr().out
    folders = Folders(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", tmp_path / "quarantine")
    [job] = pending_jobs(folders.inbox)
    queued = json.loads(job.read_text())
    assert (queued["action"], queued["arguments"]) == ("dunning_approve",
                                                       {"customer_id": "C2", "stage": None, "as_of": str(D0)})
    store = connect(str(db))  # the app's process
    try:
        ingest_pending(store, folders)
        assert _tasks(store) == [("C2", "Call: Call first", "ana.collector", str(D0)),
                                 ("C2", "Send SMS: Call first", "ana.collector", str(D0))]
        assert _runs(store) == [("INV-2", 1, str(D0), "sent")]
    finally:
        store.close()
    result = json.loads((folders.done / job.name.replace(".job.json", ".result.json")).read_text())
    assert (result["action"], result["status"], result["stage_no"]) == ("dunning_approve", "sent", 1)
    monkeypatch.undo()
    assert main(["--db", str(db), *args, "--format", "json"]) == 0  # directly now: done once already
    assert json.loads(capsys.readouterr().out)[0]["repeated"] is True
    assert main(["--db", str(db), "dunning", "approve", "C9", "--as-of", str(D0), "--as", "ana.collector"]) == 2
    assert "there is no such customer" in capsys.readouterr().err
