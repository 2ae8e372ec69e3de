"""Several app instances watch one inbox: each job is claimed by one of them and run exactly once (issue 18).

Two watcher processes on one PostgreSQL store take 20 queued jobs (notes without an idempotency key,
so a job run twice would write two notes, and imports, whose every run adds an `import_runs` row). A
process killed with -9 while holding a claim loses nothing: the next watcher puts the job back and
runs it once. A claim by a live process, or by another host, is never taken. On PostgreSQL the
command line writes directly even while an app runs: nothing is queued.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from analytics.access.roles import SYSTEM, Actor
from analytics.cli.main import main
from analytics.ingest.inbox import (
    Folders,
    claim_job,
    claims,
    ingest_pending,
    pending_jobs,
    recover_claims,
    stage_action,
    stage_import,
    stalled_claims,
    start_inbox_watcher,
    waiting_jobs,
)
from analytics.ingest.mapping import Mapping
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_invoice, setup_people
from tests.conftest import interruptible

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
T = date.today()
INVOICES = Mapping(dataset="invoices", columns={
    "customer_id": "cust", "document_number": "doc", "posting_date": "date", "amount": "amount"})
ANA = Actor("ana.collector", "", "")

# A watcher process as the app runs it; it prints each job it claims (the test's own instrumentation).
WATCHER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import analytics.ingest.inbox as inbox
    from analytics.migrations import connect
    claim = inbox.claim_job
    def claim_and_say(job, folders):
        claimed = claim(job, folders)
        if claimed is not None:
            print("claimed", job.name, flush=True)
        return claimed
    inbox.claim_job = claim_and_say
    store = connect(sys.argv[1])
    print("watching", flush=True)  # before the thread starts: its "claimed" lines come after, never first
    inbox.start_inbox_watcher(store, Path(sys.argv[2]), interval_s=0.05)
    while True:
        time.sleep(0.1)
""")

# A process that claims one job and then hangs, as a watcher stuck in a long import would.
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from analytics.ingest.inbox import Folders, claim_job
    inbox = Path(sys.argv[1])
    folders = Folders(inbox, inbox.parent / "done", inbox.parent / "failed", inbox.parent / "quarantine")
    job = inbox / sys.argv[2]
    assert claim_job(job, folders) is not None
    print("claimed", job.name, flush=True)
    while True:
        time.sleep(0.1)
""")


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Folders:
    monkeypatch.setenv("ARDESK_INBOX", str(tmp_path / "inbox"))  # the CLI's `folders_for` finds this one
    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)  # the key file beside the inbox, shared by all
    return Folders(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", tmp_path / "quarantine")


@pytest.fixture
def desk(pg_store: Store) -> Store:
    """ana.collector's customers C1..C4, each with one overdue invoice, on the test PostgreSQL."""
    setup_people(pg_store)
    for n in range(1, 5):
        add_customer(pg_store, f"C{n}")
        add_invoice(pg_store, f"C{n}", f"INV-{n}", T - timedelta(days=40), T - timedelta(days=10), 100 * n)
    return pg_store


def _start(script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc


def _expect_line(proc: subprocess.Popen, expected: list[str]) -> None:
    """The process's next line is `expected` (split in words); else stop it and fail with all it printed
    (reading stderr of a process that goes on running would wait for ever)."""
    line = proc.stdout.readline()
    if line.split() != expected:
        proc.kill()
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"expected {' '.join(expected)!r}, got {line!r}; then stdout {out!r}, stderr {err!r}")


def _stop(proc: subprocess.Popen) -> str:
    """Stop `proc` (if still running) and return what it printed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return out


def _wait_until_done(folders: Folders, procs: list[subprocess.Popen], budget_s: float = 30) -> None:
    deadline = time.monotonic() + budget_s
    while pending_jobs(folders.inbox) and time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "a watcher stopped"
        time.sleep(0.1)
    assert pending_jobs(folders.inbox) == [], "every job ran within the budget"


def _imports(folders: Folders, n: int) -> dict[str, list[str]]:
    """`n` queued import jobs of two new invoices each: {job file name: its documents}."""
    jobs = {}
    for i in range(n):
        docs = [f"Q{i}-1", f"Q{i}-2"]
        rows = pa.table({"cust": ["C1", "C2"], "doc": docs, "date": [str(T - timedelta(days=5))] * 2,
                         "amount": ["10.50", "20.25"]})
        jobs[stage_import(folders.inbox, rows, INVOICES, SYSTEM, source_label=f"q{i}.csv").name] = docs
    return jobs


def _notes(folders: Folders, n: int) -> dict[str, str]:
    """`n` queued notes without an idempotency key (so each run writes one): {job file name: text}."""
    return {stage_action(folders.inbox, "note", {"customer_id": f"C{1 + i % 4}", "text": f"note {i}"}, ANA).name:
            f"note {i}" for i in range(n)}


def _counts(store: Store, sql: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in store.read(sql).itertuples(index=False)}


def _assert_each_ran_once(store: Store, folders: Folders, notes: dict[str, str], imports: dict[str, list[str]]) -> None:
    assert _counts(store, "SELECT body, COUNT(*) FROM activities WHERE kind = 'note' GROUP BY body") == {
        text: 1 for text in notes.values()}
    documents = [d for docs in imports.values() for d in docs]
    assert _counts(store, "SELECT document_number, COUNT(*) FROM ledger_entries WHERE document_number LIKE 'Q%' "
                          "GROUP BY document_number") == dict.fromkeys(documents, 1)
    assert int(store.scalar("SELECT COUNT(*) FROM import_runs")) == len(imports)  # one run per import job
    done = sorted(p.name for p in folders.done.glob("*.job.json"))
    assert done == sorted([*notes, *imports])
    for name in notes:  # the note each job wrote
        result = json.loads((folders.done / name.replace(".job.json", ".result.json")).read_text())
        assert result["action"] == "note"
    assert sorted(p.name for p in folders.done.glob("*.parquet")) == sorted(
        n.replace(".job.json", ".parquet") for n in imports)
    assert not list(folders.claimed.iterdir()) and waiting_jobs(folders.inbox) == []
    assert not folders.failed.exists() or not list(folders.failed.iterdir())


def test_two_watcher_processes_run_each_of_20_jobs_once(desk: Store, folders: Folders) -> None:
    watchers = [_start(WATCHER, desk.url, str(folders.inbox)) for _ in range(2)]
    outs = []
    try:
        for proc in watchers:
            _expect_line(proc, ["watching"])
        imports = _imports(folders, 3)  # queued while both watch: they race for each job
        notes = _notes(folders, 17)
        _wait_until_done(folders, watchers)
    finally:
        outs = [_stop(proc) for proc in watchers]

    _assert_each_ran_once(desk, folders, notes, imports)
    claimed = [[line.split()[1] for line in out.splitlines() if line.startswith("claimed")] for out in outs]
    assert sorted(claimed[0] + claimed[1]) == sorted([*notes, *imports])  # each claimed by exactly one


def test_a_job_held_by_a_killed_watcher_runs_once_after_a_restart(desk: Store, folders: Folders) -> None:
    imports = _imports(folders, 1)
    notes = _notes(folders, 2)
    [held] = imports  # the holder takes the import: its JSON and its rows are claimed
    holder = _start(HOLDER, str(folders.inbox), held)
    restarted = None
    try:
        _expect_line(holder, ["claimed", held])
        ingest_pending(desk, folders)  # another instance: runs the rest, never the live holder's job
        assert sorted(c.path.name.split("@")[0] + c.path.suffix for c in claims(folders)) == [
            held.replace(".job.json", ".json"), held.replace(".job.json", ".parquet")]
        assert [p.name.split("@")[0] + ".job.json" for p in pending_jobs(folders.inbox)] == [held]

        holder.send_signal(signal.SIGKILL)  # not reaped yet: a zombie is gone too
        restarted = _start(WATCHER, desk.url, str(folders.inbox))
        _expect_line(restarted, ["watching"])
        _wait_until_done(folders, [restarted])
    finally:
        holder.kill()
        holder.communicate(timeout=30)
        if restarted is not None:
            _stop(restarted)

    _assert_each_ran_once(desk, folders, notes, imports)


def test_claims_by_a_live_owner_or_another_host_stay_claimed(folders: Folders) -> None:
    notes = _notes(folders, 3)
    first, second, third = (folders.inbox / name for name in sorted(notes))
    mine = claim_job(first, folders)  # this process: alive
    assert mine is not None and claim_job(first, folders) is None  # the second claim of one job loses
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = claim_job(second, folders)
    dead = dead.rename(dead.with_name(dead.name.replace(f"@{os.getpid()}@", f"@{gone.stdout.strip()}@")))
    remote = claim_job(third, folders)
    remote = remote.rename(remote.with_name(third.name.removesuffix(".job.json") + "@elsewhere@123@456.job.json"))
    old = time.time() - 31 * 60
    os.utime(remote, (old, old))

    assert recover_claims(folders) == [second]  # only the claim whose process has exited
    assert sorted(p.name for p in waiting_jobs(folders.inbox)) == [second.name]
    assert len(pending_jobs(folders.inbox)) == 3  # claimed jobs have not run yet
    assert [(c.host, c.path) for c in stalled_claims(folders)] == [("elsewhere", remote)]
    assert stalled_claims(folders, older_than_minutes=60) == []


def test_on_postgresql_the_cli_writes_directly_while_an_app_runs(desk: Store, folders: Folders,
                                                                  tmp_path: Path, capsys) -> None:
    watcher = start_inbox_watcher(desk, folders.inbox, interval_s=0.05)  # an app instance on the same store
    try:
        path = tmp_path / "cli.csv"
        path.write_text(f"customer_id,document_number,posting_date,amount\nC3,CLI-1,{T},99.95\n")
        assert main(["--db", desk.url, "import", "invoices", str(path)]) == 0
        assert main(["--db", desk.url, "followup", "note", "C3", "Direct note", "--as", "ana.collector"]) == 0
    finally:
        watcher.stop()
    assert "queued" not in capsys.readouterr().out.lower()
    assert not folders.inbox.exists() or not list(folders.inbox.rglob("*.json"))  # nothing was queued
    assert int(desk.scalar("SELECT COUNT(*) FROM ledger_entries WHERE document_number = 'CLI-1'")) == 1
    assert int(desk.scalar("SELECT COUNT(*) FROM activities WHERE body = 'Direct note'")) == 1
