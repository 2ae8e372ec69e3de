"""Scoring a month: the stored risk snapshot, the customers' risk class, and whose band worsened.

`score_month(store, actor, as_of)` (permission `score_risk`) writes, in one transaction, every
customer's `analytics.risk.score` row as of D into `risk_snapshots` under D's month end (replacing
that month's earlier scoring), sets `customers.risk_class` to the band where it changed, and audits
each change (old and new class) and the run itself. The month before D's month is scored first, as
of its last day, when it has no snapshot yet, so "worsened this month" can always be answered.

`run_risk_action(store, actor, "score", {"as_of": D or None})` is the same scoring named by plain
arguments: what `ardesk risk score` queues in the app's inbox (a "risk" job) while the app owns the
DuckDB store; the app's watcher runs it as the queued user, with the role checked again. Without a
date it scores as of the ledger's last posting date when it runs. A job run twice (a crash between
its commit and moving it to done/) stores the same month again: the snapshot is replaced, not
doubled, and no risk class changes or is audited a second time (only the run's own audit line).

A band **worsened** in month M when the customer's band in M's snapshot is worse (BAND_NAMES order:
low, moderate, elevated, high, severe) than in the latest snapshot before M.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.collections.followups import refresh_promise_statuses
from analytics.ledger.filters import ALL, Filters, filter_sql
from analytics.ledger.months import month_end, previous_month_end
from analytics.ledger.open_items import ledger_bounds
from analytics.risk.score import BAND_NAMES, RISK_SCORE_SQL, score_params
from analytics.store.connection import Store

SNAPSHOT_COLUMNS = ["paid_invoices", "days_beyond_terms", "payment_index", "index_trend", "utilisation_pct",
                    "over_limit", "dispute_share_pct", "broken_promises", "payment_points", "utilisation_points",
                    "dispute_points", "promise_points", "score", "band", "suggested_limit"]


class RiskError(ValueError):
    """A scoring that cannot run, said in plain words (an empty ledger, an unknown action)."""


def scoring_day(store: Store, as_of: date | None) -> date:
    """The day to score as of: `as_of`, else the ledger's last posting date (`RiskError` when it is empty)."""
    if as_of is not None:
        return as_of
    _, last = ledger_bounds(store)
    if last is None:
        raise RiskError("The ledger is empty: give an as-of date, or load data first.")
    return last


def _band_rank_sql(column: str) -> str:
    return "CASE " + column + " " + " ".join(f"WHEN '{b}' THEN {i}" for i, b in enumerate(BAND_NAMES)) + " END"


def _write_month(conn: sa.Connection, actor: Actor, as_of: date) -> dict[str, int]:
    month = month_end(as_of)
    columns = ", ".join(SNAPSHOT_COLUMNS)
    conn.execute(sa.text("DELETE FROM risk_snapshots WHERE month_end = :month"), {"month": month})
    conn.execute(sa.text(f"""
        INSERT INTO risk_snapshots (month_end, customer_id, as_of, {columns}, scored_at, scored_by)
        SELECT :month, customer_id, :as_of, {columns}, :now, :actor FROM ({RISK_SCORE_SQL}) r
    """), {**score_params(as_of), "month": month, "now": datetime.now(), "actor": actor.username})  # noqa: S608
    scored = int(conn.execute(sa.text("SELECT COUNT(*) FROM risk_snapshots WHERE month_end = :month"),
                              {"month": month}).scalar() or 0)
    return {"month": month, "scored": scored}


def score_month(store: Store, actor: Actor, as_of: date) -> dict[str, object]:
    """Score every customer as of `as_of` and store it (the module docstring). Returns the month end, the
    customers scored, whether the month before was scored too, and the risk classes changed."""
    require(actor, "score_risk")
    refresh_promise_statuses(store, as_of, actor)
    previous = previous_month_end(as_of)
    with store.write() as conn:
        had_previous = conn.execute(sa.text("SELECT COUNT(*) FROM risk_snapshots WHERE month_end = :m"),
                                    {"m": previous}).scalar()
        if not had_previous:
            _write_month(conn, actor, previous)
        result = _write_month(conn, actor, as_of)
        # One audit line per customer whose class changes, written in SQL (a customer at a time is 16 ms each).
        conn.execute(sa.text("""
            INSERT INTO audit_log (logged_at, actor, action, entity, entity_id, old_values, new_values, detail)
            SELECT :now, :actor, 'set_risk_class', 'customer', c.customer_id,
                   '{"risk_class": ' || COALESCE('"' || REPLACE(c.risk_class, '"', '\\"') || '"', 'null') || '}',
                   '{"risk_class": "' || s.band || '"}', :detail
            FROM customers c JOIN risk_snapshots s ON s.customer_id = c.customer_id AND s.month_end = :month
            WHERE c.risk_class IS NULL OR c.risk_class <> s.band
        """), {"now": datetime.now(), "actor": actor.username, "detail": f"risk band as of {as_of}",
               "month": result["month"]})
        changes = int(conn.execute(sa.text("""
            UPDATE customers SET risk_class = (
                SELECT s.band FROM risk_snapshots s
                WHERE s.customer_id = customers.customer_id AND s.month_end = :month)
            WHERE EXISTS (SELECT 1 FROM risk_snapshots s WHERE s.customer_id = customers.customer_id
                          AND s.month_end = :month AND (customers.risk_class IS NULL OR customers.risk_class <> s.band))
        """), {"month": result["month"]}).rowcount or 0)
        audit.record(conn, actor, "score_risk", "risk_snapshots", str(result["month"]),
                     new={"as_of": as_of, "scored": result["scored"], "risk_class_changes": changes,
                          "previous_month_scored": not had_previous})
    return {**result, "previous_month_scored": not had_previous, "risk_class_changes": changes}


def run_risk_action(store: Store, actor: Actor, action: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run a risk write named by plain arguments (only "score": `score_month` as of `arguments["as_of"]`,
    default the ledger's last posting date) as `actor`; returns what it did, dates as text."""
    if action != "score":
        raise RiskError(f"Unknown risk action {action!r}: score.")
    require(actor, "score_risk")  # before anything is read for the actor
    as_of = scoring_day(store, date.fromisoformat(arguments["as_of"]) if arguments.get("as_of") else None)
    done = score_month(store, actor, as_of)
    return {"action": action, "as_of": as_of.isoformat(),
            **{k: v.isoformat() if isinstance(v, date) else v for k, v in done.items()}}


def scored_months(store: Store) -> list[date]:
    """The month ends that have a stored scoring, latest first."""
    frame = store.read("SELECT DISTINCT month_end FROM risk_snapshots ORDER BY month_end DESC")
    return [pd.Timestamp(m).date() for m in frame["month_end"]]


LIST_COLUMNS = ["customer_id", "customer_name", "band", "previous_band", "score", "previous_score", "payment_index",
                "index_trend", "paid_invoices", "days_beyond_terms", "utilisation_pct", "over_limit", "credit_limit",
                "dispute_share_pct", "broken_promises", "payment_points", "utilisation_points", "dispute_points",
                "promise_points", "suggested_limit", "currency", "month_end", "as_of"]


def risk_list(store: Store, as_of: date, worsened_only: bool = False, filters: Filters = ALL) -> pd.DataFrame:
    """The stored snapshot of `as_of`'s month with the band and score of the latest snapshot before it,
    riskiest first, for the customers matching `filters`; `worsened_only`: only the customers whose band
    worsened (LIST_COLUMNS; empty when the month was not scored)."""
    customer_filter, params = filter_sql(filters, "s.customer_id")
    worse = f"AND {_band_rank_sql('s.band')} > {_band_rank_sql('p.band')}" if worsened_only else ""
    frame = store.read(f"""
        SELECT s.customer_id, c.name AS customer_name, c.currency, c.credit_limit, s.month_end, s.as_of,
               s.band, p.band AS previous_band, s.score, p.score AS previous_score,
               {", ".join(f"s.{col}" for col in SNAPSHOT_COLUMNS if col not in ("band", "score"))}
        FROM risk_snapshots s
        JOIN customers c ON c.customer_id = s.customer_id
        LEFT JOIN risk_snapshots p ON p.customer_id = s.customer_id AND p.month_end = (
            SELECT MAX(t.month_end) FROM risk_snapshots t WHERE t.customer_id = s.customer_id AND t.month_end < :month)
        WHERE s.month_end = :month {worse}{customer_filter}
        ORDER BY s.score, s.customer_id
    """, {"month": month_end(as_of), **params})  # noqa: S608 - composed from constants only
    floats = ["score", "previous_score", "days_beyond_terms", "payment_index", "index_trend", "utilisation_pct",
              "dispute_share_pct", "payment_points", "utilisation_points", "dispute_points", "promise_points",
              "suggested_limit", "credit_limit"]
    frame[floats] = frame[floats].astype(float).round(2)
    frame["month_end"] = pd.to_datetime(frame["month_end"]).dt.date
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    frame["over_limit"] = frame["over_limit"].astype(bool)
    return frame[LIST_COLUMNS]
