"""Cache keys: numbers that change when the data behind a page changes.

Every write is audited (`analytics.access.audit.record`), so the last audit id is a version of the
whole store; pages key their caches on these versions and never show numbers from before a write.
"""

from __future__ import annotations

import threading

import pandas as pd
import sqlalchemy as sa

from analytics.store.connection import Store

# How far below the newest audit id a line committed late is still seen (see `data_version`).
LATE_COMMIT_WINDOW = 1000


def _version(newest: int, recent: int) -> int:
    # One number per (newest id, lines among the window's ids): recent is at most the window's size.
    return newest * (LATE_COMMIT_WINDOW + 1) + recent


def data_version(store: Store) -> int:
    """A number that changes whenever data changes: every write is audited, so the audit log's
    newest id, combined with how many lines hold the `LATE_COMMIT_WINDOW` ids up to it.

    The count is there for several writers on PostgreSQL (app instances, cron imports): an id is
    handed out when a line is written, not when it commits, so a transaction holding id 10 can
    commit after one holding id 11 and leave the newest id unchanged; its line still raises the
    count. On DuckDB one process writes, its writers in turn, so the count is not read there. (A transaction that stays open while more than a window of other writes commits is not
    seen until the next write.) Never decreases while the log only grows. Pages key their caches
    on it, so a page never shows numbers from before an import or action, whichever process made it.
    """
    newest = int(store.scalar("SELECT COALESCE(MAX(audit_id), 0) FROM audit_log"))
    if store.dialect != "postgresql":  # one process, its writers in turn (`Store.write`): ids commit in order
        return _version(newest, 0)
    recent = store.scalar("SELECT COUNT(*) FROM audit_log WHERE audit_id > :above AND audit_id <= :newest",
                          {"above": newest - LATE_COMMIT_WINDOW, "newest": newest})
    return _version(newest, int(recent))


# Audit entities whose writes touch only accounts (sign-ins, users), the activity timeline
# (calls, notes, promises, disputes, tasks), contacts and requests between departments: no ledger,
# customer, FX or dunning figure reads them.
TIMELINE_AND_ACCOUNTS = ("user", "activity", "contact", "request")
_figures_seen: dict[str, tuple[int, int, int]] = {}  # store url -> (data_version, newest figures id, figures_version)
_figures_lock = threading.Lock()


def _figures_lines(store: Store, above: int, up_to: int) -> tuple[int | None, int]:
    """MAX and COUNT of the audit ids of figure-moving lines in (above, up_to]."""
    row = store.read(
        sa.text("SELECT MAX(audit_id) AS newest, COUNT(*) AS n FROM audit_log WHERE audit_id > :above "
                "AND audit_id <= :up_to AND entity NOT IN :ignored").bindparams(sa.bindparam("ignored", expanding=True)),
        {"above": above, "up_to": up_to, "ignored": list(TIMELINE_AND_ACCOUNTS)})
    newest = row["newest"].iloc[0]
    return (None if pd.isna(newest) else int(newest)), int(row["n"].iloc[0])


def figures_version(store: Store) -> int:
    """`data_version` ignoring the writes in `TIMELINE_AND_ACCOUNTS`: the newest audit id of any
    other entity, combined with how many such lines hold the `LATE_COMMIT_WINDOW` ids up to it (a
    figure-moving line committed late raises it). Ledger dashboards key their caches on it, so a
    sign-in or a logged call does not make every chart recompute. Incremental: only audit lines
    from a window below the last figure-moving line on are read.
    """
    latest = data_version(store)
    with _figures_lock:
        seen, newest, version = _figures_seen.get(store.url, (0, 0, 0))
    if latest == seen:
        return version
    above = max(newest - LATE_COMMIT_WINDOW, 0) if latest > seen else 0  # lower: the log was reset
    up_to = latest // (LATE_COMMIT_WINDOW + 1)  # the newest audit id `latest` counted
    found, _ = _figures_lines(store, above, up_to)
    if found is None and above > 0:  # the line seen last is gone: the log was reset
        found, _ = _figures_lines(store, 0, up_to)
    newest = found or 0
    version = _version(newest, _figures_lines(store, newest - LATE_COMMIT_WINDOW, newest)[1]) if newest else 0
    with _figures_lock:
        _figures_seen[store.url] = (latest, newest, version)
    return version
