"""Collector targets: what a manager expects of each collector per period, and the progress so far.

A target (`collector_targets`, one per collector, metric and period) is set by a manager
(permission `set_targets`); setting it again replaces the value; each change is audited with the
value before and after. Metrics (METRICS: label, direction, unit):
- `calls`, `emails`: at least this many calls / emails the collector logged (authored) in the period;
- `overdue_balance`: at most this overdue amount (reporting currency) on the collector's customers
  at the end of the period (`analytics.kpis.collector_kpis`: overdue_ar);
- `share_90_plus`: at most this share (%) of the collector's open receivables (open debits, reporting
  currency) more than 90 days past due at the end of the period;
- `promises_kept_pct`: at least this share (%) of the promises the collector recorded in the period
  and due by its end kept (`collector_kpis`: kept_pct; no promise due: no actual, not met).

The period holding D: `day` = D; `week` = Monday of D's week to D; `month` = the 1st of D's month
to D (so far). Progress: for an "at least" target, actual / target × 100; for an "at most" target,
100 while the actual is within it, else target / actual × 100. `met` = at least: actual ≥ target;
at most: actual ≤ target.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.kpis.collector_kpis import collector_kpis
from analytics.ledger.fx import reporting_params
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.store.connection import Store
from analytics.store.schema import collector_targets, users

METRICS: dict[str, tuple[str, str, str]] = {  # metric -> (label, "at least" | "at most", unit)
    "calls": ("Calls", "at least", "count"),
    "emails": ("Emails", "at least", "count"),
    "overdue_balance": ("Overdue balance", "at most", "amount"),
    "share_90_plus": ("90+ days share of the portfolio", "at most", "%"),
    "promises_kept_pct": ("Promises kept", "at least", "%"),
}
PERIODS = ("day", "week", "month")
PROGRESS_COLUMNS = ["collector", "metric", "label", "period", "period_start", "period_end", "direction", "unit",
                    "target", "actual", "progress_pct", "met", "set_by", "set_at"]

SHARE_90_SQL = f"""
WITH items AS ({OPEN_ITEMS_SQL})
SELECT c.collector,
       SUM(CASE WHEN i.open_amount > 0 THEN i.open_amount * i.fx_rate ELSE 0 END) AS open_ar,
       SUM(CASE WHEN i.open_amount > 0 AND i.days_past_due > 90 THEN i.open_amount * i.fx_rate ELSE 0 END) AS ar_90
FROM items i JOIN customers c ON c.customer_id = i.customer_id
WHERE c.collector IS NOT NULL
GROUP BY c.collector
"""  # noqa: S608 - composed from constants only


class TargetError(ValueError):
    """A target that cannot be set, naming the field, the value and why."""


def period_window(period: str, as_of: date) -> tuple[date, date]:
    """[start, end] of the period holding `as_of`, up to `as_of` (module docstring)."""
    if period == "day":
        return as_of, as_of
    if period == "week":
        return as_of - timedelta(days=as_of.weekday()), as_of
    if period == "month":
        return as_of.replace(day=1), as_of
    raise TargetError(f"period {period!r}: choose one of {', '.join(PERIODS)}.")


def set_target(store: Store, actor: Actor, collector: str, metric: str, period: str, target: float) -> bool:
    """Set (or replace) a collector's target; False (nothing written) when it already had that value."""
    require(actor, "set_targets")
    if metric not in METRICS:
        raise TargetError(f"metric {metric!r}: choose one of {', '.join(METRICS)}.")
    if period not in PERIODS:
        raise TargetError(f"period {period!r}: choose one of {', '.join(PERIODS)}.")
    try:
        value = round(float(target), 2)
    except (TypeError, ValueError):
        raise TargetError(f"target {target!r}: must be a number.") from None
    if not value >= 0 or (METRICS[metric][2] == "%" and value > 100):
        raise TargetError(f"target {target!r}: must be 0 or more" + (" and at most 100 (a percent)."
                                                                     if METRICS[metric][2] == "%" else "."))
    key = (collector_targets.c.collector == collector) & (collector_targets.c.metric == metric) & (
        collector_targets.c.period == period)
    with store.write() as conn:
        role = conn.execute(sa.select(users.c.role).where(users.c.username == collector, users.c.active)).scalar()
        if role not in ("collector", "admin"):
            raise TargetError(f"collector {collector!r}: not an active collector.")
        old = conn.execute(sa.select(collector_targets.c.target).where(key)).scalar()
        if old is not None and round(float(old), 2) == value:
            return False
        row = {"target": value, "set_by": actor.username, "set_at": datetime.now()}
        if old is None:
            conn.execute(collector_targets.insert().values(collector=collector, metric=metric, period=period, **row))
        else:
            conn.execute(collector_targets.update().where(key).values(**row))
        audit.record(conn, actor, "target.set", "collector_target", f"{collector}/{metric}/{period}",
                     old=None if old is None else {"target": float(old)}, new={"target": value})
    return True


def list_targets(store: Store, collector: str | None = None) -> pd.DataFrame:
    """The targets set (all, or one collector's): collector, metric, period, target, set_by, set_at."""
    query = sa.select(collector_targets).order_by(collector_targets.c.collector, collector_targets.c.metric,
                                                  collector_targets.c.period)
    if collector:
        query = query.where(collector_targets.c.collector == collector)
    with store.engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all(),
                             columns=["collector", "metric", "period", "target", "set_by", "set_at"])
    frame["target"] = frame["target"].astype(float)
    return frame


def _actuals(store: Store, start: date, end: date) -> pd.DataFrame:
    """One row per collector: the five metrics measured over [start, end] (long format)."""
    kpis = collector_kpis(store, start, end)
    share = store.read(SHARE_90_SQL, reporting_params(end))
    share["share_90_plus"] = (share["ar_90"].astype(float) / share["open_ar"].astype(float).where(
        share["open_ar"].astype(float) > 0, np.nan) * 100).round(2)
    wide = kpis.rename(columns={"overdue_ar": "overdue_balance", "kept_pct": "promises_kept_pct"}).merge(
        share[["collector", "share_90_plus"]], on="collector", how="outer")
    return wide.melt(id_vars="collector", value_vars=list(METRICS), var_name="metric", value_name="actual")


def target_progress(store: Store, as_of: date, collector: str | None = None) -> pd.DataFrame:
    """Every target set (or one collector's) with its actual in the period holding `as_of`. Columns:
    PROGRESS_COLUMNS (rules in the module docstring)."""
    targets = list_targets(store, collector)
    if targets.empty:
        return pd.DataFrame(columns=PROGRESS_COLUMNS)
    parts = []
    for period, group in targets.groupby("period"):  # at most three periods: one measurement each
        start, end = period_window(str(period), as_of)
        parts.append(group.assign(period_start=start, period_end=end).merge(
            _actuals(store, start, end), on=["collector", "metric"], how="left"))
    frame = pd.concat(parts, ignore_index=True)
    meta = pd.DataFrame([(m, *v) for m, v in METRICS.items()], columns=["metric", "label", "direction", "unit"])
    frame = frame.merge(meta, on="metric", how="left")
    actual = frame["actual"].astype(float)
    target = frame["target"].astype(float)
    at_least = frame["direction"] == "at least"
    frame["actual"] = actual
    frame["met"] = np.where(at_least, actual >= target, actual <= target) & actual.notna()
    ratio_up = actual / target.where(target > 0, np.nan) * 100
    ratio_down = np.where(actual <= target, 100.0, target / actual.where(actual > 0, np.nan) * 100)
    frame["progress_pct"] = pd.Series(np.where(at_least, ratio_up.fillna(100.0 * (actual >= target)), ratio_down),
                                      index=frame.index).where(actual.notna()).round(1)
    order = {m: i for i, m in enumerate(METRICS)}
    frame = frame.assign(o1=frame["metric"].map(order), o2=frame["period"].map({p: i for i, p in enumerate(PERIODS)}))
    return frame.sort_values(["collector", "o1", "o2"])[PROGRESS_COLUMNS].reset_index(drop=True)


def dashboard_targets(store: Store, collectors: tuple[str, ...] | None = None) -> dict[str, float]:
    """The monthly targets a dashboard can draw for the customers of `collectors` (None: everybody's
    with customers): {"overdue_balance": the sum of their month targets, when every one of them has
    one; "share_90_plus": the one collector's month target, when the view is one collector}.
    Metrics with no target set are left out (no line without a target)."""
    if collectors is None:
        collectors = tuple(store.read("SELECT DISTINCT collector FROM customers WHERE collector IS NOT NULL")
                           ["collector"])
    targets = list_targets(store)
    month = targets[(targets["period"] == "month") & targets["collector"].isin(collectors)]
    out: dict[str, float] = {}
    balance = month[month["metric"] == "overdue_balance"]
    if collectors and set(balance["collector"]) == set(collectors):
        out["overdue_balance"] = float(balance["target"].sum())
    share = month[month["metric"] == "share_90_plus"]
    if len(collectors) == 1 and len(share) == 1:
        out["share_90_plus"] = float(share["target"].iloc[0])
    return out
