"""Sync from a real SQLite ERP database and a drop folder; the inbox when the app owns the store;
the command line's staging and its 15-minute loop."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.access.roles import SYSTEM
from analytics.ingest.inbox import Folders, folders_for, ingest_pending, pending_jobs, stage_sync
from analytics.ingest.mapping import Mapping
from analytics.ingest.sync import parse_every, sync_once, watermark
from analytics.settings import CONFIG_DIR, database_url
from analytics.store.connection import Store
from analytics.store.schema import activities
from tests.conftest import interruptible, run_app_watcher

ROOT = Path(__file__).resolve().parent.parent
ERP_MAPPING = Mapping(
    dataset="invoices",
    columns={"customer_id": "kunnr", "document_number": "belnr", "posting_date": "budat", "due_date": "zfbdt",
             "amount": "wrbtr", "currency": "waers"},
    sync={"table": "ar_open_items", "watermark_column": "changed_at"},
)


def make_erp(path: Path, rows: list[tuple]) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS ar_open_items (belnr TEXT PRIMARY KEY, kunnr TEXT, budat TEXT, "
                   "zfbdt TEXT, wrbtr REAL, waers TEXT, changed_at TEXT)")
        db.executemany("INSERT OR REPLACE INTO ar_open_items VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return f"sqlite:///{path}"


def test_sync_from_a_sqlite_erp_is_incremental_by_watermark(store: Store, tmp_path: Path) -> None:
    url = make_erp(tmp_path / "erp.db", [
        ("100", "K1", "2024-01-02", "2024-02-01", 500.0, "USD", "2024-01-02 09:00:00"),
        ("101", "K2", "2024-01-03", "2024-02-02", 250.5, "USD", "2024-01-03 09:00:00"),
    ])
    [first] = sync_once(store, url, ERP_MAPPING, SYSTEM)
    assert (first.inserted, first.updated, first.customers_created) == (2, 0, ["K1", "K2"])
    assert watermark(store, url, "invoices") == "2024-01-03 09:00:00"
    make_erp(tmp_path / "erp.db", [
        ("101", "K2", "2024-01-03", "2024-02-02", 260.0, "USD", "2024-01-04 10:00:00"),   # changed
        ("102", "K1", "2024-01-04", "2024-02-03", 75.0, "USD", "2024-01-04 11:00:00"),    # new
    ])
    [second] = sync_once(store, url, ERP_MAPPING, SYSTEM)
    # rows at or after the watermark: 101 (changed), 102 (new); 100 is not read again
    assert (second.rows_read, second.inserted, second.updated, second.unchanged) == (2, 1, 1, 0)
    assert watermark(store, url, "invoices") == "2024-01-04 11:00:00"
    [third] = sync_once(store, url, ERP_MAPPING, SYSTEM)
    assert (third.rows_read, third.inserted, third.updated, third.unchanged) == (1, 0, 0, 1)  # boundary row only
    assert store.read("SELECT document_number, amount FROM ledger_entries ORDER BY document_number"
                      ).to_dict("records") == [{"document_number": "100", "amount": 500.0},
                                               {"document_number": "101", "amount": 260.0},
                                               {"document_number": "102", "amount": 75.0}]
    runs = store.read("SELECT kind, status, rows_read FROM import_runs ORDER BY run_id").to_dict("records")
    assert runs == [{"kind": "sync", "status": "ok", "rows_read": n} for n in (2, 2, 1)]


def test_sync_while_another_session_writes_follow_ups_loses_nothing(store: Store, tmp_path: Path) -> None:
    rows = [(str(1000 + i), f"K{i % 50}", "2024-01-02", "2024-02-01", 10.0 + i, "USD", f"2024-01-02 09:{i % 60:02d}:00")
            for i in range(3000)]
    url = make_erp(tmp_path / "erp.db", rows)
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def collector() -> None:  # another session logging follow-ups through the store's writer
        try:
            i = 0
            while not stop.is_set() or i < 20:
                with store.write() as conn:
                    conn.execute(activities.insert().values(
                        customer_id="K1", kind="call", occurred_at=datetime.now(), author="cara",
                        subject=f"follow-up {i}", idempotency_key=f"follow-up-{i}"))
                written.append(i)
                i += 1
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    thread = threading.Thread(target=collector)
    thread.start()
    try:
        results = sync_once(store, url, ERP_MAPPING, SYSTEM)
    finally:
        stop.set()
        thread.join(30)
    assert errors == []
    assert results[0].inserted == 3000
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries") == 3000
    assert store.scalar("SELECT COUNT(*) FROM activities WHERE kind = 'call'") == len(written) >= 20


def test_sync_from_a_drop_folder_imports_new_files_once(store: Store, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    mapping = Mapping(dataset="invoices", columns={"customer_id": "cust", "document_number": "doc",
                                                   "posting_date": "date", "amount": "amount"})
    (drop / "a.csv").write_text("cust,doc,date,amount\nC1,I-1,2024-01-02,10\n")
    os.utime(drop / "a.csv", (1_700_000_000, 1_700_000_000))
    assert [r.inserted for r in sync_once(store, str(drop), mapping, SYSTEM)] == [1]
    assert sync_once(store, str(drop), mapping, SYSTEM) == []  # nothing new
    (drop / "b.csv").write_text("cust,doc,date,amount\nC1,I-1,2024-01-02,12\nC1,I-2,2024-01-03,5\n")
    assert [(r.inserted, r.updated) for r in sync_once(store, str(drop), mapping, SYSTEM)] == [(1, 1)]


def test_parse_every() -> None:
    assert [parse_every(x) for x in ("15m", "30s", "1h", "2")] == [900, 30, 3600, 120]
    with pytest.raises(ValueError, match="15m"):
        parse_every("soon")


def _folders(tmp_path: Path) -> Folders:
    return Folders(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", tmp_path / "quarantine")


@pytest.mark.duckdb_only  # the DuckDB file's lock / the app's inbox
@pytest.mark.slow
def test_cli_import_queues_into_the_inbox_when_the_app_owns_the_store(store: Store, tmp_path: Path) -> None:
    """The store is held by this process (as the app would); `ardesk import` in another process queues."""
    csv = tmp_path / "inv.csv"
    csv.write_text("cust,doc,date,amount\nC1,I-1,2024-01-02,10\nC1,I-2,2024-01-03,-1\n")
    env = {**os.environ, "ARDESK_DB": str(tmp_path / "ardesk.duckdb")}
    env.pop("ARDESK_INBOX", None)
    out = subprocess.run(
        [sys.executable, "-m", "analytics.cli", "import", "invoices", str(csv), "--column", "customer_id=cust",
         "--column", "document_number=doc", "--column", "posting_date=date"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert "queued" in out.stdout and "Imports > Last runs" in out.stdout and "Traceback" not in out.stderr
    folders = _folders(tmp_path)
    assert [p.name.endswith(".job.json") for p in pending_jobs(folders.inbox)] == [True]
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries") == 0
    run_app_watcher(store, folders.inbox)
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries") == 1
    assert store.read("SELECT status, rows_read, rows_inserted, rows_rejected FROM import_runs").to_dict("records") == [
        {"status": "ok", "rows_read": 2, "rows_inserted": 1, "rows_rejected": 1}]
    assert sorted(p.suffix for p in folders.done.iterdir()) == [".json", ".parquet"]
    assert len(list(folders.quarantine.glob("invoices-run1-*.csv"))) == 1


def test_every_way_of_naming_a_store_file_gives_the_app_and_the_cli_the_same_inbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--db PATH`, `ARDESK_DB=PATH`, `ARDESK_DB=duckdb:///PATH`, and the app's own store: one inbox."""
    monkeypatch.delenv("ARDESK_INBOX", raising=False)
    db = tmp_path / "books" / "ardesk.duckdb"
    url = f"duckdb:///{db}"
    expected = _folders(db.parent)
    monkeypatch.delenv("ARDESK_DB", raising=False)
    assert folders_for(str(db)) == expected  # --db PATH
    assert folders_for(url) == expected  # --db duckdb:///PATH
    app_store = Store(database_url(url))  # what the app opens: it watches folders_for(store.url)
    assert folders_for(app_store.url) == folders_for(app_store.path) == expected
    app_store.close()
    for named in (str(db), url):
        monkeypatch.setenv("ARDESK_DB", named)
        assert folders_for() == expected, named  # the CLI without --db
        assert folders_for(Store(database_url(named)).url) == expected, named  # the app under that ARDESK_DB


def _settings_with_inbox(tmp_path: Path, inbox: Path) -> Path:
    """A copy of settings.toml whose `[sync] inbox_dir` is `inbox` (so no test writes into data/)."""
    text = (CONFIG_DIR / "settings.toml").read_text()
    path = tmp_path / "settings.toml"
    path.write_text(text.replace('inbox_dir = "data/inbox"', f'inbox_dir = "{inbox}"'))
    return path


@pytest.mark.duckdb_only  # the DuckDB file's lock / the app's inbox
@pytest.mark.slow
@pytest.mark.parametrize("named", ["--db PATH", "ARDESK_DB=PATH", "ARDESK_DB=duckdb:///PATH"])
def test_a_job_queued_by_the_cli_reaches_the_app_however_the_store_is_named(
        store: Store, tmp_path: Path, named: str) -> None:
    """The store is held by this process (as the app would); `ardesk import` queues; the app's watcher,
    finding its inbox by the app's own rule, imports the job."""
    csv = tmp_path / "inv.csv"
    csv.write_text("cust,doc,date,amount\nC1,I-1,2024-01-02,10\n")
    db = tmp_path / "ardesk.duckdb"  # the `store` fixture's file
    env = {k: v for k, v in os.environ.items() if k not in {"ARDESK_DB", "ARDESK_INBOX"}}
    env["ARDESK_SETTINGS"] = str(_settings_with_inbox(tmp_path, tmp_path / "settings-inbox"))
    cli = [sys.executable, "-m", "analytics.cli"]
    if named == "--db PATH":
        cli += ["--db", str(db)]
    else:
        env["ARDESK_DB"] = str(db) if named == "ARDESK_DB=PATH" else f"duckdb:///{db}"
    out = subprocess.run(
        [*cli, "import", "invoices", str(csv), "--column", "customer_id=cust", "--column", "document_number=doc",
         "--column", "posting_date=date"], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert "queued" in out.stdout
    run_app_watcher(store, timeout_s=30)
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries") == 1
    assert not (tmp_path / "settings-inbox").exists()


def test_a_queued_sync_job_runs_in_the_app_and_a_broken_job_goes_to_failed(store: Store, tmp_path: Path) -> None:
    url = make_erp(tmp_path / "erp.db", [("100", "K1", "2024-01-02", "2024-02-01", 5.0, "USD", "2024-01-02")])
    folders = _folders(tmp_path)
    job = stage_sync(folders.inbox, url, ERP_MAPPING, SYSTEM)
    assert stage_sync(folders.inbox, url, ERP_MAPPING, SYSTEM) == job  # not queued twice
    broken = folders.inbox / "zzz.job.json"
    broken.write_text('{"kind": "import", "mapping": {"mapping": {"dataset": "invoices"}}}')
    results = ingest_pending(store, folders)
    assert [r.inserted for r in results] == [1]
    assert (folders.done / job.name).exists() and (folders.failed / "zzz.job.json").exists()
    assert "not signed" in (folders.failed / "zzz.job.json.error.txt").read_text()


@pytest.mark.slow
def test_cli_sync_every_loops_until_ctrl_c(tmp_path: Path) -> None:
    url = make_erp(tmp_path / "erp.db", [("100", "K1", "2024-01-02", "2024-02-01", 5.0, "USD", "2024-01-02")])
    mapping = tmp_path / "erp.toml"
    mapping.write_text('[mapping]\ndataset = "invoices"\n[columns]\ncustomer_id = "kunnr"\ndocument_number = "belnr"\n'
                       'posting_date = "budat"\ndue_date = "zfbdt"\namount = "wrbtr"\ncurrency = "waers"\n'
                       '[sync]\ntable = "ar_open_items"\nwatermark_column = "changed_at"\n')
    db = tmp_path / "store.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-m", "analytics.cli", "--db", str(db), "sync", "--source", url, "--mapping", str(mapping),
         "--every", "1s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 60
        lines: list[str] = []
        while time.monotonic() < deadline and sum("Next sync" in line for line in lines) < 2:
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines) + out
    assert proc.returncode == 0, err
    assert "1 inserted" in text and "0 inserted, 0 updated, 1 unchanged" in text
    assert "Sync stopped" in text and "Traceback" not in err
    engine = sa.create_engine(f"duckdb:///{db}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM ledger_entries")).scalar() == 1
    engine.dispose()
