"""The "Exhausted" queue: customers whose dunning policy has nothing left to send, and its end action.

Rule: a customer is **exhausted as of D** when it has an open invoice (open amount > 0 as of D,
not held: `collections.holds`) whose last stage sent (outcome 'sent', 'done' or 'waived', on or before D)
under the customer's current policy is that policy's last stage (at its live version). Counters
follow the policy like the run's (`dunning_schedule`): stages sent under another policy do not count.
One row per customer: its policy and version, the end action, the exhausted invoices, their open
amount (reporting currency at D's rate), the most days past due, when the last stage went, and
whether the end action was taken (`end_action_done`).

End action (the policy's "plan B", `dunning_policies.END_ACTION_KINDS`), taken by `run_end_actions`
once per customer and policy (an activity with idempotency key "dunning-end-<config>-<customer
digest>"), in one transaction with one audit line per customer ("dunning.end_action"):
- task: a task activity assigned to the action's assignee (a person or a queue), due D;
- write_off_proposal: the same, subject "Write-off proposal";
- status: the customer's status becomes the action's status; an escalation activity records it;
- agency: only when the exhausted amount >= min_amount and the most days past due >= min_days:
  status with_agency and an escalation activity targeting the agency; below either, nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.collections.dunning_schedule import CONFIG_OF_CUSTOMER_SQL
from analytics.collections.holds import dunning_hold_sql
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.schema import activities

EXHAUSTED_SQL = f"""WITH items AS ({OPEN_ITEMS_SQL}),
{CONFIG_OF_CUSTOMER_SQL},
final_stage AS (
    SELECT config_id, version, MAX(stage_no) AS final_stage FROM dunning_stages GROUP BY config_id, version
), sent AS (
    SELECT entry_id, config_id, MAX(stage_no) AS last_stage, MAX(run_date) AS last_date FROM dunning_runs
    WHERE run_date <= :as_of AND outcome IN ('sent', 'done', 'waived') GROUP BY entry_id, config_id
)
SELECT cc.customer_id, MIN(c.name) AS customer_name, lv.config_id, MIN(d.name) AS policy,
       lv.version AS policy_version, MIN(d.end_action) AS end_action, COUNT(*) AS invoices,
       SUM(i.open_amount * i.fx_rate) AS open_amount, MAX(i.days_past_due) AS max_days_past_due,
       MAX(sn.last_date) AS last_stage_sent_on
FROM items i
JOIN customer_config cc ON cc.customer_id = i.customer_id
JOIN live lv ON lv.config_id = cc.config_id
JOIN final_stage fs ON fs.config_id = lv.config_id AND fs.version = lv.version
JOIN sent sn ON sn.entry_id = i.entry_id AND sn.config_id = cc.config_id
JOIN dunning_configs d ON d.config_id = lv.config_id AND d.version = lv.version
JOIN customers c ON c.customer_id = cc.customer_id
WHERE i.open_amount > 0 AND sn.last_stage >= fs.final_stage
  AND NOT {dunning_hold_sql("i.entry_id", "i.customer_id")}
GROUP BY cc.customer_id, lv.config_id, lv.version
ORDER BY cc.customer_id"""  # noqa: S608 - constants only

EXHAUSTED_COLUMNS = ["customer_id", "customer_name", "config_id", "policy", "policy_version", "end_action",
                     "invoices", "open_amount", "max_days_past_due", "last_stage_sent_on", "end_action_done"]


def end_action_key(config_id: int, customer_id: str) -> str:
    """The idempotency key of a policy's end action for one customer (fits the 64-character column)."""
    return f"dunning-end-{int(config_id)}-{hashlib.sha1(customer_id.encode()).hexdigest()[:24]}"  # noqa: S324


def exhausted_customers(store: Store, as_of: date) -> pd.DataFrame:
    """The Exhausted queue as of D (module rule): one row per customer, most open amount first."""
    found = store.read(EXHAUSTED_SQL, {"as_of": as_of, "reporting": load_settings().reporting_currency})
    if found.empty:
        return pd.DataFrame(columns=EXHAUSTED_COLUMNS)
    keys = [end_action_key(int(c), str(k)) for c, k in zip(found["config_id"], found["customer_id"], strict=True)]
    done = set(store.read("SELECT idempotency_key FROM activities WHERE idempotency_key LIKE 'dunning-end-%'")
               ["idempotency_key"])
    found["end_action_done"] = [k in done for k in keys]
    found["open_amount"] = found["open_amount"].astype(float).round(2)
    return found.sort_values(["open_amount", "customer_id"], ascending=[False, True],
                             ignore_index=True)[EXHAUSTED_COLUMNS]


def _due_actions(queue: pd.DataFrame) -> pd.DataFrame:
    """The rows whose end action is set, not yet taken, and (agency) above its thresholds."""
    rows = queue[queue["end_action"].notna() & ~queue["end_action"].astype(bool).eq(False)
                 & ~queue["end_action_done"]].copy()
    rows["action"] = [json.loads(a) for a in rows["end_action"]]

    def above(row: pd.Series) -> bool:
        action = row["action"]
        if action.get("kind") != "agency":
            return True
        return (float(row["open_amount"] or 0) >= float(action.get("min_amount") or 0)
                and int(row["max_days_past_due"] or 0) >= int(action.get("min_days") or 0))
    return rows[rows.apply(above, axis=1)] if len(rows) else rows


def run_end_actions(store: Store, actor: Actor, as_of: date) -> pd.DataFrame:
    """Take the end action of every exhausted customer that has not had it (module rule); one row per
    customer acted on: customer_id, policy, kind, detail. Permission `act_on_customers`."""
    require(actor, "act_on_customers")
    todo = _due_actions(exhausted_customers(store, as_of))
    out = []
    if todo.empty:
        return pd.DataFrame(columns=["customer_id", "policy", "kind", "detail"])
    now = datetime.now()
    with store.write() as conn:
        for r in todo.itertuples(index=False):  # exhausted customers: a short queue, one action each
            action, kind = r.action, r.action["kind"]
            key = end_action_key(int(r.config_id), str(r.customer_id))
            if conn.execute(sa.text("SELECT COUNT(*) FROM activities WHERE idempotency_key = :k"),
                            {"k": key}).scalar():
                continue
            what = f"{int(r.invoices)} invoice(s), {float(r.open_amount or 0):,.2f} open after every stage of " \
                   f"{r.policy} (v{int(r.policy_version)})"
            if kind in ("task", "write_off_proposal"):
                subject = ("Write-off proposal" if kind == "write_off_proposal" else "Dunning exhausted")
                values = {"kind": "task", "assignee": str(action.get("assignee"))[:64], "subject": subject,
                          "body": (str(action.get("note") or "") + "\n" + what).strip(), "due_date": as_of,
                          "status": "open"}
                detail = f"{subject} for {action.get('assignee')}"
            else:
                status = "with_agency" if kind == "agency" else str(action.get("status"))
                target = str(action.get("agency") or "agency") if kind == "agency" else status
                old = conn.execute(sa.text("SELECT status FROM customers WHERE customer_id = :c"),
                                   {"c": r.customer_id}).scalar()
                conn.execute(sa.text("UPDATE customers SET status = :s, updated_at = :now WHERE customer_id = :c"),
                             {"s": status, "now": now, "c": r.customer_id})
                audit.record(conn, actor, "customer.status", "customer", r.customer_id, old={"status": old},
                             new={"status": status}, detail=f"end action of dunning policy {r.policy}")
                values = {"kind": "escalation", "target": target[:64], "subject": f"Status {status}",
                          "body": what}
                detail = f"status {old} -> {status}" + (f" ({target})" if kind == "agency" else "")
            conn.execute(activities.insert().values(
                customer_id=r.customer_id, occurred_at=now, author=actor.username, amount=r.open_amount,
                reason=f"dunning policy {r.policy} exhausted"[:200], idempotency_key=key, **values))
            audit.record(conn, actor, "dunning.end_action", "customer", r.customer_id,
                         new={"config_id": int(r.config_id), "version": int(r.policy_version), "kind": kind},
                         detail=detail)
            out.append({"customer_id": r.customer_id, "policy": r.policy, "kind": kind, "detail": detail})
    return pd.DataFrame(out, columns=["customer_id", "policy", "kind", "detail"])
