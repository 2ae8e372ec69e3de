"""Inbox jobs are signed: only a holder of the inbox key queues work, and only as a user who may do it.

A job that is unsigned, altered (one byte of its JSON or of its rows), signed with another key, or
names an actor who is unknown, disabled or lacks the permission goes to failed/ with the reason,
and nothing is written or audited.
"""

from __future__ import annotations

import json
import stat
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from analytics.access.roles import SYSTEM, Actor
from analytics.access.users import add_user, set_active
from analytics.ingest.inbox import (
    KEY_FILE,
    Folders,
    InboxKeyError,
    JobRefused,
    inbox_key,
    ingest_job,
    ingest_pending,
    pending_jobs,
    read_signed_job,
    stage_dunning_run,
    stage_import,
)
from analytics.ingest.mapping import Mapping
from analytics.store.connection import Store

INVOICES = Mapping(dataset="invoices", columns={
    "customer_id": "cust", "document_number": "doc", "posting_date": "date", "amount": "amount"})
ROWS = pa.table({"cust": ["C1", "C1"], "doc": ["I-1", "I-2"], "date": ["2024-01-02", "2024-01-03"],
                 "amount": ["10", "20"]})
WRITTEN = ("ledger_entries", "customers", "import_runs", "audit_log")


@pytest.fixture(autouse=True)
def _key_from_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARDESK_INBOX_KEY", raising=False)


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    return Folders(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed", tmp_path / "quarantine")


def counts(store: Store) -> dict[str, int]:
    return {t: int(store.scalar(f"SELECT COUNT(*) FROM {t}")) for t in WRITTEN}  # noqa: S608 - our names


def refused(store: Store, job: Path, folders: Folders, before: dict[str, int]) -> str:
    """Ingest `job`, assert it was refused with nothing written, and return its error text."""
    assert ingest_job(store, job, folders) == []
    assert (folders.failed / job.name).exists() and not job.exists()
    assert not (folders.done / job.name).exists()
    assert counts(store) == before
    return (folders.failed / f"{job.name}.error.txt").read_text()


def test_a_signed_job_ingests_as_its_actor(store: Store, folders: Folders) -> None:
    add_user(store, SYSTEM, "ann", "Ann Admin", "admin")
    job = stage_import(folders.inbox, ROWS, INVOICES, Actor("ann", "admin", "Ann Admin"), source_label="inv.csv")
    assert "hmac-sha256:" in json.loads(job.read_text())["signature"]
    [result] = ingest_pending(store, folders)
    assert (result.status, result.inserted) == ("ok", 2)
    assert (folders.done / job.name).exists() and not list(folders.failed.glob("*"))
    assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'ann' AND action LIKE 'import%'") >= 1


def test_the_key_file_is_private_and_shared_by_every_stager(folders: Folders) -> None:
    first = inbox_key(folders.inbox)
    path = folders.inbox.parent / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert inbox_key(folders.inbox) == first  # the CLI and the app read the same secret
    assert not list(path.parent.glob(f"{KEY_FILE}.*.tmp"))


def test_a_hand_written_unsigned_job_naming_the_cfo_is_refused(store: Store, folders: Folders) -> None:
    add_user(store, SYSTEM, "cfo", "Carla CFO", "cfo")
    stage_import(folders.inbox, ROWS, INVOICES, SYSTEM)  # a real job beside it: the key exists
    good = pending_jobs(folders.inbox)[0]
    forged = folders.inbox / "20990101-000000-forged00.job.json"
    payload = json.loads(good.read_text())
    payload.pop("signature")
    payload["actor"] = {"username": "cfo", "role": "cfo", "name": "Carla CFO"}
    forged.write_text(json.dumps(payload))
    (folders.inbox / "20990101-000000-forged00.parquet").write_bytes(
        (good.with_name(good.name.removesuffix(".job.json") + ".parquet")).read_bytes())
    before = counts(store)
    error = refused(store, forged, folders, before)
    assert "not signed" in error
    assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'cfo'") == 0


def test_a_job_signed_with_another_key_is_refused(store: Store, folders: Folders,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARDESK_INBOX_KEY", "a-key-that-is-not-the-app-s-0123456789abcdef")
    job = stage_import(folders.inbox, ROWS, INVOICES, SYSTEM)
    monkeypatch.setenv("ARDESK_INBOX_KEY", "the-app-s-own-key-0123456789abcdef0123456789")
    assert "does not match" in refused(store, job, folders, counts(store))


def test_flipping_any_byte_of_the_job_json_is_refused(folders: Folders) -> None:
    job = stage_import(folders.inbox, ROWS, INVOICES, SYSTEM)
    key = inbox_key(folders.inbox)
    original = job.read_bytes()
    read_signed_job(job, key)  # as written: accepted
    for i in range(len(original)):
        job.write_bytes(original[:i] + bytes([original[i] ^ 0x01]) + original[i + 1:])
        with pytest.raises(JobRefused):
            read_signed_job(job, key)


def test_flipping_one_byte_of_the_json_or_the_rows_is_refused_on_ingest(store: Store, folders: Folders) -> None:
    before = counts(store)
    for part, where in ((".job.json", '"strict": false'), (".parquet", None)):
        job = stage_import(folders.inbox, ROWS, INVOICES, SYSTEM)
        target = job.with_name(job.name.removesuffix(".job.json") + part)
        data = bytearray(target.read_bytes())
        # the JSON: strict false -> true (a meaningful edit); the rows: a byte in the middle of the file
        i = data.index(b"false") if where else len(data) // 2
        if where:
            data[i:i + 5] = b"true "
        else:
            data[i] ^= 0x01
        target.write_bytes(bytes(data))
        assert "does not match" in refused(store, job, folders, before), part


@pytest.mark.parametrize("role, active, reason", [
    ("cfo", True, "may not import data"),
    ("admin", False, "disabled"),
    (None, True, "not a user"),
])
def test_a_signed_job_whose_actor_may_not_run_it_is_refused(store: Store, folders: Folders, role: str | None,
                                                           active: bool, reason: str) -> None:
    add_user(store, SYSTEM, "keeper", "Keeper", "admin")  # the last admin cannot be disabled
    if role:
        add_user(store, SYSTEM, "pat", "Pat", role)
        if not active:
            set_active(store, SYSTEM, "pat", False)
    job = stage_import(folders.inbox, ROWS, INVOICES, Actor("pat", "admin", "Pat"))  # the job claims admin
    before = counts(store)
    assert reason in refused(store, job, folders, before)
    assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'pat' AND action NOT LIKE 'user%'") == 0


def test_a_signed_dunning_job_naming_an_analyst_is_refused(store: Store, folders: Folders) -> None:
    add_user(store, SYSTEM, "ana", "Ana", "analyst")
    job = stage_dunning_run(folders.inbox, date(2026, 10, 31), Actor("ana", "collector", "Ana"))
    assert "may not act on customers" in refused(store, job, folders, counts(store))


def test_a_forged_job_waiting_in_the_inbox_is_never_reused(folders: Folders) -> None:
    folders.inbox.mkdir(parents=True)
    forged = folders.inbox / "00000000-000000-forged00.job.json"
    forged.write_text(json.dumps({"kind": "dunning", "as_of": "2026-10-31",
                                  "actor": {"username": "cfo", "role": "admin"}}))
    job = stage_dunning_run(folders.inbox, date(2026, 10, 31), SYSTEM)
    assert job != forged
    assert stage_dunning_run(folders.inbox, date(2026, 10, 31), SYSTEM) == job


def test_without_a_usable_key_jobs_wait_in_the_inbox(store: Store, folders: Folders,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    job = stage_import(folders.inbox, ROWS, INVOICES, SYSTEM)
    monkeypatch.setenv("ARDESK_INBOX_KEY", "short")
    with pytest.raises(InboxKeyError, match="32 characters"):
        ingest_pending(store, folders)
    assert job.exists() and not folders.failed.exists()
    monkeypatch.delenv("ARDESK_INBOX_KEY")
    assert [r.inserted for r in ingest_pending(store, folders)] == [2]
