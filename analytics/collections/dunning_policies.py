"""Dunning policies: created, cloned, edited and retired by analysts, versioned, kept as TOML too.

A policy is a `dunning_configs` row per version with its `dunning_stages` and their
`dunning_stage_channels`. Rules:
- A version that has runs (`dunning_runs` rows naming its config_id and version) is **immutable**:
  `save_policy` makes version + 1 for any change, and `replace_version` (an in-place edit) refuses
  it (`ImmutableVersionError`). A version without runs is edited in place. Runs record the
  version they used (`dunning_runs.config_version`), so effectiveness shows each version's results.
- A stage: stage_no (1, 2, ... in order), name, day_offset (negative: before the due date), basis
  (`due`, `previous_sent`, `end_of_month`: see `dunning_schedule`), mode (`automatic` or `manual`:
  manual stages wait on the worklist for a person), one or more channels (email, letter, call,
  sms, escalation), each with its template, and a fee (NULL: none). The stage's own channel/template columns
  hold its first email channel, else its first channel: what the automatic run sends.
- A policy: grace_days, min_days_between (two messages to one customer), interest_rate (annual,
  e.g. 0.10), book_fees (fees and interest booked as debit adjustments, not only shown), segment
  (the default policy of a segment; NULL: any), and an end action once every stage was sent.
- Retiring sets retired_at on the latest version: the policy doles out nothing any more (its
  customers follow their segment's policy); its history stays.
Every write checks `edit_dunning` and writes one audit line in the same transaction.

End action (`END_ACTION_KINDS`), as JSON on the config: {"kind": "task", "assignee": "user or
queue", "note": "..."}; {"kind": "status", "status": "escalated"}; {"kind": "agency", "agency":
"name", "min_amount": 500, "min_days": 90} (hand-off only above both, else nothing);
{"kind": "write_off_proposal", "assignee": "..."}. See `end_actions`.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.store.connection import Store
from analytics.store.ids import reserve_ids

BASES = ("due", "previous_sent", "end_of_month")
CHANNELS = ("email", "letter", "call", "sms", "escalation")
MODES = ("automatic", "manual")
END_ACTION_KINDS = ("task", "status", "agency", "write_off_proposal")
END_STATUSES = ("escalated", "with_agency", "on_hold", "in_dispute")
CONFIG_IDS = "dunning_config_id_seq"


class DunningPolicyError(ValueError):
    """A policy that cannot be saved as given, said in words naming the field."""


class ImmutableVersionError(DunningPolicyError):
    """An in-place edit of a version that has already sent something."""


@dataclass(frozen=True)
class Channel:
    channel: str
    template: str | None = None


@dataclass(frozen=True)
class Stage:
    stage_no: int
    name: str
    day_offset: int
    channels: tuple[Channel, ...] = (Channel("email"),)
    basis: str = "due"
    mode: str = "automatic"
    fee: Decimal | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    stages: tuple[Stage, ...]
    grace_days: int = 0
    min_days_between: int = 0
    segment: str | None = None
    description: str | None = None
    interest_rate: Decimal | None = None
    book_fees: bool = False
    end_action: dict[str, Any] | None = field(default=None, hash=False)
    config_id: int | None = None
    version: int | None = None

    def content(self) -> dict[str, Any]:
        """What a version is made of (no id, version): two policies with the same content are the same."""
        data = asdict(self)
        data.pop("config_id")
        data.pop("version")
        return json.loads(json.dumps(data, default=str))


# -- validation ----------------------------------------------------------------------------------------

def _decimal(value: Any, where: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise DunningPolicyError(f"{where} must be a number, not {value!r}.") from None
    if not number.is_finite():
        raise DunningPolicyError(f"{where} must be a number, not {value!r}.")
    return number


def validate_policy(policy: Policy) -> Policy:
    """The policy if every field is usable, else `DunningPolicyError` naming the policy, stage and field."""
    name = (policy.name or "").strip()
    if not name:
        raise DunningPolicyError("A policy needs a name.")
    at = f"Policy {name!r}"
    for label, value in (("grace_days", policy.grace_days), ("min_days_between", policy.min_days_between)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DunningPolicyError(f"{at}: {label} must be a whole number of days from 0, not {value!r}.")
    if policy.interest_rate is not None and not (0 <= policy.interest_rate <= 1):
        raise DunningPolicyError(f"{at}: interest_rate is an annual rate between 0 and 1 (0.10 = 10 %), "
                                 f"not {policy.interest_rate}.")
    if not policy.stages:
        raise DunningPolicyError(f"{at} has no stages; add at least one.")
    numbers = [s.stage_no for s in policy.stages]
    if numbers != list(range(1, len(numbers) + 1)):
        raise DunningPolicyError(f"{at}: stages must be numbered 1, 2, 3 ... in order, not {numbers}.")
    for s in policy.stages:
        where = f"{at}, stage {s.stage_no}"
        if not (s.name or "").strip():
            raise DunningPolicyError(f"{where}: the stage needs a name.")
        if not isinstance(s.day_offset, int) or isinstance(s.day_offset, bool):
            raise DunningPolicyError(f"{where}: day_offset must be a whole number of days, not {s.day_offset!r}.")
        if s.basis not in BASES:
            raise DunningPolicyError(f"{where}: basis {s.basis!r} is not one of {', '.join(BASES)}.")
        if s.mode not in MODES:
            raise DunningPolicyError(f"{where}: mode {s.mode!r} is not one of {', '.join(MODES)}.")
        if s.fee is not None and s.fee < 0:
            raise DunningPolicyError(f"{where}: fee must be 0 or more, not {s.fee}.")
        if not s.channels:
            raise DunningPolicyError(f"{where}: the stage needs at least one channel.")
        seen = [c.channel for c in s.channels]
        for c in s.channels:
            if c.channel not in CHANNELS:
                raise DunningPolicyError(f"{where}: channel {c.channel!r} is not one of {', '.join(CHANNELS)}.")
        if len(set(seen)) != len(seen):
            raise DunningPolicyError(f"{where}: a channel is listed twice ({', '.join(seen)}).")
        if s.mode == "automatic" and any(c.channel == "email" and not c.template for c in s.channels):
            raise DunningPolicyError(f"{where}: an automatic email needs a template.")
    _validate_end_action(at, policy.end_action)
    return replace(policy, name=name, stages=tuple(
        replace(s, name=s.name.strip(), channels=_primary_first(s.channels, _primary(s).channel))
        for s in policy.stages))


def _validate_end_action(at: str, action: dict[str, Any] | None) -> None:
    if action is None:
        return
    kind = action.get("kind")
    if kind not in END_ACTION_KINDS:
        raise DunningPolicyError(f"{at}: end_action kind {kind!r} is not one of {', '.join(END_ACTION_KINDS)}.")
    if kind == "status" and action.get("status") not in END_STATUSES:
        raise DunningPolicyError(f"{at}: end_action status {action.get('status')!r} is not one of "
                                 f"{', '.join(END_STATUSES)}.")
    if kind in ("task", "write_off_proposal") and not str(action.get("assignee") or "").strip():
        raise DunningPolicyError(f"{at}: end_action {kind} needs an assignee (a person or a queue).")
    if kind == "agency":
        for key in ("min_amount", "min_days"):
            value = _decimal(action.get(key, 0), f"{at}: end_action {key}")
            if value is None or value < 0:
                raise DunningPolicyError(f"{at}: end_action {key} must be 0 or more.")


# -- reading ---------------------------------------------------------------------------------------------

def list_policies(store: Store) -> pd.DataFrame:
    """Every policy at its latest version: name, version, versions, state (active, history = imported
    and not adopted, retired), grace and spacing, stages, customers assigned, runs of the latest version."""
    return store.read("""
        SELECT d.config_id, d.name, d.version,
               (SELECT COUNT(*) FROM dunning_configs v WHERE v.config_id = d.config_id) AS versions,
               CASE WHEN d.retired_at IS NOT NULL THEN 'retired' WHEN d.active THEN 'active'
                    ELSE 'history' END AS state,
               d.segment, d.grace_days, COALESCE(d.min_days_between, 0) AS min_days_between,
               d.interest_rate, COALESCE(d.book_fees, FALSE) AS book_fees, d.end_action,
               (SELECT COUNT(*) FROM dunning_stages s WHERE s.config_id = d.config_id AND s.version = d.version)
                 AS stages,
               (SELECT COUNT(*) FROM customers c WHERE c.dunning_config_id = d.config_id) AS customers,
               (SELECT COUNT(*) FROM dunning_runs r WHERE r.config_id = d.config_id AND r.config_version = d.version)
                 AS runs,
               d.created_at, d.created_by, d.description
        FROM dunning_configs d
        WHERE d.version = (SELECT MAX(v.version) FROM dunning_configs v WHERE v.config_id = d.config_id)
        ORDER BY d.name, d.config_id""")


def policy_versions(store: Store, config_id: int) -> pd.DataFrame:
    """Every version of one policy: who made it, when, why (description), and its runs."""
    return store.read("""
        SELECT d.version, d.created_at, d.created_by, d.description, d.retired_at,
               (SELECT COUNT(*) FROM dunning_runs r WHERE r.config_id = d.config_id AND r.config_version = d.version)
                 AS runs
        FROM dunning_configs d WHERE d.config_id = :c ORDER BY d.version""", {"c": int(config_id)})


def _config_row(conn: sa.Connection, name_or_id: str | int, version: int | None) -> Any:
    by = "d.config_id = :key" if isinstance(name_or_id, int) else "d.name = :key"
    at = "d.version = :version" if version is not None else \
        "d.version = (SELECT MAX(v.version) FROM dunning_configs v WHERE v.config_id = d.config_id)"
    return conn.execute(sa.text(f"SELECT d.* FROM dunning_configs d WHERE {by} AND {at} "  # noqa: S608
                                "ORDER BY d.config_id LIMIT 1"), {"key": name_or_id, "version": version}).mappings().first()


def _read_policy(conn: sa.Connection, name_or_id: str | int, version: int | None = None) -> Policy | None:
    row = _config_row(conn, name_or_id, version)
    if row is None:
        return None
    key = {"c": row["config_id"], "v": row["version"]}
    stages = conn.execute(sa.text("SELECT * FROM dunning_stages WHERE config_id = :c AND version = :v "
                                  "ORDER BY stage_no"), key).mappings().all()
    channels = conn.execute(sa.text("SELECT stage_no, channel, template FROM dunning_stage_channels "
                                    "WHERE config_id = :c AND version = :v ORDER BY stage_no, channel"),
                            key).mappings().all()
    by_stage: dict[int, list[Channel]] = {}
    for c in channels:
        by_stage.setdefault(int(c["stage_no"]), []).append(Channel(c["channel"], c["template"]))
    return Policy(
        name=row["name"], grace_days=int(row["grace_days"] or 0), min_days_between=int(row["min_days_between"] or 0),
        segment=row["segment"], description=row["description"],
        interest_rate=None if row["interest_rate"] is None else Decimal(str(row["interest_rate"])).normalize(),
        book_fees=bool(row["book_fees"]), end_action=json.loads(row["end_action"]) if row["end_action"] else None,
        config_id=int(row["config_id"]), version=int(row["version"]),
        stages=tuple(Stage(
            stage_no=int(s["stage_no"]), name=s["name"], day_offset=int(s["day_offset"]), basis=s["basis"] or "due",
            mode=s["mode"], fee=None if s["fee"] is None else Decimal(str(s["fee"])),
            # a stage written before v18 (or by an import) has no channel rows: its own channel is the one
            channels=_primary_first(tuple(by_stage.get(int(s["stage_no"]), [Channel(s["channel"], s["template"])])),
                                    s["channel"]))
            for s in stages))


def _primary_first(channels: tuple[Channel, ...], primary: str) -> tuple[Channel, ...]:
    return tuple(sorted(channels, key=lambda c: (c.channel != primary, c.channel)))


def load_policy(store: Store, name_or_id: str | int, version: int | None = None) -> Policy:
    """One policy (by name or config_id) at a version (default: its latest)."""
    with store.engine.connect() as conn:
        policy = _read_policy(conn, name_or_id, version)
    if policy is None:
        raise DunningPolicyError(f"There is no dunning policy {name_or_id!r}"
                                 + (f" at version {version}." if version is not None else "."))
    return policy


def _primary(stage: Stage) -> Channel:
    return next((c for c in stage.channels if c.channel == "email"), stage.channels[0])


# -- writing -----------------------------------------------------------------------------------------------

def _has_runs(conn: sa.Connection, config_id: int, version: int) -> bool:
    return bool(conn.execute(sa.text("SELECT COUNT(*) FROM dunning_runs WHERE config_id = :c AND config_version = :v"),
                             {"c": config_id, "v": version}).scalar())


def _write_version(conn: sa.Connection, actor: Actor, policy: Policy, config_id: int, version: int,
                   active: bool) -> None:
    conn.execute(sa.text("""
        INSERT INTO dunning_configs (config_id, version, name, segment, grace_days, active, description, created_at,
                                     created_by, min_days_between, interest_rate, book_fees, end_action)
        VALUES (:c, :v, :name, :segment, :grace, :active, :description, :now, :by, :spacing, :rate, :book, :end)"""),
        {"c": config_id, "v": version, "name": policy.name, "segment": policy.segment, "grace": policy.grace_days,
         "active": active, "description": policy.description, "now": datetime.now(), "by": actor.username,
         "spacing": policy.min_days_between, "rate": policy.interest_rate, "book": policy.book_fees,
         "end": json.dumps(policy.end_action, sort_keys=True) if policy.end_action else None})
    conn.execute(sa.text("""
        INSERT INTO dunning_stages (config_id, version, stage_no, name, day_offset, channel, template, mode, basis, fee)
        VALUES (:c, :v, :no, :name, :offset, :channel, :template, :mode, :basis, :fee)"""),
        [{"c": config_id, "v": version, "no": s.stage_no, "name": s.name.strip(), "offset": s.day_offset,
          "channel": _primary(s).channel, "template": _primary(s).template, "mode": s.mode, "basis": s.basis,
          "fee": s.fee} for s in policy.stages])
    conn.execute(sa.text("INSERT INTO dunning_stage_channels (config_id, version, stage_no, channel, template) "
                         "VALUES (:c, :v, :no, :channel, :template)"),
                 [{"c": config_id, "v": version, "no": s.stage_no, "channel": c.channel, "template": c.template or None}
                  for s in policy.stages for c in s.channels])


def _delete_version(conn: sa.Connection, config_id: int, version: int) -> None:
    for table in ("dunning_stage_channels", "dunning_stages", "dunning_configs"):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE config_id = :c AND version = :v"),  # noqa: S608
                     {"c": config_id, "v": version})


def replace_version(conn: sa.Connection, actor: Actor, policy: Policy, config_id: int, version: int) -> None:
    """Edit a version in place (inside the caller's transaction); refused for a version with runs."""
    require(actor, "edit_dunning")
    if _has_runs(conn, config_id, version):
        raise ImmutableVersionError(
            f"Version {version} of dunning policy {policy.name!r} has sent stages, so it cannot change: "
            "save the edit as a new version (save_policy does).")
    row = _config_row(conn, config_id, version)
    _delete_version(conn, config_id, version)
    _write_version(conn, actor, policy, config_id, version, bool(row["active"]) if row is not None else True)


def save_policy(store: Store, actor: Actor, policy: Policy, *, reason: str = "") -> dict[str, Any]:
    """Create the policy (a new name) or change it (the name's latest version, or `policy.config_id`).

    Returns {"config_id", "version", "action"}: action is "created", "unchanged", "edited" (the
    latest version had no runs: changed in place) or "new version" (it had runs: version + 1).
    """
    require(actor, "edit_dunning")
    policy = validate_policy(policy)
    with store.write() as conn:
        current = _read_policy(conn, policy.config_id if policy.config_id is not None else policy.name)
        if current is None:
            if policy.config_id is not None:
                raise DunningPolicyError(f"There is no dunning policy with id {policy.config_id}.")
            config_id = reserve_ids(conn, CONFIG_IDS, 1)
            _write_version(conn, actor, policy, config_id, 1, True)
            audit.record(conn, actor, "dunning_policy.create", "dunning_config", config_id,
                         new={"version": 1, **policy.content()}, detail=reason or None)
            return {"config_id": config_id, "version": 1, "action": "created"}
        config_id, version = int(current.config_id), int(current.version)
        if policy.name != current.name and _read_policy(conn, policy.name) is not None:
            raise DunningPolicyError(f"Another dunning policy is already named {policy.name!r}.")
        if policy.content() == current.content():
            return {"config_id": config_id, "version": version, "action": "unchanged"}
        old = {"version": version, **current.content()}
        if _has_runs(conn, config_id, version):
            row = _config_row(conn, config_id, version)
            version += 1
            _write_version(conn, actor, policy, config_id, version, bool(row["active"]))
            action = "new version"
        else:
            replace_version(conn, actor, policy, config_id, version)
            action = "edited"
        audit.record(conn, actor, "dunning_policy.edit", "dunning_config", config_id, old=old,
                     new={"version": version, **policy.content()}, detail=reason or action)
    return {"config_id": config_id, "version": version, "action": action}


def clone_policy(store: Store, actor: Actor, name: str | int, new_name: str) -> dict[str, Any]:
    """A new policy (version 1) with the content of `name`'s latest version under `new_name`."""
    source = load_policy(store, name)
    with store.engine.connect() as conn:
        if _read_policy(conn, new_name.strip()) is not None:
            raise DunningPolicyError(f"A dunning policy named {new_name.strip()!r} already exists.")
    return save_policy(store, actor, replace(source, name=new_name, config_id=None, version=None, segment=None),
                       reason=f"cloned from {source.name} v{source.version}")


def retire_policy(store: Store, actor: Actor, name: str | int) -> dict[str, Any]:
    """Retire the policy (its latest version gets retired_at): it duns nobody any more; returns
    {"config_id", "version", "customers"} (customers assigned to it, who now follow their segment's policy)."""
    require(actor, "edit_dunning")
    with store.write() as conn:
        row = _config_row(conn, name, None)
        if row is None:
            raise DunningPolicyError(f"There is no dunning policy {name!r}.")
        if row["retired_at"] is not None:
            raise DunningPolicyError(f"Dunning policy {row['name']!r} is already retired.")
        key = {"c": row["config_id"], "v": row["version"], "now": datetime.now()}
        conn.execute(sa.text("UPDATE dunning_configs SET retired_at = :now WHERE config_id = :c AND version = :v"), key)
        customers = int(conn.execute(sa.text("SELECT COUNT(*) FROM customers WHERE dunning_config_id = :c"),
                                     key).scalar())
        audit.record(conn, actor, "dunning_policy.retire", "dunning_config", int(row["config_id"]),
                     old={"retired_at": None}, new={"retired_at": key["now"], "version": int(row["version"])},
                     detail=f"{customers} customer(s) assigned")
    return {"config_id": int(row["config_id"]), "version": int(row["version"]), "customers": customers}


# -- TOML ---------------------------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def policies_to_toml(policies: list[Policy]) -> str:
    """The policies as TOML (`[[policy]]` with `[[policy.stage]]`), readable by `policies_from_toml`."""
    out = ["# AR Desk dunning policies: `ardesk policies apply FILE [--dry-run]` saves them "
           "(a changed policy that already sent becomes a new version)."]
    for p in policies:
        out += ["", "[[policy]]", f"name = {_toml_value(p.name)}"]
        if p.version is not None:
            out.append(f"# version {p.version}")
        for key in ("segment", "description"):
            if getattr(p, key):
                out.append(f"{key} = {_toml_value(getattr(p, key))}")
        out += [f"grace_days = {p.grace_days}", f"min_days_between = {p.min_days_between}"]
        if p.interest_rate is not None:
            out.append(f"interest_rate = {_toml_value(p.interest_rate)}")
        out.append(f"book_fees = {_toml_value(p.book_fees)}")
        if p.end_action:
            out.append(f"end_action = {_toml_value(p.end_action)}")
        for s in p.stages:
            out += ["", "[[policy.stage]]", f"name = {_toml_value(s.name)}", f"day_offset = {s.day_offset}",
                    f"basis = {_toml_value(s.basis)}", f"mode = {_toml_value(s.mode)}",
                    "channels = [" + ", ".join(_toml_value({"channel": c.channel, "template": c.template})
                                                for c in s.channels) + "]"]
            if s.fee is not None:
                out.append(f"fee = {_toml_value(s.fee)}")
    return "\n".join(out) + "\n"


_POLICY_KEYS = {"name", "segment", "description", "grace_days", "min_days_between", "interest_rate", "book_fees",
                "end_action", "stage"}
_STAGE_KEYS = {"name", "day_offset", "basis", "mode", "channels", "fee"}


def policies_from_toml(text: str) -> list[Policy]:
    """Policies from TOML; `DunningPolicyError` names the policy, stage and key of a bad value."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DunningPolicyError(f"The file is not valid TOML: {exc}.") from None
    if set(data) - {"policy"} or not isinstance(data.get("policy"), list):
        raise DunningPolicyError("The file must hold [[policy]] tables (and nothing else at the top).")
    policies = []
    for n, raw in enumerate(data["policy"], start=1):
        at = f"[[policy]] {n} ({raw.get('name', 'no name')!r})"
        if unknown := set(raw) - _POLICY_KEYS:
            raise DunningPolicyError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}.")
        stages = []
        for k, s in enumerate(raw.get("stage", []), start=1):
            where = f"{at}, [[policy.stage]] {k}"
            if unknown := set(s) - _STAGE_KEYS:
                raise DunningPolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}.")
            channels = s.get("channels", [{"channel": "email"}])
            if not isinstance(channels, list) or not all(isinstance(c, dict) and "channel" in c for c in channels):
                raise DunningPolicyError(f"{where}: channels must be a list like "
                                         '[{ channel = "email", template = "reminder_friendly" }].')
            stages.append(Stage(stage_no=k, name=str(s.get("name", "")), day_offset=s.get("day_offset"),
                                basis=s.get("basis", "due"), mode=s.get("mode", "automatic"),
                                fee=_decimal(s.get("fee"), f"{where}: fee"),
                                channels=tuple(Channel(str(c["channel"]), c.get("template")) for c in channels)))
        policies.append(validate_policy(Policy(
            name=str(raw.get("name", "")), stages=tuple(stages), grace_days=raw.get("grace_days", 0),
            min_days_between=raw.get("min_days_between", 0), segment=raw.get("segment"),
            description=raw.get("description"), interest_rate=_decimal(raw.get("interest_rate"), f"{at}: interest_rate"),
            book_fees=bool(raw.get("book_fees", False)), end_action=raw.get("end_action"))))
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise DunningPolicyError(f"A policy name appears twice in the file: {', '.join(sorted(names))}.")
    return policies


def export_policies(store: Store) -> str:
    """Every policy that is not retired, at its latest version, as TOML."""
    names = list_policies(store)
    return policies_to_toml([load_policy(store, int(c)) for c in names.loc[names["state"] != "retired", "config_id"]])


def apply_policies(store: Store, actor: Actor, policies: list[Policy], *, dry_run: bool = False,
                   reason: str = "") -> pd.DataFrame:
    """Save each policy (by name) unless `dry_run`; one row per policy: name, action (created,
    unchanged, edited, new version), version it has (or would have)."""
    require(actor, "edit_dunning")
    rows = []
    for policy in policies:
        with store.engine.connect() as conn:
            current = _read_policy(conn, policy.name)
            sent = current is not None and _has_runs(conn, int(current.config_id), int(current.version))
        if dry_run:
            if current is None:
                rows.append({"name": policy.name, "action": "created", "version": 1})
            elif policy.content() == current.content():
                rows.append({"name": policy.name, "action": "unchanged", "version": current.version})
            else:
                rows.append({"name": policy.name, "action": "new version" if sent else "edited",
                             "version": current.version + 1 if sent else current.version})
            continue
        done = save_policy(store, actor, replace(policy, config_id=None), reason=reason or "ardesk policies apply")
        rows.append({"name": policy.name, "action": done["action"], "version": done["version"]})
    return pd.DataFrame(rows, columns=["name", "action", "version"])


def slug(name: str) -> str:
    """A file-name-safe form of a policy name."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "policy"


# -- the page's stage editor: one row per stage, channels as "email:template; letter" ---------------------------

STAGE_ROW_COLUMNS = ["name", "day_offset", "basis", "mode", "channels", "fee"]


def channels_to_text(channels: tuple[Channel, ...]) -> str:
    """"email:reminder_friendly; letter:reminder_letter; call" (a channel without template has no colon)."""
    return "; ".join(c.channel + (f":{c.template}" if c.template else "") for c in channels)


def channels_from_text(text: str, where: str) -> tuple[Channel, ...]:
    """The reverse of `channels_to_text`; `DunningPolicyError` naming `where` for an empty list."""
    parts = [p.strip() for p in re.split(r"[;,]", str(text or "")) if p.strip()]
    if not parts:
        raise DunningPolicyError(f"{where}: channels is empty; write e.g. email:reminder_friendly; letter.")
    return tuple(Channel(p.split(":", 1)[0].strip().lower(), (p.split(":", 1)[1].strip() or None) if ":" in p
                         else None) for p in parts)


def stage_rows(policy: Policy | None) -> pd.DataFrame:
    """The stages as editor rows (`STAGE_ROW_COLUMNS`); one friendly email stage for a new policy."""
    stages = policy.stages if policy else (Stage(1, "Friendly reminder", 1, (Channel("email", "reminder_friendly"),)),)
    return pd.DataFrame([{"name": s.name, "day_offset": s.day_offset, "basis": s.basis, "mode": s.mode,
                          "channels": channels_to_text(s.channels), "fee": None if s.fee is None else float(s.fee)}
                         for s in stages], columns=STAGE_ROW_COLUMNS)


def stages_from_rows(rows: pd.DataFrame) -> tuple[Stage, ...]:
    """Editor rows (in order; empty rows skipped) as stages numbered 1, 2, ...; errors name the row and column."""
    stages = []
    for n, row in enumerate(rows.to_dict("records"), start=1):
        if all(v is None or v == "" or (isinstance(v, float) and v != v) for v in row.values()):
            continue
        where = f"Stage row {n}"
        offset = row.get("day_offset")
        if offset is None or offset != offset or float(offset) != int(float(offset)):
            raise DunningPolicyError(f"{where}: day_offset must be a whole number of days, not {offset!r}.")
        fee = row.get("fee")
        stages.append(Stage(stage_no=len(stages) + 1, name=str(row.get("name") or "").strip(),
                            day_offset=int(float(offset)), basis=str(row.get("basis") or "due"),
                            mode=str(row.get("mode") or "automatic"),
                            channels=channels_from_text(row.get("channels"), where),
                            fee=None if fee is None or fee != fee else _decimal(fee, f"{where}: fee")))
    return tuple(stages)
