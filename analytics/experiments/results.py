"""An experiment's result: the primary metric per arm with its interval, the difference and lift,
guardrails, secondaries, the sample-ratio check and the sequential verdict.

Primary metric `collected_30d`, per arm: sum(collected) / sum(overdue at entry), the customer the unit.
An invoice **enters** when it becomes overdue (the day after its due date; a debit without a due
date: after its posting date) on or after its customer joined the experiment (`assigned_on`), so
every invoice measured was dunned only under its arm's policy, from its first stage:
- overdue at entry: the invoice's amount minus the allocations dated on or before its due date
  (invoice level: an installment schedule is not split);
- collected: payments and credit notes allocated to it dated in (due, due + 30], so collected <=
  overdue at entry and write-offs do not count;
- measured: invoices whose window has closed (due + 30 <= as-of; for an ended experiment, <= its
  end: after it every customer is back on their own policy) with something overdue at entry; a
  customer counts once, with the sums over their measured invoices.
Money is converted to the reporting currency at the latest rate on or before the as-of date (one rate
per currency for both sums, so a ratio is not moved by FX; no rate: the invoice is left out).
Guardrails per measured customer, from joining to the as-of date: disputes opened, escalations (agency hand-offs
included). Secondaries: the share of customers paid in full (collected = overdue at entry) and the
median days to pay of those (the most days after a due date to the last allocation in an invoice's window).
All aggregation is one SQL statement to one row per customer; the statistics are numpy
(`statistics`).
"""

# ruff: noqa: S608 - SQL here is composed from this module's constants only; every value is a bound parameter.
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analytics.experiments import statistics as stats
from analytics.experiments.assignment import ARMS, planned_shares
from analytics.ledger.fx import fx_at_sql
from analytics.settings import load_settings
from analytics.store.connection import Store

WINDOW_DAYS = 30
BASELINE_DAYS = 90  # how far back the segment's baseline looks
METRICS = {"collected_30d": "Share of the overdue balance at entry collected within 30 days"}

_WINDOW_SQL = """
WITH entrants AS ({entrants}),
overdue_items AS (
    SELECT n.customer_id, n.arm, n.entry, e.entry_id, e.currency, e.amount,
           COALESCE(e.due_date, e.posting_date) AS due
    FROM entrants n JOIN ledger_entries e ON e.customer_id = n.customer_id
    WHERE e.amount > 0 AND COALESCE(e.due_date, e.posting_date) >= n.entry - 1
      AND COALESCE(e.due_date, e.posting_date) + {window} <= :as_of
      AND (e.settled_on IS NULL OR e.settled_on > COALESCE(e.due_date, e.posting_date))
), applied AS (
    SELECT i.entry_id,
           SUM(CASE WHEN al.allocation_date <= i.due THEN al.amount ELSE 0 END) AS before_entry,
           SUM(CASE WHEN al.allocation_date > i.due AND al.allocation_date <= i.due + {window}
                     AND f.entry_type IN ('payment', 'credit_note') THEN al.amount ELSE 0 END) AS collected,
           MAX(CASE WHEN al.allocation_date > i.due AND al.allocation_date <= i.due + {window}
                     AND f.entry_type IN ('payment', 'credit_note') THEN al.allocation_date END) - i.due
               AS days_to_pay
    FROM overdue_items i JOIN allocations al ON al.to_entry_id = i.entry_id
    LEFT JOIN ledger_entries f ON f.entry_id = al.from_entry_id
    GROUP BY i.entry_id, i.due
), {fx},
per_item AS (
    SELECT i.customer_id, i.arm, i.entry,
           (i.amount - COALESCE(p.before_entry, 0)) * r.rate AS overdue,
           COALESCE(p.collected, 0) * r.rate AS collected, p.days_to_pay
    FROM overdue_items i LEFT JOIN applied p ON p.entry_id = i.entry_id
    JOIN (SELECT currency, rate FROM fx WHERE currency <> :reporting
          UNION ALL SELECT CAST(:reporting AS VARCHAR(3)), 1.0) r
      ON r.currency = i.currency
), per_customer AS (
    SELECT customer_id, arm, entry, SUM(overdue) AS overdue, SUM(collected) AS collected,
           MAX(days_to_pay) AS days_to_pay
    FROM per_item GROUP BY customer_id, arm, entry
), guard AS (
    SELECT n.customer_id,
           SUM(CASE WHEN a.kind = 'dispute' THEN 1 ELSE 0 END) AS disputes,
           SUM(CASE WHEN a.kind = 'escalation' THEN 1 ELSE 0 END) AS escalations
    FROM entrants n JOIN activities a ON a.customer_id = n.customer_id
    WHERE a.kind IN ('dispute', 'escalation')
      AND CAST(a.occurred_at AS DATE) >= n.entry AND CAST(a.occurred_at AS DATE) <= :as_of
    GROUP BY n.customer_id
)
SELECT c.customer_id, c.arm, c.entry, CAST(c.overdue AS DOUBLE PRECISION) AS overdue,
       CAST(c.collected AS DOUBLE PRECISION) AS collected, c.days_to_pay AS days_to_last_payment,
       COALESCE(g.disputes, 0) AS disputes, COALESCE(g.escalations, 0) AS escalations
FROM per_customer c LEFT JOIN guard g ON g.customer_id = c.customer_id
WHERE c.overdue > 0
ORDER BY c.customer_id
"""
_EXPERIMENT_ENTRANTS = ("SELECT customer_id, arm, assigned_on AS entry FROM experiment_assignments "
                        "WHERE experiment_id = :experiment_id")
_SEGMENT_ENTRANTS = ("SELECT customer_id, 'segment' AS arm, CAST(:entry AS DATE) AS entry FROM customers "
                     "WHERE segment = :segment")


def _window_sql(entrants: str) -> str:
    return _WINDOW_SQL.format(entrants=entrants, window=WINDOW_DAYS, fx=fx_at_sql("as_of"))


EXPERIMENT_WINDOW_SQL = _window_sql(_EXPERIMENT_ENTRANTS)
SEGMENT_WINDOW_SQL = _window_sql(_SEGMENT_ENTRANTS)


def customer_windows(store: Store, experiment_id: int, as_of: date) -> pd.DataFrame:
    """One row per measured customer of the experiment (module rule): customer_id, arm, entry, overdue,
    collected, days_to_last_payment, disputes, escalations."""
    return store.read(EXPERIMENT_WINDOW_SQL, {"experiment_id": int(experiment_id), "as_of": as_of,
                                              "reporting": load_settings().reporting_currency})


def segment_baseline(store: Store, segment: str, as_of: date) -> float | None:
    """The segment's metric before any experiment: its invoices that entered dunning in the
    BASELINE_DAYS before their windows could close by D (due in [D - 30 - BASELINE_DAYS - 1, D - 30])."""
    frame = store.read(SEGMENT_WINDOW_SQL, {"segment": segment,
                                            "entry": as_of - timedelta(days=WINDOW_DAYS + BASELINE_DAYS),
                                            "as_of": as_of, "reporting": load_settings().reporting_currency})
    total = float(frame.overdue.sum()) if not frame.empty else 0.0
    return float(frame.collected.sum()) / total if total > 0 else None


def _secondaries(arm: pd.DataFrame) -> dict[str, float | None]:
    if arm.empty:
        return {"paid_in_full_share": None, "median_days_to_pay": None, "disputes_per_customer": None,
                "escalations_per_customer": None}
    full = arm[arm.collected >= arm.overdue - 0.005]
    days = pd.to_numeric(full.days_to_last_payment, errors="coerce").dropna()
    return {"paid_in_full_share": len(full) / len(arm),
            "median_days_to_pay": float(np.median(days)) if len(days) else None,
            "disputes_per_customer": float(arm.disputes.sum()) / len(arm),
            "escalations_per_customer": float(arm.escalations.sum()) / len(arm)}


def experiment_result(store: Store, experiment: dict[str, Any], as_of: date) -> dict[str, Any]:
    """Everything the page and `ardesk experiments report` show for one experiment on `as_of`."""
    eid = int(experiment["experiment_id"])
    assigned = store.read("SELECT arm, COUNT(*) AS n FROM experiment_assignments WHERE experiment_id = :e "
                          "GROUP BY arm", {"e": eid})
    counts = {str(r.arm): int(r.n) for r in assigned.itertuples(index=False)}
    planned = planned_shares(int(experiment["challenger_pct"]), int(experiment["holdout_pct"]))
    srm = stats.srm_check(counts, planned)
    started = pd.Timestamp(experiment["started_on"]).date() if experiment.get("started_on") else as_of
    last_day = as_of  # an ended experiment is measured on windows closed by its end (later, the arms mix)
    if experiment.get("ended_on") is not None and not pd.isna(experiment["ended_on"]):
        last_day = min(as_of, pd.Timestamp(experiment["ended_on"]).date())
    windows = customer_windows(store, eid, last_day)
    figures: dict[str, stats.ArmFigure] = {}
    arms_rows = []
    for arm in ARMS:
        if planned[arm] == 0:
            continue
        part = windows[windows.arm == arm]
        figures[arm] = stats.arm_figure(part.collected.to_numpy(), part.overdue.to_numpy())
        arms_rows.append({"arm": arm, "assigned": counts.get(arm, 0), **figures[arm].as_dict(),
                          **_secondaries(part)})
    comparison = stats.compare(figures["champion"], figures["challenger"])
    holdout = (stats.compare(figures["holdout"], figures["champion"]) if "holdout" in figures else None)
    looks = int(experiment["looks"])
    planned_days = int(experiment.get("planned_days") or 0)
    look = stats.current_look((last_day - started).days, planned_days, looks)
    decision = stats.verdict(comparison, srm, look, looks)
    return {
        "experiment_id": eid, "name": experiment["name"], "segment": experiment["segment"],
        "status": experiment["status"], "as_of": as_of, "measured_on": last_day, "metric": experiment["metric"],
        "metric_label": METRICS.get(experiment["metric"], experiment["metric"]),
        "arms": arms_rows, "comparison": comparison.as_dict(),
        "holdout_comparison": None if holdout is None else holdout.as_dict(),
        "srm": {**srm, "observed": counts, "planned": planned},
        "sequential": {"method": stats.SEQUENTIAL_METHOD, "looks": looks, "look": look,
                       "planned_days": planned_days, "days_elapsed": (last_day - started).days,
                       "boundaries": stats.obf_boundaries(looks), "boundary": decision["boundary"]},
        "verdict": decision,
    }
