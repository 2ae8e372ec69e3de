"""`ardesk forecast backtest|cash`: the payment-date backtest (baseline against model) and the weekly
cash forecast, as the Cash forecast page shows them. Run as `system` (an administrator)."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

import pandas as pd

from analytics.access.roles import SYSTEM
from analytics.cli.output import UserError, emit
from analytics.collections.worklist import default_as_of
from analytics.forecasts.backtest import ForecastError, run_backtest
from analytics.forecasts.cash_forecast import WEEKS, cash_forecast
from analytics.migrations import connect

FORMATS = ("table", "csv", "json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forecast", help="payment-date backtest and the weekly cash forecast")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    back = actions.add_parser("backtest", help="walk-forward backtest: baseline against model, and which is used")
    back.add_argument("--train-end", type=date.fromisoformat, default=None,
                      help="train up to this date and test on the invoices issued after it "
                           "(default: each of the last 12 months)")
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
    store = connect(args.db)
    try:
        result = run_backtest(store, SYSTEM, train_end=args.train_end)
    except ForecastError as exc:
        raise UserError(str(exc)) from None
    if args.format == "json":
        periods = result.periods.assign(as_of=result.periods["as_of"].map(str))
        print(json.dumps({"summary": {k: _plain(v) for k, v in result.summary.items()},
                          "periods": periods.to_dict(orient="records")}, indent=2, default=_plain))
        return 0
    if args.format == "csv":
        emit(result.periods, "csv")
        return 0
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
        print(json.dumps({"as_of": as_of.isoformat(), "method": forecast["backtest"].summary["method"],
                          "kept_rate": forecast["kept_rate"], "beyond_horizon": forecast["beyond_horizon"],
                          "weeks": weekly.assign(week_start=weekly["week_start"].map(str),
                                                 week_end=weekly["week_end"].map(str)).to_dict(orient="records")},
                         indent=2, default=_plain))
        return 0
    emit(weekly, args.format)
    if args.format == "table":
        summary = forecast["backtest"].summary
        print(f"\nNot expected within {args.weeks} weeks: {forecast['beyond_horizon']:,.2f}. "
              f"Promises kept rate {forecast['kept_rate']:.0%}. {summary['reason']}")
    return 0
