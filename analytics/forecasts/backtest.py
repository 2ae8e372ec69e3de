"""Walk-forward backtest of the payment-date baseline and model, and which of the two is used.

For each test period (by default each of the `MONTHS` months before the ledger's last month; with a
`train_end`, one period: the invoices issued after it) the model is trained on what was known at the
period's start D (`payment_dates.train_as_of`), and both predict the period's targets. Measured on
the targets, in days and in the reporting currency at D:
- MAE days = mean |predicted − actual payment date| over the targets paid by now;
- late / on-time accuracy = share of those whose "paid after the due date" is predicted right;
- WAPE at h days (14, 30) = Σ |F − A| / Σ A over the periods, where F = open amount of the targets
  predicted paid in (D, D + h] and A = open amount of those actually paid in it (an invoice counts
  as collected on its settlement date).
The MAE difference (baseline − model) gets a 95% bootstrap interval over the paid targets of all
periods (`BOOTSTRAP` resamples, numpy generator seeded with `seed`). **The model is used only when
the whole interval is above 0** (it beats the baseline by more than its uncertainty); otherwise the
baseline is used, and `reason` says so. The interval of the cash forecast comes from the chosen
method's weekly errors: the 2.5% and 97.5% quantiles of actual / forecast over the first four weeks
of every period with a forecast (none with fewer than `MIN_INTERVAL_WEEKS` such weeks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analytics.access.roles import Actor, require
from analytics.forecasts.payment_dates import (
    PaymentModel,
    labelled,
    model_dates,
    month_snapshots,
    paid_dates,
    snapshot,
    train,
    training_dates,
    written_off_before,
)
from analytics.ledger.filters import ALL, Filters
from analytics.ledger.months import add_months
from analytics.ledger.open_items import ledger_bounds
from analytics.store.connection import Store

MONTHS = 12
HORIZONS = (14, 30)
BOOTSTRAP = 500
SEED = 19
METHODS = ("baseline", "model")
MIN_INTERVAL_WEEKS = 8  # fewer weekly ratios than this give no interval (their quantiles mean nothing)
MIN_HISTORY_MONTHS = 2  # a shorter ledger tests fewer months: the first test month has this much history


class ForecastError(ValueError):
    """A backtest or forecast that cannot be made, in plain words."""


@dataclass
class Backtest:
    """The figures of a backtest (see the module docstring)."""

    periods: pd.DataFrame  # one row per period and method
    summary: dict[str, Any] = field(default_factory=dict)
    weekly_ratios: list[float] = field(default_factory=list)  # the chosen method's actual / forecast per week
    months: int = MONTHS
    backtest_id: int | None = None  # set when stored (`stored_backtests`)
    run_at: datetime | None = None
    ledger_last: date | None = None


def _metrics(rows: pd.DataFrame, predicted: pd.Series, as_of: pd.Timestamp) -> dict[str, float]:
    """MAE, late accuracy and the F/A sums at each horizon of one period and method."""
    amount = rows["open_amount_reporting"].fillna(0.0)
    paid = rows["paid_on"].notna()
    error = (predicted - rows["paid_on"]).dt.days[paid].astype(float)
    late_right = ((predicted > rows["due_date"]) == (rows["paid_on"] > rows["due_date"]))[paid]
    out = {"paid_targets": int(paid.sum()), "mae_days": float(error.abs().mean()) if len(error) else np.nan,
           "late_accuracy": float(late_right.mean()) if len(late_right) else np.nan}
    for h in HORIZONS:
        end = as_of + pd.Timedelta(days=h)
        out[f"forecast_{h}d"] = float(amount[(predicted > as_of) & (predicted <= end)].sum())
        out[f"actual_{h}d"] = float(amount[paid & (rows["paid_on"] > as_of) & (rows["paid_on"] <= end)].sum())
    return out


def _weekly_ratios(rows: pd.DataFrame, predicted: pd.Series, as_of: pd.Timestamp) -> np.ndarray:
    """actual / forecast collections of the first four weeks after D (weeks with a forecast)."""
    amount = rows["open_amount_reporting"].fillna(0.0)
    week_f = ((predicted - as_of).dt.days - 1) // 7
    week_a = ((rows["paid_on"] - as_of).dt.days - 1) // 7
    f = amount.groupby(week_f).sum().reindex(range(4), fill_value=0.0)
    a = amount.groupby(week_a).sum().reindex(range(4), fill_value=0.0)
    keep = f > 0
    return (a[keep] / f[keep]).to_numpy(float)


def backtest_periods(store: Store, train_end: date | None, months: int = MONTHS) -> list[tuple[date, date, bool]]:
    """(D, until, issued_only) per period: the month starts of the `months` months before the
    ledger's last month (open at D and issued in the month; fewer when the ledger is shorter, the
    first with `MIN_HISTORY_MONTHS` of history), or after `train_end` (issued only)."""
    first, last = ledger_bounds(store)
    if last is None:
        raise ForecastError("The ledger is empty: there is nothing to backtest.")
    if train_end is not None:
        if not first < train_end < last:
            raise ForecastError(f"--train-end {train_end}: must fall inside the ledger ({first} to {last}).")
        return [(train_end, last, True)]
    start = max(add_months(last, -months), add_months(first, MIN_HISTORY_MONTHS))
    if start >= last.replace(day=1):
        raise ForecastError(f"The ledger ({first} to {last}) is too short to backtest: a test month needs "
                            f"{MIN_HISTORY_MONTHS} months of history before it and a month after it.")
    count = (last.year - start.year) * 12 + last.month - start.month
    return [(add_months(start, k), add_months(start, k + 1) - timedelta(days=1), False) for k in range(count)]


def run_backtest(store: Store, actor: Actor, train_end: date | None = None, filters: Filters = ALL,
                 seed: int = SEED, months: int = MONTHS) -> Backtest:
    """The walk-forward backtest (module docstring); who may see KPIs may see it."""
    require(actor, "see_forecasts")
    periods = backtest_periods(store, train_end, months)
    starts = sorted({d for p in periods for d in training_dates(p[0])} | {p[0] for p in periods if p[0].day == 1})
    snapshots = month_snapshots(store, starts, filters)
    outcomes = paid_dates(store)
    rows_out, diffs, ratios = [], [], {m: [] for m in METHODS}
    with store.engine.connect() as conn:
        for as_of, until, issued_only in periods:
            known = paid_dates(store, as_of)
            history = [snapshots[d] for d in training_dates(as_of)]
            model: PaymentModel | None = train(labelled(history, known, as_of, written_off_before(store, as_of)),
                                               as_of)
            target = snapshots.get(as_of) if not issued_only else None
            if target is None:
                target = snapshot(conn, as_of, until, filters)
            if issued_only:
                target = target[target["was_open"] == 0]
            target = target.merge(outcomes, on="entry_id", how="left").reset_index(drop=True)
            stamp = pd.Timestamp(as_of)
            predictions = {"baseline": target["baseline_date"],
                           "model": model_dates(model, target) if model is not None else None}
            for method, predicted in predictions.items():
                if predicted is None:
                    continue
                predicted = pd.Series(predicted.to_numpy(), index=target.index)
                rows_out.append({"as_of": as_of, "method": method, "targets": len(target),
                                 "trained_rows": model.trained_rows if model else 0,
                                 **_metrics(target, predicted, stamp)})
                ratios[method].append(_weekly_ratios(target, predicted, stamp))
            if predictions["model"] is not None:
                paid = target["paid_on"].notna()
                err_b = (target["baseline_date"] - target["paid_on"]).dt.days[paid].abs()
                err_m = (pd.Series(predictions["model"].to_numpy(), index=target.index)
                         - target["paid_on"]).dt.days[paid].abs()
                diffs.append((err_b - err_m).to_numpy(float))
    table = pd.DataFrame(rows_out)
    summary = _summary(table, diffs, ratios, seed, train_end)
    chosen = ratios[summary["method"]]
    weekly = [round(float(r), 6) for r in (np.concatenate(chosen) if chosen else [])]
    return Backtest(table, summary, weekly, months, ledger_last=ledger_bounds(store)[1])


def _summary(table: pd.DataFrame, diffs: list[np.ndarray], ratios: dict[str, list[np.ndarray]], seed: int,
             train_end: date | None) -> dict[str, Any]:
    """Pooled figures per method, the bootstrap interval and the choice."""
    out: dict[str, Any] = {"train_end": train_end, "periods": int(table["as_of"].nunique()) if len(table) else 0,
                           "seed": seed, "bootstrap": BOOTSTRAP}
    for method in METHODS:
        part = table[table["method"] == method] if len(table) else table
        if part.empty:
            continue
        weights = part["paid_targets"]
        out[f"{method}_mae_days"] = _weighted(part["mae_days"], weights)
        out[f"{method}_late_accuracy"] = _weighted(part["late_accuracy"], weights)
        for h in HORIZONS:
            actual = part[f"actual_{h}d"].sum()
            out[f"{method}_wape_{h}d"] = float((part[f"forecast_{h}d"] - part[f"actual_{h}d"]).abs().sum() / actual) \
                if actual else None
        out["paid_targets"] = int(weights.sum())
    pooled = np.concatenate(diffs) if diffs else np.array([])
    if len(pooled):
        rng = np.random.default_rng(seed)
        means = np.array([pooled[rng.integers(0, len(pooled), len(pooled))].mean() for _ in range(BOOTSTRAP)])
        low, high = np.quantile(means, [0.025, 0.975])
        out.update(mae_difference=float(pooled.mean()), difference_low=float(low), difference_high=float(high))
        out["use_model"] = bool(low > 0)
        out["reason"] = (f"The model is used: it beats the baseline by {pooled.mean():.1f} days of MAE "
                         f"(95% interval {low:.1f} to {high:.1f})." if low > 0 else
                         f"The baseline is used: the model's MAE gain of {pooled.mean():.1f} days "
                         f"(95% interval {low:.1f} to {high:.1f}) does not beat it by its interval.")
    else:
        out.update(mae_difference=None, difference_low=None, difference_high=None, use_model=False,
                   reason="The baseline is used: too little history to train and test a model.")
    chosen = "model" if out["use_model"] else "baseline"
    weekly = np.concatenate(ratios[chosen]) if ratios[chosen] else np.array([])
    out["method"] = chosen
    out["interval_low_ratio"], out["interval_high_ratio"] = (
        (float(np.quantile(weekly, 0.025)), float(np.quantile(weekly, 0.975))) if len(weekly) >= MIN_INTERVAL_WEEKS
        else (None, None))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def _weighted(values: pd.Series, weights: pd.Series) -> float | None:
    keep = values.notna() & (weights > 0)
    return float(np.average(values[keep], weights=weights[keep])) if keep.any() else None
