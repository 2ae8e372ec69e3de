"""The collector's worklist: every actionable item with its reason, ranked by priority.

Reasons (one row per customer and reason; per stage for dunning):
- `dunning_stage`: open invoices due for their next dunning stage (see `dunning_schedule`);
- `promise_due_today`: a pending promise to pay whose date is D;
- `broken_promise`: a promise broken within the last 30 days;
- `dispute_waiting`: a dispute open as of D (`collections.disputes`) whose answer is overdue: its
  answer date (`answer_due_sql`: the dispute's own `due_date`, else opened + the department's
  DISPUTE_ANSWER_DAYS) is before D. Until then it waits with its department, not on the list, so
  a dispute the collector logs today never becomes their item today;
- `task_due`: an open task due on or before D + UPCOMING_TASK_DAYS (for the collector: tasks
  assigned to them); one due after D is shown as upcoming (group 'upcoming', not yet due);
- `newly_past_due`: the customer's oldest open invoice went past due in the last 7 days;
- `portal_dispute`: a dispute the customer raised in the portal (author `portal:<id>`), not resolved
  by D: the collector's item at once ("Customer disputed INV-x from the portal"), not after the
  department's answer date;
- `expected_payment`: a remittance advice from the portal ("I have paid") whose stated payment date is
  at most EXPECTED_PAYMENT_DAYS before D;
- `portal_message`: the customer's latest message in the portal (one item per customer);
- `no_ap_contact`: a customer with open invoices and no active accounts-payable contact with an
  email that has not bounced, or a phone (`collections.contacts`: a working contact).
An item leaves the list when acted on: tasks only when completed (`followups.complete_task`); `no_ap_contact` when a contact is
added; the others when an email, letter, call, note, promise, dispute or escalation, or a reply in
the portal, is logged for the customer by staff (what the customer does in
the portal is not acting on the item) after the item arose (the activity that raised it, such
as the dispute itself, does not count; a dunning stage also leaves when its run is recorded). A snooze (activity kind 'snooze', `target` = a reason code or empty for all)
hides the customer's items until its date.

Groups (column `group`): 'now' (the list, ranked), 'upcoming' (tasks not yet due) and 'stale'
(items that arose more than STALE_DAYS before D, e.g. a task due two years ago: grouped apart,
not ranked with the rest). `rank` is 1..n within 'now' (blank elsewhere). `band` splits 'now' by
priority mass: walking down the ranks, an item is High while the items above it hold less than
HIGH_SHARE (50 %) of the group's total priority, Medium while they hold less than MEDIUM_SHARE
(80 %), else Low (and Low when its priority is 0); upcoming and stale items are Low.

Priority = amount_at_risk × days_factor × history_factor × risk_factor, each a column:
- amount_at_risk: dunning items: the open amount of the invoices due for the stage; other items:
  the customer's overdue amount, or its open amount when nothing is overdue (reporting currency);
- days_factor = max(1, the customer's oldest days past due);
- history_factor = 1 + min(max(average days late over 365 days, 0), 90) / 30  (1 = pays on time,
  4 = pays three months late or worse; no payment history: 1);
- risk_factor = 1 + RISK_WEIGHT x (100 - risk score) / 100, the score of the customer's latest stored
  risk snapshot scored on or before D (`risk_snapshots`, written by `analytics.risk`; read here in SQL,
  the workflow does not import the risk layer): 1 for the safest, at most 1.25; no snapshot: 1. The
  weight is small on purpose: the score already reflects days late, which history_factor counts.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

from analytics.collections.customer_360 import AVG_DAYS_LATE_SQL, HISTORY_DAYS
from analytics.collections.disputes import answer_due_sql, open_dispute_sql
from analytics.collections.dunning_schedule import CONFIG_OF_CUSTOMER_SQL, DUE_CTES
from analytics.collections.followups import refresh_promise_statuses
from analytics.ledger.open_items import OPEN_ITEMS_SQL, ledger_bounds
from analytics.settings import load_settings
from analytics.store.connection import Store

BROKEN_PROMISE_DAYS = 30
NEWLY_PAST_DUE_DAYS = 7
UPCOMING_TASK_DAYS = 7  # tasks due within a week after D are shown, marked as not yet due
EXPECTED_PAYMENT_DAYS = 30  # a remittance advice stays an item this long after its stated payment date
STALE_DAYS = 90  # items that arose longer ago than this are grouped apart as stale
RISK_WEIGHT = 0.25  # the risk score's weight in the priority (risk_factor, see above)
HIGH_SHARE, MEDIUM_SHARE = 0.5, 0.8  # priority bands by share of the ranked list's priority mass
GROUPS = ("now", "upcoming", "stale")
# A reassignment is no action on the item: it hands the item to the new collector, whose list shows it.
ACTION_KINDS = ("email", "letter", "call", "note", "promise", "dispute", "escalation", "portal_message")

REASON_LABELS = {
    "dunning_stage": "Dunning stage due",
    "promise_due_today": "Promise due today",
    "broken_promise": "Broken promise",
    "dispute_waiting": "Dispute waiting for an answer",
    "task_due": "Task due",
    "newly_past_due": "Newly past due",
    "no_ap_contact": "No accounts-payable contact",
    "portal_dispute": "Disputed in the portal",
    "expected_payment": "Expected payment",
    "portal_message": "Message from the portal",
}

WORKLIST_COLUMNS = [
    "priority", "customer_id", "customer_name", "collector", "reason", "reason_label", "detail",
    "amount_at_risk", "days_factor", "history_factor", "risk_factor", "since", "entry_id", "activity_id", "template",
    "group", "rank", "band",
]

_ACTION_LIST = ", ".join(f"'{k}'" for k in ACTION_KINDS)

WORKLIST_SQL = f"""
WITH items AS ({OPEN_ITEMS_SQL}),
{CONFIG_OF_CUSTOMER_SQL},
{DUE_CTES},
due AS (SELECT * FROM reached WHERE rn = 1),
cust AS (
    SELECT customer_id,
           SUM(CASE WHEN open_amount > 0 THEN open_amount * fx_rate ELSE 0 END) AS open_ar,
           SUM(CASE WHEN open_amount > 0 AND days_past_due > 0 THEN open_amount * fx_rate ELSE 0 END) AS overdue_ar,
           MAX(CASE WHEN open_amount > 0 THEN days_past_due END) AS max_dpd
    FROM items GROUP BY customer_id
), history AS ({AVG_DAYS_LATE_SQL}),
risk AS (
    SELECT s.customer_id, s.score FROM risk_snapshots s
    WHERE s.as_of = (SELECT MAX(t.as_of) FROM risk_snapshots t WHERE t.customer_id = s.customer_id AND t.as_of <= :as_of)
),
last_action AS (
    SELECT customer_id, MAX(occurred_at) AS acted_at FROM activities
    WHERE kind IN ({_ACTION_LIST}) AND author NOT LIKE 'portal:%' GROUP BY customer_id
), raw AS (
    SELECT customer_id, 'dunning_stage' AS reason,
           CAST(COUNT(*) AS VARCHAR) || ' invoice(s) due for stage ' || CAST(stage_no AS VARCHAR) || ' '
             || stage_name || ' (' || channel || COALESCE(', template ' || template, '') || ')' AS detail,
           MIN(entry_id) AS entry_id, CAST(NULL AS BIGINT) AS activity_id,
           CAST(MAX(due_date + day_offset) AS TIMESTAMP) AS since,
           SUM(open_amount * fx_rate) AS item_amount, template
    FROM due GROUP BY customer_id, stage_no, stage_name, channel, template
    UNION ALL
    SELECT customer_id, 'promise_due_today', 'Promise to pay ' || CAST(amount AS VARCHAR) || ' due today',
           entry_id, activity_id, GREATEST(CAST(CAST(:as_of AS DATE) AS TIMESTAMP), occurred_at), NULL, NULL
    FROM activities WHERE kind = 'promise' AND status = 'pending' AND due_date = :as_of
    UNION ALL
    SELECT customer_id, 'broken_promise',
           'Promise to pay ' || CAST(amount AS VARCHAR) || ' by ' || CAST(due_date AS VARCHAR) || ' was broken',
           entry_id, activity_id, CAST(due_date + 1 AS TIMESTAMP), NULL, NULL
    FROM activities WHERE kind = 'promise' AND status = 'broken'
      AND due_date >= :broken_since AND due_date < :as_of
    UNION ALL
    SELECT customer_id, 'dispute_waiting',
           'Dispute with ' || COALESCE(department, '?') || ' since ' || CAST(CAST(occurred_at AS DATE) AS VARCHAR)
             || ', answer was due ' || CAST({answer_due_sql("a")} AS VARCHAR) || ': ' || COALESCE(reason, ''),
           entry_id, activity_id, CAST({answer_due_sql("a")} + 1 AS TIMESTAMP), NULL, NULL
    FROM activities a WHERE {open_dispute_sql("a")} AND {answer_due_sql("a")} < :as_of
    UNION ALL
    SELECT customer_id, 'task_due',
           'Task due ' || CAST(due_date AS VARCHAR) || ' for ' || COALESCE(assignee, '?') || ': '
             || COALESCE(subject, ''),
           entry_id, activity_id, CAST(due_date AS TIMESTAMP), NULL, NULL
    FROM activities WHERE kind = 'task' AND status = 'open' AND due_date <= :task_horizon {{task_filter}}
    UNION ALL
    SELECT a.customer_id, 'portal_dispute',
           'Customer disputed ' || COALESCE((SELECT STRING_AGG(e.document_number, ', ' ORDER BY e.document_number)
                                             FROM activity_invoices ai JOIN ledger_entries e ON e.entry_id = ai.entry_id
                                             WHERE ai.activity_id = a.activity_id), 'the account')
             || ' from the portal: ' || COALESCE(a.reason, ''),
           a.entry_id, a.activity_id, a.occurred_at, NULL, NULL
    FROM activities a WHERE a.kind = 'dispute' AND a.author LIKE 'portal:%'
      AND (a.resolved_at IS NULL OR CAST(a.resolved_at AS DATE) > :as_of)
    UNION ALL
    SELECT customer_id, 'expected_payment', 'Expected payment: ' || COALESCE(subject, ''),
           entry_id, activity_id, occurred_at, NULL, NULL
    FROM activities WHERE kind = 'remittance' AND paid_on >= :expected_since
    UNION ALL
    SELECT m.customer_id, 'portal_message', 'Message from the portal: ' || SUBSTRING(COALESCE(m.body, ''), 1, 120),
           NULL, m.activity_id, m.occurred_at, NULL, NULL
    FROM activities m WHERE m.kind = 'portal_message' AND m.outcome = 'in'
      AND m.activity_id = (SELECT MAX(l.activity_id) FROM activities l
                           WHERE l.customer_id = m.customer_id AND l.kind = 'portal_message' AND l.outcome = 'in')
    UNION ALL
    SELECT customer_id, 'newly_past_due',
           'Oldest open invoice went past due ' || CAST(max_dpd AS VARCHAR) || ' day(s) ago',
           NULL, NULL, CAST(CAST(:as_of AS DATE) - CAST(max_dpd AS INTEGER) + 1 AS TIMESTAMP), NULL, NULL
    FROM cust WHERE max_dpd BETWEEN 1 AND :newly_days
    UNION ALL
    SELECT cu.customer_id, 'no_ap_contact', 'No active accounts-payable contact with an email or phone',
           NULL, NULL, CAST(NULL AS TIMESTAMP), NULL, NULL
    FROM cust cu WHERE cu.open_ar > 0 AND NOT EXISTS (
        SELECT 1 FROM contacts k WHERE k.customer_id = cu.customer_id AND k.active
          AND k.role = 'accounts_payable'
          AND ((k.email LIKE '%_@_%' AND k.bounced_at IS NULL) OR k.phone IS NOT NULL))
)
SELECT r.customer_id, c.name AS customer_name, c.collector, r.reason, r.detail, r.entry_id, r.activity_id,
       r.since, r.template,
       COALESCE(r.item_amount,
                CASE WHEN COALESCE(cu.overdue_ar, 0) > 0 THEN cu.overdue_ar ELSE COALESCE(cu.open_ar, 0) END)
         AS amount_at_risk,
       CASE WHEN COALESCE(cu.max_dpd, 0) > 1 THEN cu.max_dpd ELSE 1 END AS days_factor,
       1 + CASE WHEN h.avg_days_late IS NULL OR h.avg_days_late <= 0 THEN 0
                WHEN h.avg_days_late >= 90 THEN 90 ELSE h.avg_days_late END / 30.0 AS history_factor,
       1 + {RISK_WEIGHT} * (100 - COALESCE(rk.score, 100)) / 100.0 AS risk_factor
FROM raw r
JOIN customers c ON c.customer_id = r.customer_id
LEFT JOIN cust cu ON cu.customer_id = r.customer_id
LEFT JOIN history h ON h.customer_id = r.customer_id
LEFT JOIN risk rk ON rk.customer_id = r.customer_id
LEFT JOIN last_action la ON la.customer_id = r.customer_id
WHERE (r.reason = 'task_due' OR c.status NOT IN ('with_agency', 'written_off'))
  AND (r.reason = 'task_due' OR r.since IS NULL OR la.acted_at IS NULL OR la.acted_at <= r.since)
  AND NOT EXISTS (SELECT 1 FROM activities s WHERE s.kind = 'snooze' AND s.customer_id = r.customer_id
                  AND s.due_date > :as_of AND (s.target IS NULL OR s.target = r.reason))
  {{collector_filter}}
"""  # noqa: S608 - composed from constants only


def default_as_of(store: Store) -> date:
    """Today, or the last posting date when the ledger stops earlier (a demo or a stale export)."""
    _, last = ledger_bounds(store)
    return min(date.today(), last) if last else date.today()


def worklist(store: Store, as_of: date, collector: str | None = None) -> pd.DataFrame:
    """Every actionable item for `collector` (None: the whole team), highest priority first.

    Refreshes promise statuses first (kept/broken follow payments). Columns: WORKLIST_COLUMNS.
    """
    refresh_promise_statuses(store, as_of)
    params: dict[str, Any] = {
        "as_of": as_of, "reporting": load_settings().reporting_currency,
        "history_start": as_of - timedelta(days=HISTORY_DAYS),
        "broken_since": as_of - timedelta(days=BROKEN_PROMISE_DAYS), "newly_days": NEWLY_PAST_DUE_DAYS,
        "task_horizon": as_of + timedelta(days=UPCOMING_TASK_DAYS),
        "expected_since": as_of - timedelta(days=EXPECTED_PAYMENT_DAYS),
    }
    task_filter = collector_filter = ""
    if collector:
        params["collector"] = collector
        task_filter = ("AND (assignee = :collector OR (assignee IS NULL AND customer_id IN "
                       "(SELECT customer_id FROM customers WHERE collector = :collector)))")
        collector_filter = "AND (r.reason = 'task_due' OR c.collector = :collector)"
    sql = WORKLIST_SQL.replace("{task_filter}", task_filter).replace("{collector_filter}", collector_filter)
    frame = store.read(sql, params)
    frame["reason_label"] = frame["reason"].map(REASON_LABELS)
    frame["amount_at_risk"] = frame["amount_at_risk"].astype(float).round(2)
    frame["days_factor"] = frame["days_factor"].astype(int)
    frame["history_factor"] = frame["history_factor"].astype(float).round(3)
    frame["risk_factor"] = frame["risk_factor"].astype(float).round(3)
    frame["priority"] = (frame["amount_at_risk"] * frame["days_factor"] * frame["history_factor"]
                         * frame["risk_factor"]).round(0)
    return _ranked(frame, as_of)[WORKLIST_COLUMNS]


UNASSIGNED_PAST_DUE_SQL = f"""WITH items AS ({OPEN_ITEMS_SQL})
SELECT COUNT(DISTINCT customer_id) AS customers, COUNT(*) AS invoices, SUM(open_amount * fx_rate) AS overdue_ar
FROM items
WHERE open_amount > 0 AND days_past_due > 0
  AND customer_id IN (SELECT customer_id FROM customers WHERE collector IS NULL)"""  # noqa: S608 - constants only


def unassigned_past_due(store: Store, as_of: date) -> dict[str, float]:
    """Customers with no collector and an open invoice past due as of D (days past due > 0): no collector's
    list shows them, only the whole team's. {"customers", "invoices", "overdue_ar"} (the reporting currency;
    items without a rate are left out of the sum); all 0 when every customer has a collector."""
    if not store.scalar("SELECT COUNT(*) FROM customers WHERE collector IS NULL"):  # skip the open items
        return {"customers": 0, "invoices": 0, "overdue_ar": 0.0}
    row = store.read(UNASSIGNED_PAST_DUE_SQL, {"as_of": as_of, "reporting": load_settings().reporting_currency})
    return {"customers": int(row["customers"].iloc[0]), "invoices": int(row["invoices"].iloc[0]),
            "overdue_ar": float(row["overdue_ar"].fillna(0).iloc[0])}


def unassigned_note(unassigned: dict[str, float], currency: str) -> str | None:
    """What to tell a collector (or a script) about past-due customers nobody collects; None when there are none."""
    if not unassigned["customers"]:
        return None
    return (f"{int(unassigned['customers']):,} customer(s) with invoices past due "
            f"({unassigned['overdue_ar']:,.2f} {currency}) have no collector, so no collector's list shows them: "
            "an admin assigns them on the Admin page (by segment, country or one by one) or with `ardesk "
            "collectors assign`, or import customers with a collector column.")


def _ranked(frame: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Group, order, rank and band the items (the rules in the module docstring)."""
    since = pd.to_datetime(frame["since"])
    group = pd.Series("now", index=frame.index)
    group[since < pd.Timestamp(as_of - timedelta(days=STALE_DAYS))] = "stale"
    group[(frame["reason"] == "task_due") & (since > pd.Timestamp(as_of))] = "upcoming"
    frame = frame.assign(group=group, order=group.map({g: i for i, g in enumerate(GROUPS)}))
    frame = frame.sort_values(["order", "priority", "customer_id", "reason"],
                              ascending=[True, False, True, True]).reset_index(drop=True)
    ranked = frame["group"] == "now"
    frame["rank"] = pd.Series(range(1, int(ranked.sum()) + 1), index=frame.index[ranked], dtype="Int64")
    mass = frame["priority"].where(ranked, 0.0)
    total = float(mass.sum())
    above = (mass.cumsum() - mass) / total if total > 0 else pd.Series(1.0, index=frame.index)
    frame["band"] = "Low"
    frame.loc[ranked & (frame["priority"] > 0) & (above < MEDIUM_SHARE), "band"] = "Medium"
    frame.loc[ranked & (frame["priority"] > 0) & (above < HIGH_SHARE), "band"] = "High"
    return frame


def next_customer(store: Store, as_of: date, collector: str | None, skip: tuple[str, ...] | list[str] = ()) -> str | None:
    """The customer of the highest-ranked item on the list now (group 'now', recomputed), passing over
    the customers in `skip` (the one just worked, those already walked); None when none is left."""
    items = worklist(store, as_of, collector)
    left = items[(items["group"] == "now") & ~items["customer_id"].isin(list(skip))]
    return None if left.empty else str(left["customer_id"].iloc[0])
