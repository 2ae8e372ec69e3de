"""The app's inbox: how `ardesk import` and `ardesk sync` hand work to the running app.

DuckDB lets one process open the store, and the running app owns it. So a command that finds the
store locked does not fail: it stages a job in the inbox and exits. A job is two files written
atomically (`*.tmp`, then `os.replace`): `<id>.parquet` (the rows as read) and `<id>.job.json`
(dataset, mapping, options), the JSON last, so a job is complete once its JSON exists. A sync job
has only the JSON (the app pulls from the ERP itself, so the watermark moves in the same
transaction as the rows).

An automatic dunning run (`ardesk dunning run` while the app runs) is a JSON-only job too; the
watcher also starts the day's automatic dunning when `[dunning] automatic_send_at` has passed.

The app runs one watcher thread (`start_inbox_watcher`) that ingests each job through the same
import code (which takes the store's write lock), records the run in `import_runs`, and only after
COMMIT moves the job to `done/` (or to `failed/` with an `.error.txt`). Jobs left while the app was
down are ingested when it next starts. Ingesting a job twice (a crash between commit and move) is
harmless: imports are idempotent.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import traceback
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from analytics.imports import ImportResult, job_payload, run_import, write_quarantine_file
from analytics.mapping import Mapping, mapping_from_dict
from analytics.roles import Actor
from analytics.settings import database_url, load_settings
from analytics.store import Store

log = logging.getLogger(__name__)
POLL_SECONDS = float(os.environ.get("ARDESK_INBOX_POLL", "5"))


@dataclass(frozen=True)
class Folders:
    """Where jobs wait, where they go after ingestion, and where rejected rows are written."""

    inbox: Path
    done: Path
    failed: Path
    quarantine: Path


def folders_for(db: str | None = None) -> Folders:
    """The folders of a store: `[sync] inbox_dir` and its siblings, or `inbox/` next to its file.

    One rule for every way of naming the store (`--db PATH`, `ARDESK_DB=PATH`,
    `ARDESK_DB=duckdb:///PATH`, the app's own `store.url`): the store is resolved exactly as
    `store.connect` opens it (`database_url`), and a DuckDB file outside the configured store's
    folder keeps its own `inbox/`, `done/`, `failed/`, `quarantine/` next to the file, so the command
    line and the app that owns that file always agree. A server database (PostgreSQL) or an
    in-memory DuckDB uses `[sync] inbox_dir`. `ARDESK_INBOX` overrides the inbox.
    """
    settings = load_settings()
    inbox = settings.path("sync", "inbox_dir")
    if os.environ.get("ARDESK_INBOX"):
        inbox = Path(os.environ["ARDESK_INBOX"])
    else:
        path = store_file(db or os.environ.get("ARDESK_DB") or settings.raw["store"]["path"])
        if path is not None and path.parent != store_file(settings.raw["store"]["path"]).parent:
            inbox = path.parent / "inbox"
    base = inbox.parent
    return Folders(inbox, base / "done", base / "failed", base / "quarantine")


def store_file(path_or_url: str) -> Path | None:
    """The DuckDB file a store path or URL opens (absolute), or None for a server or in-memory database."""
    url = sa.engine.make_url(database_url(path_or_url))
    if url.get_backend_name() != "duckdb" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _job_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def stage_import(folder: Path, table: pa.Table, mapping: Mapping, actor: Actor, *, strict: bool = False,
                 source_label: str = "") -> Path:
    """Queue rows for the running app to import; returns the job file."""
    folder.mkdir(parents=True, exist_ok=True)
    job = _job_id()
    rows = folder / f"{job}.parquet"
    tmp = rows.with_name(rows.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, rows)
    path = folder / f"{job}.job.json"
    _write_atomic(path, job_payload(mapping, strict, source_label, actor).encode())
    return path


def stage_sync(folder: Path, source: str, mapping: Mapping, actor: Actor) -> Path:
    """Queue one sync of `source` for the running app; an identical job already waiting is reused."""
    folder.mkdir(parents=True, exist_ok=True)
    for existing in sorted(folder.glob("*.job.json")):
        job = json.loads(existing.read_text())
        if job.get("kind") == "sync" and job.get("source") == source and job.get("mapping") == mapping.to_dict():
            return existing
    path = folder / f"{_job_id()}.job.json"
    payload = {"kind": "sync", "source": source, "mapping": mapping.to_dict(),
               "actor": {"username": actor.username, "role": actor.role, "name": actor.name},
               "created_at": datetime.now().isoformat(timespec="seconds")}
    _write_atomic(path, json.dumps(payload, indent=2).encode())
    return path


def stage_dunning_run(folder: Path, as_of: date, actor: Actor) -> Path:
    """Queue one automatic dunning run for D for the running app; a waiting one for D is reused."""
    folder.mkdir(parents=True, exist_ok=True)
    for existing in sorted(folder.glob("*.job.json")):
        job = json.loads(existing.read_text())
        if job.get("kind") == "dunning" and job.get("as_of") == as_of.isoformat():
            return existing
    path = folder / f"{_job_id()}.job.json"
    payload = {"kind": "dunning", "as_of": as_of.isoformat(),
               "actor": {"username": actor.username, "role": actor.role, "name": actor.name},
               "created_at": datetime.now().isoformat(timespec="seconds")}
    _write_atomic(path, json.dumps(payload, indent=2).encode())
    return path


def pending_jobs(folder: Path) -> list[Path]:
    """Complete jobs waiting in the inbox, oldest first."""
    return sorted(folder.glob("*.job.json")) if folder.exists() else []


def _move(files: list[Path], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        if f.exists():
            shutil.move(str(f), target / f.name)


def ingest_job(store: Store, job_path: Path, folders: Folders) -> list[ImportResult]:
    """Run one inbox job; move it to done/ after commit, or to failed/ with the error."""
    from analytics.sync import sync_once

    job = json.loads(job_path.read_text())
    rows_path = job_path.with_name(job_path.name.removesuffix(".job.json") + ".parquet")
    files = [job_path, rows_path]
    a = job.get("actor") or {}
    actor = Actor(a.get("username", "system"), a.get("role", "admin"), a.get("name", ""))
    try:
        if job.get("kind") == "dunning":
            from analytics.automatic_dunning import run_automatic_dunning

            sent = run_automatic_dunning(store, actor, date.fromisoformat(job["as_of"]))
            _move(files, folders.done)
            (folders.done / (job_path.name.removesuffix(".job.json") + ".result.csv")).write_text(
                sent.to_csv(index=False))
            return []
        mapping = mapping_from_dict(job["mapping"], name=job["mapping"].get("mapping", {}).get("name", "job"))
        if job.get("kind") == "sync":
            results = sync_once(store, job["source"], mapping, actor)
        else:
            result = run_import(store, pq.read_table(rows_path), mapping, actor, strict=bool(job.get("strict")),
                                source_label=f"{job.get('source') or rows_path.name} (queued {job.get('created_at')})")
            if result.report is not None:
                write_quarantine_file(result.report, folders.quarantine, result.run_id)
            results = [result]
    except Exception as exc:
        _move(files, folders.failed)
        (folders.failed / (job_path.name + ".error.txt")).write_text(
            f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        log.warning("inbox job %s failed: %s", job_path.name, exc)
        return []
    _move(files, folders.done)
    return results


def ingest_pending(store: Store, folders: Folders) -> list[ImportResult]:
    """Ingest every waiting job, oldest first."""
    results: list[ImportResult] = []
    for job in pending_jobs(folders.inbox):
        results += ingest_job(store, job, folders)
    return results


class InboxWatcher(threading.Thread):
    """A daemon thread that ingests inbox jobs every `interval_s` seconds until stopped."""

    def __init__(self, store: Store, folders: Folders, interval_s: float) -> None:
        super().__init__(name="ardesk-inbox", daemon=True)
        self.store, self.folders, self.interval_s = store, folders, interval_s
        self._stop_event = threading.Event()
        self.last_error: str | None = None

    def run(self) -> None:
        from analytics.automatic_dunning import run_daily

        while not self._stop_event.is_set():
            try:
                ingest_pending(self.store, self.folders)
                run_daily(self.store, datetime.now())  # the day's automatic dunning, once, if switched on
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep watching; the error is shown on the imports page
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("inbox watcher")
            self._stop_event.wait(self.interval_s)

    def stop(self, timeout: float = 30) -> None:
        self._stop_event.set()
        self.join(timeout)


def start_inbox_watcher(store: Store, folder: Path | None = None, interval_s: float = POLL_SECONDS) -> InboxWatcher:
    """Start watching `folder` (default: the store's inbox) for jobs; call once per process."""
    folders = folders_for(store.url) if folder is None else Folders(
        folder, folder.parent / "done", folder.parent / "failed", folder.parent / "quarantine")
    watcher = InboxWatcher(store, folders, interval_s)
    watcher.start()
    return watcher
