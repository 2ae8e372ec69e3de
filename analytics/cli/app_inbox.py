"""Handing a studio write (`ardesk segments apply|reassign`, `policies apply`, `templates apply`) to the
running app when it owns the DuckDB store: a signed "action" job in its inbox
(`collections.studio_actions`), run by the app's watcher as the same user with the same checks.
`ardesk risk score` is handed over the same way as a "risk" job (`risk.snapshots.run_risk_action`).

DuckDB lets no other process open a file the app holds, not even read-only, so a dry run cannot
preview from here either while the app runs: it is queued too, and the app writes the preview
(nothing else) to `done/<job>.result.json`.
"""

from __future__ import annotations

import argparse
from typing import Any

from analytics.access.roles import Actor
from analytics.ingest.inbox import folders_for, stage_action
from analytics.store.connection import StoreLocked


def queue_for_app(args: argparse.Namespace, action: str, arguments: dict[str, Any], user: str,
                  locked: StoreLocked, kind: str = "action") -> int:
    """Queue `action` (a job of `kind`) for the running app as `user`; print the job and where its result goes."""
    folders = folders_for(args.db)
    # the store cannot be read now: the app checks the user and their current role when it runs the job
    job = stage_action(folders.inbox, action, arguments, Actor(user, "", ""), kind=kind)
    job_id = job.name.removesuffix(".job.json")
    if arguments.get("dry_run"):
        print(f"The AR Desk app is running and owns the store ({locked.path}); DuckDB does not let another "
              f"process open it, not even read-only, so the dry run was queued as job {job_id}; the app will "
              f"write its preview (and save nothing) to {folders.done}/{job_id}.result.json.")
    else:
        print(f"The AR Desk app is running and owns the store ({locked.path}): queued as job {job_id}; the app "
              f"will apply it within a few seconds as {user}, with the same checks. The result goes to "
              f"{folders.done}/{job_id}.result.json (or the reason to {folders.failed}/).")
    return 0
