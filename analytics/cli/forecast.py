"""`ardesk forecast backtest|cash`: the payment-date backtest (baseline against model) and the weekly
cash forecast, as the Cash forecast page shows them.

`backtest` runs the walk-forward backtest and stores it (`forecasts.stored_backtests`), as `--as USER`
(default `system`); when the running app owns the DuckDB store it is queued as a signed "forecast"
job in the app's inbox, run by the app as that user with the same checks. `cash` reads the latest
stored backtest (none: the baseline without an interval) and runs as `system`."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

import pandas as pd

from analytics.access.roles import SYSTEM, Actor
from analytics.access.users import UserError as BadUser
from analytics.access.users import actor_for
from analytics.cli.output import UserError, emit
from analytics.collections.worklist import default_as_of
from analytics.forecasts.backtest import MONTHS, ForecastError
from analytics.forecasts.cash_forecast import WEEKS, cash_forecast
from analytics.forecasts.stored_backtests import run_and_store
from analytics.ingest.inbox import folders_for, stage_action
from analytics.migrations import connect
from analytics.store.connection import StoreLocked

FORMATS = ("table", "csv", "json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forecast", help="payment-date backtest and the weekly cash forecast")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    back = actions.add_parser("backtest", help="walk-forward backtest: baseline against model, and which is used")
    back.add_argument("--train-end", type=date.fromisoformat, default=None,
                      help="train up to this date and test on the invoices issued after it "
                           "(default: each of the last 12 months)")
    back.add_argument("--months", type=int, default=MONTHS, help="test months (default %(default)s)")
    back.add_argument("--as", dest="as_user", metavar="USER", default=SYSTEM.username)
    back.add_argument("--format", choices=FORMATS, default="table")
    back.set_defaults(handler=_backtest)
    cash = actions.add_parser("cash", help="expected collections per week, with the interval")
    cash.add_argument("--weeks", type=int, default=WEEKS)
    cash.add_argument("--as-of", type=date.fromisoformat, default=None, help="default: the ledger's last date")
    cash.add_argument("--format", choices=FORMATS, default="table")
    cash.set_defaults(handler=_cash)


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and pd.isna(value):
        return None
    return value


def _backtest(args: argparse.Namespace) -> int:
    if args.months < 1:
        raise UserError(f"--months {args.months}: choose at least 1.")
    try:
        store = connect(args.db)
    except StoreLocked as exc:
        folders = folders_for(args.db)
        arguments = {"train_end": args.train_end.isoformat() if args.train_end else None, "months": args.months}
        # the store cannot be read now: the app checks the user and their current role when it runs it
        job = stage_action(folders.inbox, "backtest", arguments, Actor(args.as_user, "", ""), kind="forecast")
        print(f"The AR Desk app is running and owns the store ({exc.path}), so the backtest was queued for it: "
              f"{job}.\nThe app runs it as {args.as_user}, with the same checks, and stores it; the result goes "
              f"to {folders.done}/ (or the reason to {folders.failed}/).")
        return 0
    try:
        result = run_and_store(store, actor_for(store, args.as_user), train_end=args.train_end, months=args.months)
    except (ForecastError, BadUser) as exc:
        raise UserError(str(exc)) from None
    if args.format == "json":
        periods = result.periods.assign(as_of=result.periods["as_of"].map(str))
        print(json.dumps({"backtest_id": result.backtest_id,
                          "summary": {k: _plain(v) for k, v in result.summary.items()},
                          "periods": periods.to_dict(orient="records")}, indent=2, default=_plain))
        return 0
    if args.format == "csv":
        emit(result.periods, "csv")
        return 0
    print(f"{'backtest_id':24} {result.backtest_id} (stored)")
    for key, value in result.summary.items():
        print(f"{key:24} {_plain(value)}")
    print()
    emit(result.periods.round(3), "table")
    return 0


def _cash(args: argparse.Namespace) -> int:
    store = connect(args.db)
    as_of = args.as_of or default_as_of(store)
    try:
        forecast = cash_forecast(store, SYSTEM, as_of, weeks=args.weeks)
    except (ForecastError, ValueError) as exc:
        raise UserError(str(exc)) from None
    weekly = forecast["weekly"]
    if args.format == "json":
        backtest = forecast["backtest"]
        print(json.dumps({"as_of": as_of.isoformat(), "method": backtest.summary["method"],
                          "backtest_id": backtest.backtest_id, "backtest_run_at": _plain(backtest.run_at),
                          "kept_rate": forecast["kept_rate"], "beyond_horizon": forecast["beyond_horizon"],
                          "weeks": weekly.assign(week_start=weekly["week_start"].map(str),
                                                 week_end=weekly["week_end"].map(str)).to_dict(orient="records")},
                         indent=2, default=_plain))
        return 0
    emit(weekly, args.format)
    if args.format == "table":
        backtest = forecast["backtest"]
        summary = backtest.summary
        if backtest.backtest_id is not None:
            print(f"\nBacktest {backtest.backtest_id}, run {backtest.run_at:%Y-%m-%d %H:%M}.", end="")
        print(f"\nNot expected within {args.weeks} weeks: {forecast['beyond_horizon']:,.2f}. "
              f"Promises kept rate {forecast['kept_rate']:.0%}. {summary['reason']}")
    return 0
