"""Expected credit loss on trade receivables: the IFRS 9 simplified approach / CECL "provision matrix".

Per aging bucket b (the one bucket definition, `analytics.kpis.aging.bucket_labels("due")`):
- roll_rate[b] = the average roll rate from b to the next bucket over the window: the balance that
  rolled from b into the next bucket at each month end of the window, summed, / the balance in b at
  the month end before, summed (balance-weighted, `analytics.kpis.bad_debt.roll_rates`); for the
  oldest bucket it is the share written off, `final_loss_rate` (default 1.0: what reaches the
  oldest bucket is lost, as in the IFRScommunity example's "91+ not paid at all");
- historical loss_rate[b] = roll_rate[b] x roll_rate[b+1] x ... x final_loss_rate (the product of
  the roll rates down to write-off);
- adjusted_loss_rate[b] = min(1, loss_rate[b] x factor[b]); factor = the forward-looking factor of
  the bucket (default 1.0, always shown);
- provision[b] = balance[b] x adjusted_loss_rate[b] (reporting currency, to the cent); the
  provision is their sum; its movement = the provision at a month end - at the month end before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd

from analytics.kpis.aging import aging_buckets, aging_trend, bucket_labels
from analytics.kpis.bad_debt import roll_rates
from analytics.ledger.filters import ALL, Filters
from analytics.ledger.months import add_months, month_end, month_ends, previous_month_end
from analytics.store.connection import Store

DEFAULT_WINDOW_MONTHS = 12
MATRIX_COLUMNS = ["bucket", "balance", "roll_rate", "loss_rate", "factor", "adjusted_loss_rate", "provision"]


def loss_rates_from_roll_rates(rates: Sequence[float], final_loss_rate: float = 1.0) -> list[float]:
    """loss_rate[b] = rates[b] x rates[b+1] x ... x final_loss_rate, for each bucket b.

    `rates` are the roll rates (fractions) from each bucket but the oldest to the next one.
    """
    losses = [float(final_loss_rate)]
    for rate in reversed(list(rates)):
        losses.insert(0, float(rate) * losses[0])
    return losses


def provision_matrix(balances: Sequence[float], loss_rates: Sequence[float],
                     factors: Sequence[float] | None = None, labels: Sequence[str] | None = None,
                     roll_rates_used: Sequence[float] | None = None) -> pd.DataFrame:
    """The matrix: one row per bucket (MATRIX_COLUMNS), then a "Total" row (balance and provision summed).

    provision = balance x min(1, loss_rate x factor), rounded to the cent per bucket.
    """
    count = len(balances)
    if len(loss_rates) != count:
        raise ValueError(f"{count} balances but {len(loss_rates)} loss rates")
    factors = [1.0] * count if factors is None else [float(f) for f in factors]
    if len(factors) != count or any(f < 0 for f in factors):
        raise ValueError("one forward-looking factor per bucket, each 0 or more")
    labels = list(labels) if labels is not None else [f"bucket {i + 1}" for i in range(count)]
    frame = pd.DataFrame({
        "bucket": labels, "balance": [float(b) for b in balances],
        "roll_rate": list(roll_rates_used) if roll_rates_used is not None else [np.nan] * count,
        "loss_rate": [float(r) for r in loss_rates], "factor": factors,
    })
    frame["adjusted_loss_rate"] = (frame["loss_rate"] * frame["factor"]).clip(upper=1.0)
    frame["provision"] = (frame["balance"] * frame["adjusted_loss_rate"]).round(2)
    total = pd.DataFrame([{"bucket": "Total", "balance": round(frame["balance"].sum(), 2), "roll_rate": np.nan,
                           "loss_rate": np.nan, "factor": np.nan, "adjusted_loss_rate": np.nan,
                           "provision": round(frame["provision"].sum(), 2)}])
    return pd.concat([frame, total], ignore_index=True)[MATRIX_COLUMNS]


def _window_end(as_of: date) -> date:
    """The last month end on or before `as_of` (roll rates are measured between month ends)."""
    return as_of if month_end(as_of) == as_of else previous_month_end(as_of)


def average_roll_rates(store: Store, start: date, end: date, window_months: int = DEFAULT_WINDOW_MONTHS,
                       filters: Filters = ALL) -> pd.DataFrame:
    """Per month end M from start's month to end's month (full months only) and bucket: the pooled
    roll rate (fraction) over the `window_months` transitions ending at M.

    Columns: month_end, from_bucket, roll_rate (NaN when the bucket held nothing in the window).
    """
    if window_months < 1:
        raise ValueError("the window is at least one month")
    last = _window_end(end)
    points = [p for p in month_ends(start, last) if p == month_end(p)]
    if not points:
        return pd.DataFrame(columns=["month_end", "from_bucket", "roll_rate"])
    first = month_end(add_months(points[0], -(window_months - 1)))
    flows = roll_rates(store, first, last, filters)
    labels = bucket_labels("due")[:-1]
    wide_from = flows.pivot(index="month_end", columns="from_bucket", values="from_balance")[labels]
    wide_rolled = flows.pivot(index="month_end", columns="from_bucket", values="rolled_balance")[labels]
    pooled_from = wide_from.rolling(window_months, min_periods=1).sum()
    pooled_rolled = wide_rolled.rolling(window_months, min_periods=1).sum()
    rates = (pooled_rolled / pooled_from.where(pooled_from != 0, np.nan)).loc[points]
    long = rates.reset_index().melt(id_vars="month_end", var_name="from_bucket", value_name="roll_rate")
    return long


def provision_at(store: Store, as_of: date, window_months: int = DEFAULT_WINDOW_MONTHS,
                 factors: Mapping[str, float] | None = None, filters: Filters = ALL,
                 final_loss_rate: float = 1.0) -> pd.DataFrame:
    """The provision matrix as of `as_of` (see the module docstring): the balances of the aging as of
    `as_of`, the roll rates averaged over the `window_months` month ends up to the last month end on
    or before it. A bucket that held nothing in the window has no roll rate: it counts as 0 (no loss
    observed), and so do the buckets younger than it."""
    labels = bucket_labels("due")
    unknown = set(factors or {}) - set(labels)
    if unknown:
        raise ValueError(f"no bucket {', '.join(sorted(unknown))}; the buckets are {', '.join(labels)}")
    window_end = _window_end(as_of)
    rates = average_roll_rates(store, window_end, window_end, window_months, filters)
    by_bucket = dict(zip(rates["from_bucket"], rates["roll_rate"].fillna(0.0), strict=True))
    used = [float(by_bucket.get(label, 0.0)) for label in labels[:-1]]
    aging = aging_buckets(store, as_of, filters, by="total")
    balances = [float(aging[label].sum()) if label in aging else 0.0 for label in labels]
    return provision_matrix(balances, loss_rates_from_roll_rates(used, final_loss_rate),
                            [float((factors or {}).get(label, 1.0)) for label in labels], labels,
                            used + [float(final_loss_rate)])


def provision_history(store: Store, start: date, end: date, window_months: int = DEFAULT_WINDOW_MONTHS,
                      factors: Mapping[str, float] | None = None, filters: Filters = ALL,
                      final_loss_rate: float = 1.0) -> pd.DataFrame:
    """The provision at each month end from start's month to end's month, and its movement.

    Columns: month_end, balance (open debits), provision, movement (provision - the previous row's;
    NaN on the first row). Each month end uses the roll rates of the window ending there. Two
    aggregate queries (roll rates, aging trend) whatever the number of months.
    """
    labels = bucket_labels("due")
    rates = average_roll_rates(store, start, end, window_months, filters)
    columns = ["month_end", "balance", "provision", "movement"]
    if rates.empty:
        return pd.DataFrame(columns=columns)
    points = sorted(set(rates["month_end"]))
    wide = rates.pivot(index="month_end", columns="from_bucket", values="roll_rate")[labels[:-1]].fillna(0.0)
    trend = aging_trend(store, points[0], points[-1], filters)
    balances = trend.pivot(index="month_end", columns="bucket", values="amount").reindex(points)[labels].fillna(0.0)
    factor = np.array([float((factors or {}).get(label, 1.0)) for label in labels])
    loss = np.ones((len(points), len(labels))) * float(final_loss_rate)
    for i in range(len(labels) - 2, -1, -1):
        loss[:, i] = wide[labels[i]].to_numpy() * loss[:, i + 1]
    provision = (balances.to_numpy() * np.minimum(loss * factor, 1.0)).round(2).sum(axis=1).round(2)
    out = pd.DataFrame({"month_end": points, "balance": balances.sum(axis=1).round(2).to_numpy(),
                        "provision": provision})
    out["movement"] = out["provision"].diff().round(2)
    return out[columns]
