"""The app's inbox: how `ardesk import` and `ardesk sync` hand work to the running app.

DuckDB lets one process open the store, and the running app owns it. So a command that finds the
store locked does not fail: it stages a job in the inbox and exits. A job is two files written
atomically (`*.tmp`, then `os.replace`): `<id>.parquet` (the rows as read) and `<id>.job.json`
(dataset, mapping, options), the JSON last, so a job is complete once its JSON exists. A sync job
has only the JSON (the app pulls from the ERP itself, so the watermark moves in the same
transaction as the rows).

An automatic dunning run (`ardesk dunning run` while the app runs) is a JSON-only job too; the
watcher also starts the day's automatic dunning when `[dunning] automatic_send_at` has passed, and
settles outreach deliveries whose process died (`outreach.delivery.recover_interrupted`), and emails
last month's pack once `[pack] send_on_day` has come (`reports.pack_sends.run_monthly`).
A follow-up or an outreach send scripted with `ardesk followup ...` / `ardesk outreach send` is a
JSON-only "action" job (`named_actions.run_action` with its arguments and idempotency key, so
running it twice writes once); its result is `done/<id>.result.json`. `ardesk experiments start|stop|
promote` queues an "experiment" job the same way (`experiments.lifecycle.run_experiment_action`), and
`ardesk risk score` a "risk" job (`risk.snapshots.run_risk_action`).

The app runs one watcher thread (`start_inbox_watcher`) that ingests each job through the same
import code (which takes the store's write lock), records the run in `import_runs`, and only after
COMMIT moves the job to `done/` (or to `failed/` with an `.error.txt`). Jobs left while the app was
down are ingested when it next starts. Ingesting a job twice (a crash between commit and move) is
harmless: imports are idempotent.

Jobs are signed, because anyone who can write a file into the inbox would otherwise run imports
and dunning under any name they typed. The signature is an HMAC-SHA256 over the job's canonical
content (its JSON without the signature, keys sorted, plus the SHA-256 of its rows file) under the
inbox key: `ARDESK_INBOX_KEY`, else a random secret kept beside the inbox (`.inbox_key`, mode 0600,
created on first use by the command line or the app, whichever comes first). `ingest_job` checks
the signature before anything else, then that the named actor is an active user (or the command
line's `system`) whose role grants the job's permission; a job that fails goes to `failed/` with
the reason in its `.error.txt`, and nothing is written or audited under its name.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import os
import secrets
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

from analytics.access.roles import SYSTEM, Actor, PermissionDenied, require
from analytics.access.users import UserError, actor_for
from analytics.collections.automatic_dunning import run_automatic_dunning, run_daily
from analytics.collections.followups import FollowUpError
from analytics.collections.named_actions import ACTIONS, run_action
from analytics.collections.outreach.delivery import recover_interrupted
from analytics.experiments.lifecycle import ExperimentError, run_experiment_action
from analytics.forecasts.backtest import ForecastError
from analytics.forecasts.stored_backtests import run_backtest_job
from analytics.ingest.imports import ImportResult, job_payload, run_import
from analytics.ingest.mapping import Mapping, mapping_from_dict
from analytics.ingest.quarantine import write_quarantine_file
from analytics.ingest.sync import sync_once
from analytics.reports.pack_sends import run_monthly
from analytics.risk.snapshots import RiskError, run_risk_action
from analytics.settings import database_url, load_settings
from analytics.store.connection import Store

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
    """The folders of a store: `inbox/`, `done/`, `failed/` and `quarantine/` (rejected-row files).

    One rule for every way of naming the store (`--db PATH`, `ARDESK_DB=PATH`,
    `ARDESK_DB=duckdb:///PATH`, the app's own `store.url`): the store is resolved exactly as
    `migrations.connect` opens it (`database_url`), so the command line and the app that owns the
    store always agree. Where they are:

    - `ARDESK_INBOX` set: that inbox, its siblings beside it;
    - a DuckDB file: next to the file; the file named by `[store] path` uses `[sync] inbox_dir`
      (default `data/inbox`, which is next to it) and its siblings;
    - a server database (PostgreSQL) or an in-memory DuckDB: under `[paths] data_dir` (default
      outside the checkout, see `Settings.data_dir`), never inside the repository.
    """
    settings = load_settings()
    if os.environ.get("ARDESK_INBOX"):
        inbox = Path(os.environ["ARDESK_INBOX"])
    else:
        path = store_file(db or os.environ.get("ARDESK_DB") or settings.raw["store"]["path"])
        if path is None:
            inbox = settings.data_dir / "inbox"
        elif path == store_file(settings.raw["store"]["path"]):
            inbox = settings.path("sync", "inbox_dir")
        else:
            inbox = path.parent / "inbox"
    base = inbox.parent
    return Folders(inbox, base / "done", base / "failed", base / "quarantine")


def store_file(path_or_url: str) -> Path | None:
    """The DuckDB file a store path or URL opens (absolute), or None for a server or in-memory database."""
    url = sa.engine.make_url(database_url(path_or_url))
    if url.get_backend_name() != "duckdb" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


KEY_FILE = ".inbox_key"
SIGNATURE = "signature"  # the job JSON's field holding "hmac-sha256:<hex>"
# The permission each kind of job needs from its actor (the same the engine checks when it runs).
JOB_PERMISSIONS = {"import": "import_data", "sync": "import_data", "dunning": "act_on_customers",
                   "action": "named", "experiment": "run_experiments", "risk": "score_risk",
                   "forecast": "run_backtests"}  # an action job (`ardesk followup`, `outreach send`): its action's


class InboxKeyError(RuntimeError):
    """The inbox key cannot be read or made; no job can be signed or checked."""


class JobRefused(Exception):
    """An inbox job that is unsigned, altered, signed with another key, or whose actor may not run it."""


def inbox_key(inbox: Path) -> bytes:
    """The key that signs and checks the jobs of `inbox`: from `ARDESK_INBOX_KEY`, else from the
    secret in `.inbox_key` beside the inbox folder, created (0600) on first use."""
    secret = os.environ.get("ARDESK_INBOX_KEY", "")
    if secret:
        if len(secret) < 32:
            raise InboxKeyError("ARDESK_INBOX_KEY is shorter than 32 characters; use a long random secret.")
    else:
        path = inbox.parent / KEY_FILE
        try:
            if not path.exists():
                _create_secret(path)
            secret = path.read_text().strip()
        except OSError as exc:
            raise InboxKeyError(f"The inbox key {path} cannot be read or created: {exc}") from None
        if len(secret) < 32:
            raise InboxKeyError(f"The inbox key {path} is empty or too short; delete it and it is made anew "
                                "(jobs waiting in the inbox must then be queued again).")
    # A key of its own, derived for this one use, even when the secret is shared with something else.
    return hmac.new(secret.encode(), b"ardesk inbox job v1", hashlib.sha256).digest()


def _create_secret(path: Path) -> None:
    # Written to a private temporary file and linked into place: never readable by others, never
    # seen half-written, and when the CLI and the app race, the first link wins and both read it.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def _signature(key: bytes, job: dict, rows: bytes | None) -> str:
    """HMAC-SHA256 of the job's canonical content: its JSON without the signature (sorted keys,
    no spaces, ASCII) and the SHA-256 of its rows file ("-" for a job without one)."""
    body = json.dumps({k: v for k, v in job.items() if k != SIGNATURE}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    rows_digest = hashlib.sha256(rows).hexdigest() if rows is not None else "-"
    content = f"ardesk inbox job v1\n{body}\n{rows_digest}".encode()
    return "hmac-sha256:" + hmac.new(key, content, hashlib.sha256).hexdigest()


def _signed_json(folder: Path, job: dict, rows: bytes | None = None) -> bytes:
    job = {k: v for k, v in job.items() if k != SIGNATURE}
    job[SIGNATURE] = _signature(inbox_key(folder), job, rows)
    return json.dumps(job, indent=2).encode()


def _rows_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.name.removesuffix(".job.json") + ".parquet")


def read_signed_job(job_path: Path, key: bytes) -> tuple[dict, bytes | None]:
    """The job and its rows (bytes, read once), or `JobRefused` unless its signature checks out."""
    try:
        job = json.loads(job_path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobRefused(f"the job file is not valid JSON ({exc}); it may have been altered") from None
    if not isinstance(job, dict):
        raise JobRefused("the job file is not a JSON object; it may have been altered")
    rows_path = _rows_path(job_path)
    rows = rows_path.read_bytes() if rows_path.exists() else None
    claimed = job.get(SIGNATURE)
    if not isinstance(claimed, str) or not claimed:
        raise JobRefused("the job is not signed; only `ardesk` (or the app) with the inbox key can queue jobs")
    if not hmac.compare_digest(claimed, _signature(key, job, rows)):
        raise JobRefused("the job's signature does not match its content: the job or its rows file was "
                         "altered after it was queued, or it was signed with another inbox key")
    return job, rows


def _signed_jobs(folder: Path, key: bytes) -> list[tuple[Path, dict]]:
    """The waiting jobs whose signature checks out (a forged one is never reused), oldest first."""
    found = []
    for path in pending_jobs(folder):
        try:
            found.append((path, read_signed_job(path, key)[0]))
        except (JobRefused, OSError):
            continue
    return found


def job_actor(store: Store, job: dict) -> Actor:
    """Who runs a signed job, as the store knows them now: the command line's `system`, or an active
    user whose current role grants the job's permission; `JobRefused` otherwise."""
    kind = job.get("kind", "import")
    if kind not in JOB_PERMISSIONS:
        raise JobRefused(f"unknown job kind {kind!r}")
    named = job.get("actor") or {}
    username = named.get("username") if isinstance(named, dict) else None
    if not isinstance(username, str) or not username:
        raise JobRefused("the job names no actor")
    try:
        actor = actor_for(store, username)
    except UserError as exc:
        raise JobRefused(f"the job names {username!r}: {exc}") from None
    permission = JOB_PERMISSIONS[kind]
    if permission == "named":
        if job.get("action") not in ACTIONS:
            raise JobRefused(f"unknown action {job.get('action')!r}")
        permission = ACTIONS[job["action"]][0]
    try:
        require(actor, permission)
    except PermissionDenied as exc:
        raise JobRefused(str(exc)) from None
    return actor


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _job_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def stage_import(folder: Path, table: pa.Table, mapping: Mapping, actor: Actor, *, strict: bool = False,
                 source_label: str = "") -> Path:
    """Queue rows for the running app to import, signed; returns the job file."""
    folder.mkdir(parents=True, exist_ok=True)
    job = _job_id()
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    rows = buffer.getvalue().to_pybytes()
    signed = _signed_json(folder, json.loads(job_payload(mapping, strict, source_label, actor)), rows)
    _write_atomic(folder / f"{job}.parquet", rows)
    path = folder / f"{job}.job.json"
    _write_atomic(path, signed)
    return path


def stage_sync(folder: Path, source: str, mapping: Mapping, actor: Actor) -> Path:
    """Queue one sync of `source` for the running app, signed; an identical signed job already waiting
    is reused."""
    folder.mkdir(parents=True, exist_ok=True)
    key = inbox_key(folder)
    for existing, job in _signed_jobs(folder, key):
        if job.get("kind") == "sync" and job.get("source") == source and job.get("mapping") == mapping.to_dict():
            return existing
    path = folder / f"{_job_id()}.job.json"
    payload = {"kind": "sync", "source": source, "mapping": mapping.to_dict(),
               "actor": {"username": actor.username, "role": actor.role, "name": actor.name},
               "created_at": datetime.now().isoformat(timespec="seconds")}
    _write_atomic(path, _signed_json(folder, payload))
    return path


def stage_dunning_run(folder: Path, as_of: date, actor: Actor) -> Path:
    """Queue one automatic dunning run for D for the running app, signed; a signed one waiting for D
    is reused."""
    folder.mkdir(parents=True, exist_ok=True)
    key = inbox_key(folder)
    for existing, job in _signed_jobs(folder, key):
        if job.get("kind") == "dunning" and job.get("as_of") == as_of.isoformat():
            return existing
    path = folder / f"{_job_id()}.job.json"
    payload = {"kind": "dunning", "as_of": as_of.isoformat(),
               "actor": {"username": actor.username, "role": actor.role, "name": actor.name},
               "created_at": datetime.now().isoformat(timespec="seconds")}
    _write_atomic(path, _signed_json(folder, payload))
    return path


def stage_action(folder: Path, action: str, arguments: dict, actor: Actor, kind: str = "action") -> Path:
    """Queue one named action for the running app, signed: kind "action" (`collections.named_actions`)
    or "experiment" (an experiment's start, stop or promotion: `experiments.lifecycle.run_experiment_action`)
    "risk" (a month's risk scoring: `risk.snapshots.run_risk_action`) or "forecast" (`ardesk forecast
    backtest`: `forecasts.stored_backtests.run_backtest_job`).
    A signed one waiting with the same kind, action and arguments (its idempotency key included) is reused."""
    folder.mkdir(parents=True, exist_ok=True)
    key = inbox_key(folder)
    for existing, job in _signed_jobs(folder, key):
        if (job.get("kind") == kind and job.get("action") == action and job.get("arguments") == arguments
                and (job.get("actor") or {}).get("username") == actor.username):
            return existing
    path = folder / f"{_job_id()}.job.json"
    payload = {"kind": kind, "action": action, "arguments": arguments,
               "actor": {"username": actor.username, "role": actor.role, "name": actor.name},
               "created_at": datetime.now().isoformat(timespec="seconds")}
    _write_atomic(path, _signed_json(folder, payload))
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
    """Run one inbox job; move it to done/ after commit, or to failed/ with the reason.

    The signature and the actor are checked first: a refused job writes nothing. Without a usable
    inbox key (`InboxKeyError`) no job is touched: they wait in the inbox until the key is fixed.
    """
    rows_path = _rows_path(job_path)
    files = [job_path, rows_path]
    key = inbox_key(folders.inbox)
    try:
        job, rows = read_signed_job(job_path, key)
        actor = job_actor(store, job)
        if job.get("kind") == "dunning":
            sent = run_automatic_dunning(store, actor, date.fromisoformat(job["as_of"]))
            _move(files, folders.done)
            (folders.done / (job_path.name.removesuffix(".job.json") + ".result.csv")).write_text(
                sent.to_csv(index=False))
            return []
        if job.get("kind") in ("action", "experiment", "risk", "forecast"):
            run = {"action": run_action, "experiment": run_experiment_action, "risk": run_risk_action,
                   "forecast": run_backtest_job}[job["kind"]]
            done = run(store, actor, job["action"], job["arguments"])
            _move(files, folders.done)
            (folders.done / (job_path.name.removesuffix(".job.json") + ".result.json")).write_text(json.dumps(done))
            return []
        mapping = mapping_from_dict(job["mapping"], name=job["mapping"].get("mapping", {}).get("name", "job"))
        if job.get("kind") == "sync":
            results = sync_once(store, job["source"], mapping, actor)
        else:
            if rows is None:
                raise FileNotFoundError(f"the rows file {rows_path.name} is missing")
            # the rows as signed, read once: a file swapped after the check is never imported
            result = run_import(store, pq.read_table(pa.BufferReader(rows)), mapping, actor,
                                strict=bool(job.get("strict")),
                                source_label=f"{job.get('source') or rows_path.name} (queued {job.get('created_at')})")
            if result.report is not None:
                write_quarantine_file(result.report, folders.quarantine, result.run_id)
            results = [result]
    except Exception as exc:
        _move(files, folders.failed)
        detail = "" if isinstance(exc, JobRefused | FollowUpError | PermissionDenied | ExperimentError | RiskError
                                             | ForecastError) else f"\n\n{traceback.format_exc()}"
        (folders.failed / (job_path.name + ".error.txt")).write_text(f"{type(exc).__name__}: {exc}\n{detail}")
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
        while not self._stop_event.is_set():
            try:
                ingest_pending(self.store, self.folders)
                recover_interrupted(self.store, SYSTEM)  # deliveries whose process died: queue or uncertain
                run_daily(self.store, datetime.now())  # the day's automatic dunning, once, if switched on
                run_monthly(self.store, datetime.now())  # last month's pack to [pack] recipients, once
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
    # Stop before interpreter shutdown closes the store's connections under the thread's feet
    # (it reads the store on every round: "connection is busy" tracebacks at exit otherwise).
    atexit.register(watcher.stop, 5)
    return watcher
