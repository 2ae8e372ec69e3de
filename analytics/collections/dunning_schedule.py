"""Which open invoice is due for which dunning stage next: the rules of the run, in one place.

Rule: a customer follows its `dunning_config_id` (else the active config for its segment, else the
active config with no segment), at the config's highest version, unless that policy is retired.
An open invoice (open amount > 0 as of D) is due on D for **the next stage only**: the lowest
stage above the last stage **sent** for it (a run on or before D with outcome 'sent' or 'done', or
'waived': a manual stage a collector skipped, `dunning_approval.skip_stage`; 'failed' and 'skipped'
runs, e.g. imported ones, do not count) **under the customer's current policy** (stages reached
under another policy do not count: the counters reset when the customer's policy changes). So an
invoice advances at most one stage per run, only from a stage that was sent (or waived), and a late start begins at the first stage. The next stage
is due when its threshold date <= D (inclusive), the threshold being, by the stage's `basis`:
- `due`: the due date + day_offset (+ the policy's grace_days when day_offset > 0);
- `end_of_month`: the last day of the due date's month + day_offset (+ grace_days when > 0);
- `previous_sent`: the previous stage's run date (sent or waived) + day_offset (the first stage: as `due`).
The due date is the item's own (an installment's; a debit without one: its posting date), so due
today is days past due 0: a stage at +1 day is due tomorrow. Idempotent per (customer, stage,
date): an invoice with a run dated D (or later; a waived one too) is due for nothing on D, so a second
run the same day sends nothing new. Every channel of a stage acts (`dunning_channels`), automatic
stages by the run, manual ones when a collector approves them; the stage is recorded once.
Minimum days between two messages to one customer (`min_days_between`, 0 = no minimum; a waived
stage is no message): nothing is due for a customer sent a stage on a day in (D - min_days_between, D).
Invoices held as of D (`collections.holds`: under a dispute open as of D, or a promise to pay that
pauses dunning; one naming no invoice covers the account) and accounts with an agency, written off
or on hold are not dunned; the other invoices of a disputed or promised account continue.
A customer assigned in a running experiment (`analytics.experiments`) follows its arm's policy first
(champion or challenger), and one in its holdout arm is not dunned at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
import sqlalchemy as sa

from analytics.collections.holds import dunning_hold_sql
from analytics.collections.outreach.recipients import EMAILABLE_CONTACT
from analytics.ledger.open_items import CUSTOMER_OPEN_ITEMS_SQL, OPEN_ITEMS_SQL
from analytics.ledger.stage_results import refresh_stage_results
from analytics.settings import load_settings
from analytics.store.connection import Store
from analytics.store.ids import reserve_ids
from analytics.store.schema import DUNNING_RUN_IDS

CONFIG_OF_CUSTOMER_SQL = """
latest AS (
    SELECT config_id, MAX(version) AS version FROM dunning_configs GROUP BY config_id
), live AS (
    SELECT d.config_id, d.version, d.segment, d.grace_days, COALESCE(d.min_days_between, 0) AS min_days_between
    FROM dunning_configs d JOIN latest l ON l.config_id = d.config_id AND l.version = d.version
    WHERE d.active AND d.retired_at IS NULL
), by_segment AS (
    SELECT segment, MIN(config_id) AS config_id FROM live GROUP BY segment
), customer_config AS (
    SELECT c.customer_id,
           COALESCE(arm.config_id, own.config_id, seg.config_id, anyseg.config_id) AS config_id
    FROM customers c
    LEFT JOIN (SELECT x.customer_id, x.arm, lx.config_id FROM experiment_assignments x
               JOIN experiments e ON e.experiment_id = x.experiment_id AND e.status = 'running'
               LEFT JOIN live lx ON lx.config_id = CASE x.arm WHEN 'challenger' THEN e.challenger_config_id
                                                    ELSE e.champion_config_id END) arm ON arm.customer_id = c.customer_id
    LEFT JOIN live own ON own.config_id = c.dunning_config_id
    LEFT JOIN by_segment seg ON seg.segment = c.segment
    LEFT JOIN by_segment anyseg ON anyseg.segment IS NULL
    WHERE c.status NOT IN ('with_agency', 'written_off', 'on_hold') AND COALESCE(arm.arm, '') <> 'holdout'
)"""

# Needs the CTEs `items` (OPEN_ITEMS_SQL) and CONFIG_OF_CUSTOMER_SQL before it; defines `reached`
# (rn = 1 on every row: the one stage due per invoice). The module rule, set-based.
SENT_OUTCOMES = ("sent", "done")
PASSED_OUTCOMES = (*SENT_OUTCOMES, "waived")  # a stage a collector skipped is passed, not sent
DUE_CTES = """
last_run AS (
    SELECT entry_id, config_id, MAX(stage_no) AS last_stage, MAX(run_date) AS last_date FROM dunning_runs
    WHERE run_date <= :as_of AND outcome IN ('sent', 'done', 'waived') GROUP BY entry_id, config_id
), touched_today AS (
    SELECT DISTINCT entry_id FROM dunning_runs WHERE run_date >= :as_of AND outcome IN ('sent', 'done', 'waived')
), next_stage AS (
    SELECT i.entry_id, i.customer_id, i.document_number, i.due_date, i.open_amount, i.fx_rate,
           i.days_past_due, cc.config_id, lv.version AS config_version, lv.grace_days, lv.min_days_between,
           s.stage_no, s.name AS stage_name, s.channel, s.template, s.mode, s.day_offset, COALESCE(s.basis, 'due') AS basis,
           lr.last_date,
           ROW_NUMBER() OVER (PARTITION BY i.entry_id ORDER BY s.stage_no) AS nth
    FROM items i
    JOIN customer_config cc ON cc.customer_id = i.customer_id
    JOIN live lv ON lv.config_id = cc.config_id
    JOIN dunning_stages s ON s.config_id = lv.config_id AND s.version = lv.version
    LEFT JOIN last_run lr ON lr.entry_id = i.entry_id AND lr.config_id = cc.config_id
    WHERE i.open_amount > 0 AND s.stage_no > COALESCE(lr.last_stage, 0)
), reached AS (
    SELECT n.entry_id, n.customer_id, n.document_number, n.due_date, n.open_amount, n.fx_rate,
           n.days_past_due, n.config_id, n.config_version, n.stage_no, n.stage_name, n.channel, n.template,
           n.mode, n.day_offset, n.basis, 1 AS rn
    FROM next_stage n
    WHERE n.nth = 1
      AND (CASE WHEN n.basis = 'previous_sent' AND n.last_date IS NOT NULL
                THEN CAST(:as_of AS DATE) - n.last_date - n.day_offset
                WHEN n.basis = 'end_of_month'
                THEN CAST(:as_of AS DATE) - {MONTH_END} - n.day_offset
                ELSE n.days_past_due - n.day_offset END)
           >= CASE WHEN n.day_offset > 0 AND NOT (n.basis = 'previous_sent' AND n.last_date IS NOT NULL)
                   THEN n.grace_days ELSE 0 END
      AND NOT EXISTS (SELECT 1 FROM touched_today t WHERE t.entry_id = n.entry_id)
      AND NOT EXISTS (SELECT 1 FROM dunning_runs m
                      WHERE m.customer_id = n.customer_id AND m.outcome IN ('sent', 'done')
                        AND m.run_date < :as_of AND m.run_date > CAST(:as_of AS DATE) - n.min_days_between)
      AND NOT {HOLD}
)""".replace("{HOLD}", dunning_hold_sql("n.entry_id", "n.customer_id")).replace(
    # the last day of the month of the item's due date (D - days past due), portable to PostgreSQL
    "{MONTH_END}", "(CAST(CAST(DATE_TRUNC('month', CAST(CAST(:as_of AS DATE) - CAST(n.days_past_due AS INTEGER) AS DATE)) AS DATE)"
                   " + INTERVAL '1 month' AS DATE) - 1)")

_DUE_SELECT = """
SELECT entry_id, customer_id, document_number, due_date, open_amount, fx_rate, days_past_due,
       config_id, config_version, stage_no, stage_name, channel, template, mode, day_offset
FROM reached WHERE rn = 1
"""
DUE_STAGES_SQL = f"WITH items AS ({OPEN_ITEMS_SQL}),\n{CONFIG_OF_CUSTOMER_SQL},\n{DUE_CTES}\n{_DUE_SELECT}"  # noqa: S608
# The same for one customer (:customer_id), without summing every allocation in the store.
_ONE_CUSTOMER_CONFIG_SQL = CONFIG_OF_CUSTOMER_SQL.replace(
    "WHERE c.status NOT IN", "WHERE c.customer_id = :customer_id AND c.status NOT IN")
CUSTOMER_DUE_STAGES_SQL = (
    f"WITH items AS ({CUSTOMER_OPEN_ITEMS_SQL}),\n{_ONE_CUSTOMER_CONFIG_SQL},\n{DUE_CTES}\n{_DUE_SELECT}"  # noqa: S608
)


def due_stages(store: Store, as_of: date) -> pd.DataFrame:
    """One row per open invoice due for a dunning stage on D: the stage, its channel and template."""
    return store.read(DUE_STAGES_SQL + " ORDER BY customer_id, due_date, entry_id",  # entry_id: one order every run
                      {"as_of": as_of, "reporting": load_settings().reporting_currency})


# Customers with an invoice past due as of D, by whether dunning can reach them (`dunning_reach`).
REACH_LABELS = {
    "policy": "on a dunning policy",
    "policy_no_email": "on a dunning policy, with no contact to email",
    "no_policy": "on no dunning policy",
    "not_dunned": "not dunned (with an agency, written off, on hold, or an experiment's holdout)",
}
DUNNING_REACH_SQL = f"""WITH items AS ({OPEN_ITEMS_SQL}),
{CONFIG_OF_CUSTOMER_SQL},
overdue AS (
    SELECT customer_id, COUNT(*) AS invoices, SUM(open_amount * fx_rate) AS overdue_ar
    FROM items WHERE open_amount > 0 AND days_past_due > 0 GROUP BY customer_id
), emailable AS (
    SELECT DISTINCT customer_id FROM contacts WHERE {EMAILABLE_CONTACT}
)
SELECT CASE WHEN cc.customer_id IS NULL THEN 'not_dunned'
            WHEN cc.config_id IS NULL THEN 'no_policy'
            WHEN e.customer_id IS NULL THEN 'policy_no_email'
            ELSE 'policy' END AS reach,
       COUNT(*) AS customers, SUM(o.invoices) AS invoices, SUM(o.overdue_ar) AS overdue_ar
FROM overdue o
LEFT JOIN customer_config cc ON cc.customer_id = o.customer_id
LEFT JOIN emailable e ON e.customer_id = o.customer_id
GROUP BY 1"""  # noqa: S608 - fixed SQL, parameters bound


def dunning_reach(store: Store, as_of: date) -> pd.DataFrame:
    """Customers with an open invoice past due as of D (days past due > 0), by whether dunning reaches them.

    Columns reach (a key of `REACH_LABELS`), label, customers, invoices (past due), overdue_ar (their open
    amount in the reporting currency; items without a rate are left out of the sum), one row per reach that has customers, in
    the order of `REACH_LABELS`. A customer follows the policy `CONFIG_OF_CUSTOMER_SQL` gives it (own,
    segment's, or the store's default); one whose status or holdout arm keeps it out of dunning is
    `not_dunned`; "no contact to email" is any active contact with an email that has not bounced
    (`EMAILABLE_CONTACT`): its email stages cannot go out, its letters, calls and tasks can.
    """
    frame = store.read(DUNNING_REACH_SQL, {"as_of": as_of, "reporting": load_settings().reporting_currency})
    order = {reach: n for n, reach in enumerate(REACH_LABELS)}
    frame = frame.assign(label=frame["reach"].map(REACH_LABELS), customers=frame["customers"].astype(int),
                         invoices=frame["invoices"].astype(int), overdue_ar=frame["overdue_ar"].astype(float))
    return (frame.sort_values("reach", key=lambda s: s.map(order)).reset_index(drop=True)
            [["reach", "label", "customers", "invoices", "overdue_ar"]])


def unreached_note(reach: pd.DataFrame, currency: str) -> str | None:
    """What to tell a team whose overdue customers dunning does not reach, with what to do; None if all are."""
    by = reach.set_index("reach")
    if not set(by.index) - {"policy"}:
        return None
    total = int(by["customers"].sum())
    parts = [f"{int(row.customers):,} {row.label} ({row.overdue_ar:,.2f} {currency} past due)"
             for row in by.drop(index="policy", errors="ignore").itertuples()]
    advice = []
    if "no_policy" in by.index:
        advice.append("create a policy (Dunning policies in the app, or `ardesk policies apply FILE`), give "
                      "segments a policy (`ardesk segments apply FILE`), or adopt an imported dunning history "
                      "(`ardesk dunning adopt NAME`)")
    if "policy_no_email" in by.index:
        advice.append("import contacts (`ardesk import contacts FILE`) or add them on the Customer 360")
    said = f"Of {total:,} customer(s) with invoices past due, " + "; ".join(parts) + "."
    return said + (" To dun them: " + "; ".join(advice) + "." if advice else "")


def record_stage_runs(conn: sa.Connection, customer_id: str, entry_ids: Sequence[int], template: str | None,
                      run_date: date) -> int:
    """After an email with `template` went out: record the due stage of each of its invoices whose
    stage uses that template as run ('sent'), so the worklist stops asking for it. Returns the count."""
    if not entry_ids or not template:
        return 0
    stmt = sa.text(
        f"SELECT * FROM ({CUSTOMER_DUE_STAGES_SQL}) due WHERE entry_id IN :ids AND template = :template"  # noqa: S608
    ).bindparams(sa.bindparam("ids", expanding=True))
    rows = conn.execute(stmt, {"as_of": run_date, "reporting": load_settings().reporting_currency,
                               "customer_id": customer_id,
                               "ids": list(entry_ids), "template": template}).mappings().all()
    if not rows:
        return 0
    first = reserve_ids(conn, DUNNING_RUN_IDS, len(rows))
    conn.execute(sa.text(
        "INSERT INTO dunning_runs (run_id, entry_id, customer_id, config_id, config_version, stage_no, "
        "run_date, outcome) VALUES (:run_id, :entry_id, :customer_id, :config_id, :config_version, :stage_no, "
        ":run_date, 'sent')"),
        [{"run_id": first + i, "entry_id": r["entry_id"], "customer_id": r["customer_id"],
          "config_id": r["config_id"], "config_version": r["config_version"], "stage_no": r["stage_no"],
          "run_date": run_date} for i, r in enumerate(rows)])
    refresh_stage_results(conn, entry_ids=[int(r["entry_id"]) for r in rows])
    return len(rows)
