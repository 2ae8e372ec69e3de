"""Starting, stopping and promoting experiments: role-checked (`run_experiments`: analysts and admins)
and audited, each one transaction.

- start: a unique name; a segment (a `customers.segment` value) with customers and no running
  experiment; two different active dunning policies; challenger share 1..99 % of the non-holdout
  customers (50 by default, 10 for a "safe" 90/10); holdout 0..5 %; 1..10 planned looks; planned days
  >= 30 (the metric's window). The segment's customers are assigned on the start date
  (`assignment.assign_experiment`), arms stored.
- stop: a running experiment ends (ended_on, ended_by); dunning goes back to the customers' own policy.
- promote: the winner's policy becomes the segment's: with segmentation rules saved, a new rule-set
  version whose first rule is `segment = <segment>` naming the winner (an existing rule of exactly
  that condition is replaced in place); without rules, the segment's customers' dunning_config_id is
  set to it (one UPDATE, one audit line per customer changed). The experiment is then 'promoted'.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.collections.segmentation import (
    Condition,
    Rule,
    current_rule_set,
    ledger_as_of,
    policies,
    save_rules_in,
)
from analytics.experiments.assignment import assign_experiment
from analytics.experiments.results import METRICS, WINDOW_DAYS
from analytics.experiments.statistics import MAX_LOOKS
from analytics.store.connection import Store, read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import EXPERIMENT_IDS
from analytics.store.schema import experiments as experiments_table

MAX_HOLDOUT_PCT = 5
NAME_LENGTH: int = experiments_table.c.name.type.length


class ExperimentError(ValueError):
    """An experiment that cannot be started, stopped or promoted, said in words."""


_LIST_SQL = """SELECT e.experiment_id, e.name, e.segment, e.champion_config_id, pa.name AS champion,
       e.challenger_config_id, pb.name AS challenger, e.challenger_pct, e.holdout_pct, e.metric, e.looks,
       e.planned_days, e.started_on, e.started_by, e.why, e.status, e.ended_on, e.ended_by, e.winner_config_id,
       (SELECT COUNT(*) FROM experiment_assignments x WHERE x.experiment_id = e.experiment_id) AS customers
FROM experiments e
LEFT JOIN (SELECT d.config_id, d.name FROM dunning_configs d
           WHERE d.version = (SELECT MAX(v.version) FROM dunning_configs v WHERE v.config_id = d.config_id)) pa
  ON pa.config_id = e.champion_config_id
LEFT JOIN (SELECT d.config_id, d.name FROM dunning_configs d
           WHERE d.version = (SELECT MAX(v.version) FROM dunning_configs v WHERE v.config_id = d.config_id)) pb
  ON pb.config_id = e.challenger_config_id"""


def experiments(store: Store) -> pd.DataFrame:
    """Every experiment, newest first, with its policies' names and its customers assigned."""
    return store.read(_LIST_SQL + " ORDER BY e.experiment_id DESC")


def segment_policy(store: Store, segment: str) -> int | None:
    """The policy most of the segment's customers have as their own (`customers.dunning_config_id`,
    ties to the lowest id): the natural champion. None when none of them has one."""
    value = store.scalar("SELECT dunning_config_id FROM customers WHERE segment = :s AND dunning_config_id IS NOT NULL "
                         "GROUP BY dunning_config_id ORDER BY COUNT(*) DESC, dunning_config_id LIMIT 1", {"s": segment})
    return None if value is None else int(value)


def experiment(store: Store, key: int | str) -> dict[str, Any]:
    """One experiment by id or name; ExperimentError when there is none."""
    frame = experiments(store)
    hit = frame[(frame.name == str(key)) | (frame.experiment_id.astype(str) == str(key))]
    if hit.empty:
        raise ExperimentError(f"There is no experiment {key!r}.")
    return hit.iloc[0].to_dict()


def _check_start(conn: sa.Connection, name: str, segment: str, champion: int, challenger: int,
                 challenger_pct: int, holdout_pct: int, metric: str, looks: int, planned_days: int) -> None:
    if not name or len(name) > NAME_LENGTH:
        raise ExperimentError(f"Give the experiment a name of 1 to {NAME_LENGTH} characters.")
    if conn.execute(sa.text("SELECT 1 FROM experiments WHERE name = :n"), {"n": name}).first():
        raise ExperimentError(f"An experiment named {name!r} exists already: choose another name.")
    known = {int(r.config_id): bool(r.active) for r in policies(conn).itertuples(index=False)}
    for label, policy in (("champion", champion), ("challenger", challenger)):
        if policy not in known:
            raise ExperimentError(f"The {label} policy {policy} does not exist.")
        if not known[policy]:
            raise ExperimentError(f"The {label} policy {policy} is not active: dunning would ignore it.")
    if champion == challenger:
        raise ExperimentError("The champion and the challenger are the same policy: an A/A test measures nothing "
                              "about a policy; choose two different ones.")
    if not 1 <= challenger_pct <= 99:
        raise ExperimentError(f"The challenger's share must be 1 to 99 % of the customers (not {challenger_pct}).")
    if not 0 <= holdout_pct <= MAX_HOLDOUT_PCT:
        raise ExperimentError(f"The no-contact holdout may be 0 to {MAX_HOLDOUT_PCT} % (not {holdout_pct}): "
                              "customers in it get no dunning at all.")
    if metric not in METRICS:
        raise ExperimentError(f"Unknown metric {metric!r}: choose one of {', '.join(METRICS)}.")
    if not 1 <= looks <= MAX_LOOKS:
        raise ExperimentError(f"Plan 1 to {MAX_LOOKS} looks (not {looks}).")
    if planned_days < WINDOW_DAYS:
        raise ExperimentError(f"Plan at least {WINDOW_DAYS} days: the metric needs a {WINDOW_DAYS}-day window.")
    if not conn.execute(sa.text("SELECT 1 FROM customers WHERE segment = :s"), {"s": segment}).first():
        raise ExperimentError(f"The segment {segment!r} has no customers.")
    running = conn.execute(sa.text("SELECT name FROM experiments WHERE segment = :s AND status = 'running'"),
                           {"s": segment}).first()
    if running:
        raise ExperimentError(f"The experiment {running.name!r} is already running on the segment {segment!r}: "
                              "stop it first.")


def start_experiment(store: Store, actor: Actor, name: str, segment: str, champion_config_id: int,
                     challenger_config_id: int, challenger_pct: int = 50, holdout_pct: int = 0,
                     metric: str = "collected_30d", looks: int = 5, planned_days: int = 90, why: str = "",
                     as_of: date | None = None) -> dict[str, Any]:
    """Start an experiment and assign the segment's customers (module rules); returns
    {experiment_id, customers, arms: {arm: customers}}."""
    require(actor, "run_experiments")
    name, segment = (name or "").strip(), (segment or "").strip()
    champion, challenger = int(champion_config_id), int(challenger_config_id)
    with store.write() as conn:
        _check_start(conn, name, segment, champion, challenger, int(challenger_pct), int(holdout_pct), metric,
                     int(looks), int(planned_days))
        day = as_of or ledger_as_of(conn)
        experiment_id = reserve_ids(conn, EXPERIMENT_IDS, 1)
        values = {"experiment_id": experiment_id, "name": name, "segment": segment,
                  "champion_config_id": champion, "challenger_config_id": challenger,
                  "challenger_pct": int(challenger_pct), "holdout_pct": int(holdout_pct), "metric": metric,
                  "looks": int(looks), "planned_days": int(planned_days), "started_on": day,
                  "started_by": actor.username, "why": (why or "").strip() or None, "status": "running"}
        conn.execute(experiments_table.insert().values(**values))
        assigned = assign_experiment(conn, experiment_id, segment, int(challenger_pct), int(holdout_pct), day)
        arms = read_df(conn, "SELECT arm, COUNT(*) AS n FROM experiment_assignments WHERE experiment_id = :e "
                             "GROUP BY arm", {"e": experiment_id})
        by_arm = {str(r.arm): int(r.n) for r in arms.itertuples(index=False)}
        audit.record(conn, actor, "experiment.start", "experiment", experiment_id,
                     new={**values, "customers": assigned, "arms": by_arm}, detail=values["why"])
    return {"experiment_id": experiment_id, "customers": assigned, "arms": by_arm}


def _running(conn: sa.Connection, key: int | str) -> Any:
    row = conn.execute(sa.text("SELECT * FROM experiments WHERE CAST(experiment_id AS VARCHAR(20)) = :k "
                               "OR name = :k"), {"k": str(key)}).mappings().first()
    if row is None:
        raise ExperimentError(f"There is no experiment {key!r}.")
    if row["status"] != "running":
        raise ExperimentError(f"The experiment {row['name']!r} is {row['status']}, not running.")
    return row


def stop_experiment(store: Store, actor: Actor, key: int | str, reason: str = "",
                    as_of: date | None = None) -> dict[str, Any]:
    """End a running experiment: its customers go back to their own policy. Audited."""
    require(actor, "run_experiments")
    with store.write() as conn:
        row = _running(conn, key)
        day = as_of or ledger_as_of(conn)
        conn.execute(sa.text("UPDATE experiments SET status = 'stopped', ended_on = :d, ended_by = :u "
                             "WHERE experiment_id = :e"), {"d": day, "u": actor.username, "e": row["experiment_id"]})
        audit.record(conn, actor, "experiment.stop", "experiment", row["experiment_id"],
                     old={"status": "running"}, new={"status": "stopped", "ended_on": day},
                     detail=(reason or "").strip() or None)
    return {"experiment_id": int(row["experiment_id"]), "status": "stopped", "ended_on": day}


def promote_winner(store: Store, actor: Actor, key: int | str, winner: str = "challenger", reason: str = "",
                   as_of: date | None = None) -> dict[str, Any]:
    """Make the winner's policy (`winner`: 'challenger' or 'champion') the segment's policy (module rule)
    and end the experiment as 'promoted', in one transaction. Audited."""
    require(actor, "run_experiments")
    if winner not in ("challenger", "champion"):
        raise ExperimentError(f"The winner is the 'challenger' or the 'champion' (not {winner!r}).")
    with store.write() as conn:
        row = _running(conn, key)
        eid, segment = int(row["experiment_id"]), row["segment"]
        policy = int(row[f"{winner}_config_id"])
        day = as_of or ledger_as_of(conn)
        why = (reason or "").strip() or f"experiment {row['name']}: the {winner} wins"
        current = current_rule_set(conn)
        rule_version = None
        changed = 0
        if current is not None:
            mine = (Condition("segment", "=", segment),)
            rules = list(current["rules"])
            at = next((i for i, r in enumerate(rules) if r.conditions == mine), None)
            rule = Rule(f"{segment} (experiment {row['name']})"[:100], policy, mine)
            if at is None:
                rules.insert(0, rule)
            else:
                rules[at] = Rule(rules[at].name, policy, mine)
            saved = save_rules_in(conn, actor, rules, why, day)
            rule_version, changed = saved["version"], saved["customers_changed"]
        else:
            changed = _set_segment_policy(conn, actor, segment, policy, f"experiment {row['name']} promoted")
        conn.execute(sa.text("UPDATE experiments SET status = 'promoted', ended_on = :d, ended_by = :u, "
                             "winner_config_id = :w WHERE experiment_id = :e"),
                     {"d": day, "u": actor.username, "w": policy, "e": eid})
        audit.record(conn, actor, "experiment.promote", "experiment", eid, old={"status": "running"},
                     new={"status": "promoted", "winner": winner, "winner_config_id": policy,
                          "segment_rule_set": rule_version, "customers_changed": changed, "ended_on": day},
                     detail=why)
    return {"experiment_id": eid, "status": "promoted", "winner_config_id": policy,
            "segment_rule_set": rule_version, "customers_changed": changed}


def _set_segment_policy(conn: sa.Connection, actor: Actor, segment: str, policy: int, detail: str) -> int:
    """Without segmentation rules: the segment's customers follow `policy` (one audit line per customer
    changed, set-based, then one UPDATE)."""
    params = {"s": segment, "p": policy, "now": pd.Timestamp.now().to_pydatetime(), "actor": actor.username,
              "detail": detail}
    which = "segment = :s AND (dunning_config_id IS NULL OR dunning_config_id <> :p)"
    conn.execute(sa.text(f"""INSERT INTO audit_log (logged_at, actor, action, entity, entity_id, old_values,
                                                    new_values, detail)
        SELECT :now, :actor, 'customer.dunning_config', 'customer', customer_id,
               '{{"dunning_config_id": ' || COALESCE(CAST(dunning_config_id AS VARCHAR), 'null') || '}}',
               '{{"dunning_config_id": ' || CAST(:p AS VARCHAR) || '}}', :detail
        FROM customers WHERE {which}"""), params)  # noqa: S608 - constants only
    changed = conn.execute(sa.text(f"UPDATE customers SET dunning_config_id = :p, updated_at = :now "  # noqa: S608
                                   f"WHERE {which}"), params).rowcount
    return int(changed or 0)


def run_experiment_action(store: Store, actor: Actor, action: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Start, stop or promote by plain arguments (what `ardesk experiments` queues in the app's inbox
    while the app owns the store); returns the result with dates as text. A job run twice writes once:
    a second start finds the name taken, a second stop or promote finds the experiment not running."""
    day = date.fromisoformat(arguments["as_of"]) if arguments.get("as_of") else None
    if action == "start":
        done = start_experiment(store, actor, arguments["name"], arguments["segment"], int(arguments["champion"]),
                                int(arguments["challenger"]), int(arguments.get("challenger_pct", 50)),
                                int(arguments.get("holdout_pct", 0)), looks=int(arguments.get("looks", 5)),
                                planned_days=int(arguments.get("planned_days", 90)), why=arguments.get("why", ""),
                                as_of=day)
    elif action == "stop":
        done = stop_experiment(store, actor, arguments["experiment"], arguments.get("reason", ""), day)
    elif action == "promote":
        done = promote_winner(store, actor, arguments["experiment"], arguments.get("winner", "challenger"),
                              arguments.get("reason", ""), day)
    else:
        raise ExperimentError(f"Unknown experiment action {action!r}: start, stop or promote.")
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in done.items()}
