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

Each app process runs one watcher thread (`start_inbox_watcher`) that ingests each job through the
same import code (which takes the store's write lock), records the run in `import_runs`, and only
after COMMIT moves the job to `done/` (or to `failed/` with an `.error.txt`). Jobs left while the app
was down are ingested when it next starts. Ingesting a job twice (a crash between commit and move) is
harmless: imports are idempotent.

Several app instances on one PostgreSQL store (`make cluster`) watch the same inbox, so a job is
claimed before it runs (`claim_job`): its JSON, then its rows, is renamed into `inbox/.claimed/` as
`<id>@<host>@<pid>@<start token>.job.json`. A rename within one filesystem is atomic, so exactly one
watcher wins; the others skip the job. A claim whose owner is gone goes back to the inbox and runs
again (`recover_claims`, every round; harmless twice, as above): on the same host, when its pid is not
alive, is a zombie, or now belongs to a process with another start time (`/proc`: a reused pid, a
restart). A live owner's claim is never taken. A claim by another host is never taken back either,
since its owner cannot be checked from here and a slow import would then run twice at once: its own
host puts it back when its app restarts, and the watcher logs a claim by another host older than
`STALLED_CLAIM_MINUTES` (`stalled_claims`) with how to put it back by hand. The inbox must be on one
filesystem shared by the instances, and each host name must be unique among them. `pending_jobs`
counts claimed jobs as pending (they have not run yet); `waiting_jobs` lists the unclaimed ones.

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
import re
import secrets
import shutil
import socket
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

    @property
    def claimed(self) -> Path:
        """Jobs being run: `inbox/.claimed/`, inside the inbox so that a claim is one atomic rename."""
        return self.inbox / CLAIMED


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
CLAIMED = ".claimed"  # the inbox's folder of jobs taken by a watcher (see `claim_job`)
STALLED_CLAIM_MINUTES = 30  # a claim by another host older than this is reported, never taken back
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
    for path in waiting_jobs(folder):  # a claimed one is already running: a new request is queued anew
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


def waiting_jobs(folder: Path) -> list[Path]:
    """Complete jobs waiting in the inbox that no watcher has claimed yet, oldest first."""
    return sorted(folder.glob("*.job.json")) if folder.exists() else []


def pending_jobs(folder: Path) -> list[Path]:
    """Jobs not finished yet, oldest first: waiting in the inbox, or claimed and being run (a claimed
    job leaves only for done/ or failed/, or back to the inbox when its owner died), so "no pending
    jobs" means every job queued so far has run."""
    claimed = sorted((folder / CLAIMED).glob("*.job.json")) if (folder / CLAIMED).exists() else []
    return sorted(waiting_jobs(folder) + claimed, key=lambda p: p.name)


# -- claims: one watcher runs each job, whichever instance it is ------------------------------------


@dataclass(frozen=True)
class Claim:
    """A claimed job file: the job's id and its owner (host, process id, the process's start token)."""

    path: Path
    job_id: str
    host: str
    pid: int
    token: str


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"


def _start_token(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), so a reused pid is told apart;
    "Z" for a zombie (killed, not yet reaped: gone); None without /proc or without the process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "(command name)": state is field 3, starttime 22
    return "Z" if fields[0] in ("Z", "X") else fields[19]


_OWN_TOKEN: dict[int, str] = {}


def _own_token() -> str:
    pid = os.getpid()  # looked up per process: a forked child is another owner
    if pid not in _OWN_TOKEN:
        _OWN_TOKEN[pid] = _start_token(pid) or uuid.uuid4().hex[:12]
    return _OWN_TOKEN[pid]


def claim_job(job_path: Path, folders: Folders) -> Path | None:
    """Take a waiting job for this process, or None when another watcher took it first.

    The rule: the job's JSON is renamed into `inbox/.claimed/` as `<id>@<host>@<pid>@<start token>
    .job.json` (`os.rename` within one filesystem is atomic: of two instances exactly one succeeds,
    the other gets FileNotFoundError and skips the job), then its rows file the same way. The
    signature covers the content, not the file name, so a claimed job checks as it did.
    """
    folders.claimed.mkdir(parents=True, exist_ok=True)
    job_id = job_path.name.removesuffix(".job.json")
    claimed = folders.claimed / f"{job_id}@{_host()}@{os.getpid()}@{_own_token()}.job.json"
    try:
        os.rename(job_path, claimed)
    except FileNotFoundError:
        return None
    os.utime(claimed)  # its age is the claim's, for `stalled_claims`
    try:
        os.rename(_rows_path(job_path), _rows_path(claimed))
    except FileNotFoundError:
        pass  # a JSON-only job
    return claimed


def claims(folders: Folders) -> list[Claim]:
    """The claimed job files (JSON, or a rows file left without its JSON), oldest job first."""
    found = []
    for path in sorted(folders.claimed.glob("*@*")) if folders.claimed.exists() else []:
        stem = path.name.removesuffix(".job.json").removesuffix(".parquet")
        job_id, host, pid, token = ([*stem.rsplit("@", 3)] + ["", "", ""])[:4]
        found.append(Claim(path, job_id, host, int(pid) if pid.isdigit() else 0, token))
    return found


def owner_alive(claim: Claim) -> bool | None:
    """Whether the process holding `claim` still runs: known on this host (its pid is alive with the
    same start token), None (unknown) for a claim by another host."""
    if claim.host != _host():
        return None
    if claim.pid == os.getpid():
        return claim.token == _own_token()
    try:
        os.kill(claim.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    except OSError:
        return False
    token = _start_token(claim.pid)
    if token == "Z":
        return False
    return token is None or token == claim.token


def recover_claims(folders: Folders) -> list[Path]:
    """Put back in the inbox the jobs claimed by a process of this host that is gone (killed, crashed,
    or the host restarted); returns the jobs put back. They run again, which is harmless: imports
    are idempotent and actions carry idempotency keys. A live owner's claim is never taken; a claim
    by another host is never taken either (its owner cannot be checked from here): see
    `stalled_claims`. The rows go back first and the JSON last, so a job in the inbox is complete.
    A rows file left without its JSON (its owner died while moving a finished job) joins its JSON in
    done/ or failed/.
    """
    returned = []
    for claim in claims(folders):
        if owner_alive(claim) is not False:
            continue
        try:
            if claim.path.name.endswith(".parquet"):
                if not _claimed_json(claim.path).exists():
                    finished = folders.done if (folders.done / f"{claim.job_id}.job.json").exists() else folders.failed
                    _move([(claim.path, f"{claim.job_id}.parquet")], finished)
                continue
            rows = _rows_path(claim.path)
            if rows.exists():
                os.rename(rows, folders.inbox / f"{claim.job_id}.parquet")
            os.rename(claim.path, folders.inbox / f"{claim.job_id}.job.json")
        except FileNotFoundError:
            continue  # another watcher put it back first
        log.warning("inbox job %s: its watcher (pid %s) is gone; the job is put back to run again",
                    claim.job_id, claim.pid)
        returned.append(folders.inbox / f"{claim.job_id}.job.json")
    return returned


def _claimed_json(rows_path: Path) -> Path:
    return rows_path.with_name(rows_path.name.removesuffix(".parquet") + ".job.json")


def stalled_claims(folders: Folders, older_than_minutes: float = STALLED_CLAIM_MINUTES) -> list[Claim]:
    """Claims by another host (or unreadable ones) older than `older_than_minutes`: reported, not taken
    back, because a slow job on a live host would then run twice at once. Its own host puts it back
    when its app restarts; if that host is gone for good, move the two files back into the inbox
    by hand, under the job's id (`<id>.job.json`, `<id>.parquet`)."""
    limit = datetime.now().timestamp() - older_than_minutes * 60
    stalled = []
    for claim in claims(folders):
        try:
            old = claim.path.stat().st_mtime < limit
        except FileNotFoundError:
            continue
        if old and owner_alive(claim) is None:
            stalled.append(claim)
    return stalled


def _move(files: list[tuple[Path, str]], target: Path) -> None:
    """Move each (file, name) that exists into `target` under `name`."""
    target.mkdir(parents=True, exist_ok=True)
    for f, name in files:
        if f.exists():
            shutil.move(str(f), target / name)


def ingest_job(store: Store, job_path: Path, folders: Folders) -> list[ImportResult]:
    """Claim one waiting inbox job and run it; move it to done/ after commit, or to failed/ with the
    reason. A job another watcher claimed first is skipped (nothing is run, [] returned).

    The signature and the actor are checked first: a refused job writes nothing. Without a usable
    inbox key (`InboxKeyError`) no job is touched: they wait in the inbox until the key is fixed.
    """
    key = inbox_key(folders.inbox)
    claimed = claim_job(job_path, folders)
    if claimed is None:
        return []
    job_id = job_path.name.removesuffix(".job.json")
    rows_path = _rows_path(claimed)
    files = [(claimed, job_path.name), (rows_path, f"{job_id}.parquet")]  # done/ and failed/ keep the job's id
    try:
        job, rows = read_signed_job(claimed, key)
        actor = job_actor(store, job)
        if job.get("kind") == "dunning":
            sent = run_automatic_dunning(store, actor, date.fromisoformat(job["as_of"]))
            _move(files, folders.done)
            (folders.done / f"{job_id}.result.csv").write_text(sent.to_csv(index=False))
            return []
        if job.get("kind") in ("action", "experiment", "risk", "forecast"):
            run = {"action": run_action, "experiment": run_experiment_action, "risk": run_risk_action,
                   "forecast": run_backtest_job}[job["kind"]]
            done = run(store, actor, job["action"], job["arguments"])
            _move(files, folders.done)
            (folders.done / f"{job_id}.result.json").write_text(json.dumps(done))
            return []
        mapping = mapping_from_dict(job["mapping"], name=job["mapping"].get("mapping", {}).get("name", "job"))
        if job.get("kind") == "sync":
            results = sync_once(store, job["source"], mapping, actor)
        else:
            if rows is None:
                raise FileNotFoundError(f"the rows file {job_id}.parquet is missing")
            # the rows as signed, read once: a file swapped after the check is never imported
            result = run_import(store, pq.read_table(pa.BufferReader(rows)), mapping, actor,
                                strict=bool(job.get("strict")),
                                source_label=f"{job.get('source') or job_id + '.parquet'} (queued {job.get('created_at')})")
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
    """Put back the jobs whose watcher died (`recover_claims`), then claim and run every waiting job,
    oldest first; the jobs another watcher claims first are theirs."""
    recover_claims(folders)
    results: list[ImportResult] = []
    for job in waiting_jobs(folders.inbox):
        results += ingest_job(store, job, folders)
    return results


class InboxWatcher(threading.Thread):
    """A daemon thread that ingests inbox jobs every `interval_s` seconds until stopped."""

    def __init__(self, store: Store, folders: Folders, interval_s: float) -> None:
        super().__init__(name="ardesk-inbox", daemon=True)
        self.store, self.folders, self.interval_s = store, folders, interval_s
        self._stop_event = threading.Event()
        self.last_error: str | None = None
        self._reported: set[Path] = set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                ingest_pending(self.store, self.folders)
                self._report_stalled()
                recover_interrupted(self.store, SYSTEM)  # deliveries whose process died: queue or uncertain
                run_daily(self.store, datetime.now())  # the day's automatic dunning, once, if switched on
                run_monthly(self.store, datetime.now())  # last month's pack to [pack] recipients, once
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep watching; the error is shown on the imports page
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("inbox watcher")
            self._stop_event.wait(self.interval_s)

    def _report_stalled(self) -> None:
        """Log each claim by another host that has stalled (`stalled_claims`), once."""
        for claim in stalled_claims(self.folders):
            if claim.path not in self._reported:
                self._reported.add(claim.path)
                log.warning("inbox job %s has been claimed by %s (pid %s) for over %d minutes; if that host "
                            "is gone, move %s back into %s as %s.job.json (and its .parquet)", claim.job_id,
                            claim.host, claim.pid, STALLED_CLAIM_MINUTES, claim.path, self.folders.inbox,
                            claim.job_id)

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
