"""The studio's writes named by action: what `ardesk segments apply|reassign`, `ardesk policies apply`
and `ardesk templates apply` queue for the running app when it owns the DuckDB store.

The app's inbox watcher runs a queued job through `named_actions.run_action`, which hands these
actions here: the same engine functions the command line calls directly (`segmentation.save_rules`
and `reassign_all`, `dunning_policies.apply_policies`, `template_file.apply_template_file`), as the
same user, with their role checks, validation and audit. A job carries the file's text (not a
path), so the app applies exactly what was queued; the result (or the preview of a dry run) is the
job's `done/<id>.result.json`: {"action", "file", "dry_run", "outcome" (saved, unchanged, ...), ...}.

Rules:
- The permission is the one the page uses: `edit_segments`, `edit_dunning`, `edit_templates`. The
  store cannot be read when the job is queued, so the app checks the user (active) and their role
  when it runs the job (`inbox.job_actor`), and the engine function checks it again; a queued dry
  run needs the permission too, since it runs in the user's name.
- A dry run writes nothing: it returns the preview the command line would print.
- Running a job twice (a crash between its commit and moving it to done/) changes nothing the
  second time: rules equal to the active version are not saved again, a policy or template equal to
  its latest version is "unchanged", and a re-assignment moves only customers whose policy differs.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from analytics.access.roles import Actor, require
from analytics.collections.dunning_policies import apply_policies, policies_from_toml
from analytics.collections.outreach.template_file import apply_template_file
from analytics.collections.segment_rules_file import rules_from_toml
from analytics.collections.segmentation import (
    current_rule_set,
    ledger_as_of,
    policies,
    preview_rules,
    reassign_all,
    save_rules,
)
from analytics.store.connection import Store

# action -> the permission it needs
STUDIO_ACTIONS: dict[str, str] = {
    "segments_apply": "edit_segments",
    "segments_reassign": "edit_segments",
    "policies_apply": "edit_dunning",
    "templates_apply": "edit_templates",
}


def _day(value: Any) -> date | None:
    return None if value in (None, "") else date.fromisoformat(str(value))


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


def apply_rules_file(store: Store, actor: Actor, text: str, *, reason: str, as_of: date | None = None,
                     dry_run: bool = False) -> dict[str, Any]:
    """Preview a segmentation rules file as of D (default: the ledger's day) and, unless `dry_run`,
    save it as a new version; rules equal to the active version are "unchanged" (nothing saved).
    Returns {"as_of", "changing", "preview" (per rule), "action", "version", "customers_changed"}."""
    require(actor, "edit_segments")
    rules = rules_from_toml(text, policies(store))
    with store.engine.connect() as conn:
        day = as_of or ledger_as_of(conn)
    shown = preview_rules(store, rules, day)
    result: dict[str, Any] = {"as_of": day.isoformat(), "changing": int(shown["changing"].sum()),
                              "preview": _records(shown), "version": None, "customers_changed": 0}
    current = current_rule_set(store)
    if current is not None and current["rules"] == rules:
        return {**result, "action": "unchanged", "version": current["version"]}
    if dry_run:
        return {**result, "action": "would save"}
    saved = save_rules(store, actor, rules, reason, day)
    return {**result, "action": "saved", "version": saved["version"], "customers_changed": saved["customers_changed"]}


def run_studio_action(store: Store, actor: Actor, action: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run one studio action as `actor` with JSON arguments; returns what it did, as JSON values."""
    require(actor, STUDIO_ACTIONS[action])
    dry_run = bool(arguments.get("dry_run"))
    if action == "segments_apply":
        done = apply_rules_file(store, actor, arguments["text"], reason=arguments.get("reason") or "",
                                as_of=_day(arguments.get("as_of")), dry_run=dry_run)
    elif action == "segments_reassign":
        done = {"customers_changed": reassign_all(store, actor, _day(arguments.get("as_of")))}
    elif action == "policies_apply":
        rows = apply_policies(store, actor, policies_from_toml(arguments["text"]), dry_run=dry_run,
                              reason=arguments.get("reason") or "")
        done = {"policies": _records(rows)}
    else:
        done = apply_template_file(store, actor, arguments["text"], why=arguments.get("why") or "",
                                   dry_run=dry_run, customer_id=arguments.get("customer") or None,
                                   as_of=_day(arguments.get("as_of")))
    # the engine's own "action" (created, unchanged, ...) is the job's "outcome"
    return {"action": action, "file": arguments.get("file"), "dry_run": dry_run,
            **{("outcome" if k == "action" else k): v for k, v in done.items()}}
