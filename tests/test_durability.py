"""Nothing committed is lost: imports survive SIGTERM, SIGINT and kill -9 of every process that writes.

Each case commits a 200,000-row invoice import in a real process (the command line, or the inbox
watcher the app runs), stops that process with a signal, reopens the DuckDB file and compares the
ledger with a pandas computation of the source file; then the next import must work (no duplicate
key: ids come from sequences). A process killed in the middle of an import leaves nothing of it.
The same with the running app stopped is in `test_durability_app.py` (it serves the app, so it
runs with the app's tests; these run with the engine's).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.migrations import connect
from tests.conftest import empty_postgres, interruptible

ROOT = Path(__file__).resolve().parent.parent
ROWS = 200_000
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT, "kill -9": signal.SIGKILL}


def invoice_file(path: Path, rows: int, first_document: int, seed: int) -> pd.DataFrame:
    """An invoices export in AR Desk's own column names (no mapping needed)."""
    rng = np.random.default_rng(seed)
    posted = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 300, rows), unit="D")
    frame = pd.DataFrame({
        "customer_id": [f"C{i % 2_000:05d}" for i in range(rows)],
        "document_number": [f"INV-{first_document + i:08d}" for i in range(rows)],
        "posting_date": posted.strftime("%Y-%m-%d"),
        "due_date": (posted + pd.Timedelta(days=30)).strftime("%Y-%m-%d"),
        "amount": [f"{c / 100:.2f}" for c in rng.integers(1_00, 50_000_00, rows)],
    })
    frame.to_csv(path, index=False)
    return frame


def expected(*files: pd.DataFrame) -> dict[str, float]:
    """What the ledger must hold after importing `files`: computed from the files alone."""
    rows = pd.concat(files)
    cents = (rows["amount"].astype(float) * 100).round().astype("int64")
    return {"entries": len(rows), "documents": rows["document_number"].nunique(), "cents": int(cents.sum())}


def ledger(db: Path) -> dict[str, float]:
    store = connect(str(db))
    try:
        got = store.read("SELECT COUNT(*) AS entries, COUNT(DISTINCT document_number) AS documents, "
                         "CAST(SUM(amount) * 100 AS BIGINT) AS cents, COUNT(DISTINCT entry_id) AS ids "
                         "FROM ledger_entries WHERE entry_type = 'invoice'").iloc[0]
    finally:
        store.close()
    assert got["ids"] == got["entries"], "every entry has its own id"
    return {"entries": int(got["entries"]), "documents": int(got["documents"]), "cents": int(got["cents"] or 0)}


def ardesk(db: Path, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "analytics.cli", "--db", str(db), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
                            **kw)


def run_ardesk(db: Path, *args: str) -> str:
    proc = ardesk(db, *args)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    return out


def stop(proc: subprocess.Popen, signum: int) -> None:
    proc.send_signal(signum)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the process did not stop on signal {signum}")


WATCHER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from analytics.ingest.inbox import start_inbox_watcher
    from analytics.migrations import connect
    store = connect(sys.argv[1])
    watcher = start_inbox_watcher(store, Path(sys.argv[2]), interval_s=0.2)
    print("watching", flush=True)
    while True:
        time.sleep(0.1)
""")


@pytest.mark.slow
@pytest.mark.parametrize("how", list(SIGNALS))
def test_a_committed_inbox_import_survives_the_watcher_being_stopped(tmp_path: Path, how: str) -> None:
    """The app's watcher commits a queued 200k-row import; the process is stopped; all of it is there."""
    db, inbox = tmp_path / "ardesk.duckdb", tmp_path / "inbox"
    first = invoice_file(tmp_path / "first.csv", ROWS, 0, seed=1)
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(db), str(inbox)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    try:
        assert watcher.stdout.readline().strip() == "watching"
        out = run_ardesk(db, "import", "invoices", str(tmp_path / "first.csv"))
        assert "queued" in out.lower()  # the watcher's process owns the file
        wait_for_done_job(tmp_path / "done", watcher)
    finally:
        stop(watcher, SIGNALS[how])

    assert ledger(db) == expected(first)
    second = invoice_file(tmp_path / "second.csv", 1_000, ROWS, seed=2)
    run_ardesk(db, "import", "invoices", str(tmp_path / "second.csv"))
    assert ledger(db) == expected(first, second)


def wait_for_done_job(folder: Path, proc: subprocess.Popen, budget_s: float = 180) -> None:
    deadline = time.monotonic() + budget_s
    while not list(folder.glob("*.job.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the process stopped"
        time.sleep(0.2)
    assert list(folder.glob("*.job.json")), "the job was ingested and committed"


@pytest.mark.slow
@pytest.mark.parametrize("how", list(SIGNALS))
def test_a_command_line_import_stopped_midway_leaves_nothing_and_loses_nothing(tmp_path: Path, how: str) -> None:
    """A committed import stays whole; the one interrupted after its staging step leaves no row."""
    db = tmp_path / "ardesk.duckdb"
    first = invoice_file(tmp_path / "first.csv", ROWS, 0, seed=1)
    run_ardesk(db, "import", "invoices", str(tmp_path / "first.csv"))
    committed = ledger(db)
    assert committed == expected(first)

    invoice_file(tmp_path / "second.csv", ROWS, ROWS, seed=2)
    proc = ardesk(db, "import", "invoices", str(tmp_path / "second.csv"))
    for line in proc.stderr:  # progress lines: stop it once the rows are being written
        if "staging rows" in line or "comparing with the ledger" in line:
            break
    stop(proc, SIGNALS[how])
    assert proc.returncode != 0, "the import was stopped before it could finish"

    assert ledger(db) == committed
    third = invoice_file(tmp_path / "third.csv", 1_000, 2 * ROWS, seed=3)
    run_ardesk(db, "import", "invoices", str(tmp_path / "third.csv"))
    assert ledger(db) == expected(first, third)


def test_ids_come_from_sequences_that_survive_a_kill(tmp_path: Path) -> None:
    """After kill -9 the next ids continue past every committed row (never MAX() + 1 of a table)."""
    db = tmp_path / "ardesk.duckdb"
    script = textwrap.dedent("""
        import os, signal, sys
        from analytics.store.schema import ENTRY_IDS
        from analytics.migrations import connect
        from analytics.store.ids import reserve_ids
        store = connect(sys.argv[1])
        with store.write() as conn:
            print(reserve_ids(conn, ENTRY_IDS, 1000), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out = subprocess.run([sys.executable, "-c", script, str(db)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == -signal.SIGKILL
    assert int(out.stdout) == 1
    from analytics.store.ids import reserve_ids
    from analytics.store.schema import ENTRY_IDS

    store = connect(str(db))
    try:
        with store.write() as conn:
            assert reserve_ids(conn, ENTRY_IDS, 5) == 1001  # the block 1-1000 is never handed out again
    finally:
        store.close()


RESERVER = textwrap.dedent("""
    import sys
    from analytics.store.schema import ENTRY_IDS
    from analytics.migrations import connect
    from analytics.store.ids import reserve_ids
    store = connect(sys.argv[1])
    blocks = []
    for _ in range(int(sys.argv[2])):
        with store.write() as conn:
            blocks.append((reserve_ids(conn, ENTRY_IDS, 50), 50))
    print(blocks)
""")


@pytest.mark.postgres
def test_two_processes_reserving_ids_at_once_never_share_one(pg_url: str) -> None:
    """On PostgreSQL every process writes directly: two of them reserve blocks at the same time."""
    import ast


    empty_postgres(pg_url)
    connect(pg_url).close()  # the schema, once
    procs = [subprocess.Popen([sys.executable, "-c", RESERVER, pg_url, "1000"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    ids: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        for first, count in ast.literal_eval(out):
            ids += range(first, first + count)
    assert len(ids) == 2 * 1000 * 50
    assert len(set(ids)) == len(ids), "no id was handed out twice"
