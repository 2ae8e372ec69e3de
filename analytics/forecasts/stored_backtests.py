"""Stored backtests: a walk-forward backtest is run on demand (`ardesk forecast backtest`, or the
Cash forecast page's button) and kept in `forecast_backtests`; the cash forecast reads the latest.

Rules:
- Running and storing one needs `run_backtests` (analyst, cfo, admin); reading one, `see_forecasts`.
  The write is audited (`forecast.backtest`, the summary as its new values).
- "The latest" is the most recent rolling backtest (no `train_end`): the one that picks the method
  and the interval of the cash forecast. A `--train-end` backtest is stored too (an evaluation of
  one cut-off) but never picked.
- A backtest is computed on the whole ledger (no filter): the method and interval apply to any view.
- With no stored backtest the forecast uses the baseline without an interval and says so
  (`NO_BACKTEST`).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pandas as pd

from analytics.access import audit
from analytics.access.roles import Actor, require
from analytics.forecasts.backtest import MONTHS, SEED, Backtest, run_backtest
from analytics.store.connection import Store
from analytics.store.data_version import data_version
from analytics.store.ids import reserve_ids
from analytics.store.schema import FORECAST_BACKTEST_IDS, forecast_backtests

NO_BACKTEST = ("No backtest yet: run it (the Cash forecast page's button or `ardesk forecast backtest`). "
               "Until then the forecast uses the baseline, without an interval.")


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and pd.isna(value):
        return None
    return value


def save_backtest(store: Store, actor: Actor, backtest: Backtest) -> int:
    """Store a backtest's figures (audited); returns its id."""
    require(actor, "run_backtests")
    summary = {k: _plain(v) for k, v in backtest.summary.items()}
    periods = [{k: _plain(v) for k, v in row.items()} for row in backtest.periods.to_dict("records")]
    version = data_version(store)
    with store.write() as conn:
        backtest_id = reserve_ids(conn, FORECAST_BACKTEST_IDS, 1)
        values = {"backtest_id": backtest_id, "run_at": datetime.now().replace(microsecond=0),
                  "run_by": actor.username, "data_version": version, "ledger_last": backtest.ledger_last,
                  "train_end": backtest.summary.get("train_end"), "months": backtest.months,
                  "seed": int(backtest.summary.get("seed", SEED)), "method": str(backtest.summary["method"]),
                  "summary": json.dumps(summary), "periods": json.dumps(periods),
                  "weekly_ratios": json.dumps(backtest.weekly_ratios)}
        conn.execute(forecast_backtests.insert().values(**values))
        audit.record(conn, actor, "forecast.backtest", "forecast_backtest", backtest_id, new=summary,
                     detail=summary.get("reason"))
    return backtest_id


def run_and_store(store: Store, actor: Actor, train_end: date | None = None, months: int = MONTHS) -> Backtest:
    """Run the walk-forward backtest on the whole ledger and store it; returns it with its id."""
    require(actor, "run_backtests")
    backtest = run_backtest(store, actor, train_end=train_end, months=months)
    backtest.backtest_id = save_backtest(store, actor, backtest)
    return backtest


def latest_backtest(store: Store, actor: Actor) -> Backtest | None:
    """The most recent stored rolling backtest (no train_end), or None when none was run."""
    require(actor, "see_forecasts")
    rows = store.read("SELECT * FROM forecast_backtests WHERE train_end IS NULL "
                          "ORDER BY backtest_id DESC LIMIT 1")
    if rows.empty:
        return None
    row = rows.iloc[0]
    periods = pd.DataFrame(json.loads(row["periods"]))
    if not periods.empty:
        periods["as_of"] = pd.to_datetime(periods["as_of"]).dt.date
    return Backtest(periods, json.loads(row["summary"]), json.loads(row["weekly_ratios"]), int(row["months"]),
                    int(row["backtest_id"]), pd.Timestamp(row["run_at"]).to_pydatetime(),
                    None if pd.isna(row["ledger_last"]) else pd.Timestamp(row["ledger_last"]).date())


def no_backtest() -> Backtest:
    """What the forecast uses before any backtest: the baseline, no interval."""
    return Backtest(pd.DataFrame(), {"method": "baseline", "use_model": False, "reason": NO_BACKTEST,
                                     "interval_low_ratio": None, "interval_high_ratio": None}, months=0)


def run_backtest_job(store: Store, actor: Actor, action: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A queued `ardesk forecast backtest` run by the app (action "backtest"): {"action",
    "backtest_id", "method", "reason"}."""
    if action != "backtest":
        raise ValueError(f"unknown forecast action {action!r}")
    train_end = arguments.get("train_end")
    done = run_and_store(store, actor, date.fromisoformat(train_end) if train_end else None,
                         int(arguments.get("months") or MONTHS))
    return {"action": action, "backtest_id": done.backtest_id, "method": done.summary["method"],
            "reason": done.summary.get("reason")}
