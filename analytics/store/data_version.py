"""Cache keys: numbers that change when the data behind a page changes.

Every write is audited (`analytics.access.audit.record`), so the last audit id is a version of the
whole store; pages key their caches on these versions and never show numbers from before a write.
"""

from __future__ import annotations

import threading

import pandas as pd
import sqlalchemy as sa

from analytics.store.connection import Store


def data_version(store: Store) -> int:
    """A number that changes whenever data changes: every write is audited, so the last audit id.

    Pages key their caches on it, so a page never shows numbers from before an import or action.
    """
    return int(store.scalar("SELECT COALESCE(MAX(audit_id), 0) FROM audit_log"))


# Audit entities whose writes touch only accounts (sign-ins, users), the activity timeline
# (calls, notes, promises, disputes, tasks), contacts and requests between departments: no ledger,
# customer, FX or dunning figure reads them.
TIMELINE_AND_ACCOUNTS = ("user", "activity", "contact", "request")
_figures_seen: dict[str, tuple[int, int]] = {}  # store url -> (data_version, figures_version)
_figures_lock = threading.Lock()


def figures_version(store: Store) -> int:
    """`data_version` ignoring the writes in `TIMELINE_AND_ACCOUNTS`: the last audit id of any
    other entity. Ledger dashboards key their caches on it, so a sign-in or a logged call does
    not make every chart recompute. Incremental: only audit lines newer than the last call are read.
    """
    latest = data_version(store)
    with _figures_lock:
        seen, version = _figures_seen.get(store.url, (0, 0))
    if latest == seen:
        return version
    after, version = (seen, version) if latest > seen else (0, 0)  # fewer lines: the log was reset
    newer = store.read(
        sa.text("SELECT MAX(audit_id) AS newer FROM audit_log WHERE audit_id > :after AND audit_id <= :latest "
                "AND entity NOT IN :ignored").bindparams(sa.bindparam("ignored", expanding=True)),
        {"after": after, "latest": latest, "ignored": list(TIMELINE_AND_ACCOUNTS)})["newer"].iloc[0]
    version = version if pd.isna(newer) else int(newer)
    with _figures_lock:
        _figures_seen[store.url] = (latest, version)
    return version
