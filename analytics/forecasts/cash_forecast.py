"""Expected collections per week: promises to pay first, then predicted payment dates.

As of D, week k (k = 1 .. weeks) is the days D + 7(k − 1) + 1 .. D + 7k. Amounts are open amounts
in the reporting currency at D.
- **Promises**: a promise pending at D with its promised date in the horizon brings `kept rate` × its
  amount in its promised date's week; the kept rate = kept / (kept + broken) of the promises whose
  promised date fell before D (0.5 when none was decided). A promise naming invoices takes that
  share of their open amount from their predicted dates; a whole-account promise takes it
  proportionally from every open invoice of the customer.
- **Predicted dates**: the rest of each open invoice on its predicted date, by the method the
  latest stored backtest chose (`stored_backtests.latest_backtest`: the model only where it beats
  the baseline); with no stored backtest, the baseline.
- **Interval** per week: expected × the backtest's 2.5% and 97.5% weekly actual/forecast ratios
  (none without a stored backtest).
- **Not expected within the horizon**: what is predicted after the last week.
"""

# ruff: noqa: S608 - SQL here is composed from constants only; values are bound.
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics.access.roles import Actor, require
from analytics.forecasts.backtest import Backtest
from analytics.forecasts.payment_dates import PaymentModel, predict_open_items, train_as_of
from analytics.forecasts.stored_backtests import latest_backtest, no_backtest
from analytics.ledger.filters import ALL, Filters, filter_sql
from analytics.store.connection import Store

WEEKS = 13
DEFAULT_KEPT_RATE = 0.5

_PROMISES_SQL = """
WITH decided AS (
    SELECT SUM(CASE WHEN status = 'kept' THEN 1 ELSE 0 END) AS kept,
           SUM(CASE WHEN status IN ('kept', 'broken') THEN 1 ELSE 0 END) AS decided
    FROM activities WHERE kind = 'promise' AND due_date < :as_of AND status IN ('kept', 'broken')
)
SELECT p.activity_id, p.customer_id, p.amount, p.due_date AS promised_date,
       COALESCE(ai.entry_id, p.entry_id) AS entry_id, d.kept, d.decided
FROM activities p
LEFT JOIN activity_invoices ai ON ai.activity_id = p.activity_id
CROSS JOIN decided d
WHERE p.kind = 'promise' AND p.status = 'pending' AND CAST(p.occurred_at AS DATE) <= :as_of
  AND p.due_date > :as_of AND p.due_date <= :horizon{entry_filter}
"""


def kept_rate(promises: pd.DataFrame) -> float:
    """kept / (kept + broken) of the promises decided before D; `DEFAULT_KEPT_RATE` when none."""
    if promises.empty or not promises["decided"].fillna(0).iloc[0]:
        return DEFAULT_KEPT_RATE
    return float(promises["kept"].iloc[0]) / float(promises["decided"].iloc[0])


def expected_items(store: Store, actor: Actor, as_of: date, backtest: Backtest, weeks: int = WEEKS,
                   filters: Filters = ALL, model: PaymentModel | None = None) -> tuple[pd.DataFrame, float]:
    """Every expected collection (one row per invoice and source: promise or predicted) with its
    week (0 = not within the horizon), and the kept rate used."""
    require(actor, "see_forecasts")
    use_model = bool(backtest.summary.get("use_model")) and model is not None
    items = predict_open_items(store, as_of, filters, model if use_model else None)
    items["expected_date"] = items["model_date"] if use_model else items["baseline_date"]
    horizon = pd.Timestamp(as_of) + pd.Timedelta(days=7 * weeks)
    entry_filter, params = filter_sql(filters, "p.customer_id")
    promises = store.read(_PROMISES_SQL.format(entry_filter=entry_filter),
                          {**params, "as_of": as_of, "horizon": horizon.date()})
    rate = kept_rate(promises)
    items["amount"] = items["open_amount_reporting"].fillna(0.0)
    items = items[items["amount"] > 0].reset_index(drop=True)
    share = pd.Series(0.0, index=items.index)
    promised_date = pd.Series(pd.NaT, index=items.index, dtype="datetime64[ns]")
    if not promises.empty:
        promises["promised_date"] = pd.to_datetime(promises["promised_date"])
        named = promises.dropna(subset=["entry_id"]).drop_duplicates("entry_id").astype({"entry_id": "int64"})
        hit = items[["entry_id"]].astype("int64").merge(named[["entry_id", "promised_date"]], on="entry_id",
                                                        how="left")["promised_date"]
        share[hit.notna()] = rate
        promised_date = promised_date.fillna(hit)
        whole = promises[promises["entry_id"].isna()].groupby("customer_id").agg(
            promised=("amount", "sum"), promised_date=("promised_date", "min"))
        open_total = items.groupby("customer_id")["amount"].sum()
        whole["share"] = (whole["promised"].astype(float) * rate / open_total.reindex(whole.index)).clip(upper=1.0)
        extra = items["customer_id"].map(whole["share"]).fillna(0.0)
        free = share == 0
        share[free] = extra[free]
        whole_date = items[["customer_id"]].merge(whole[["promised_date"]], left_on="customer_id",
                                                  right_index=True, how="left")["promised_date"]
        promised_date = promised_date.fillna(whole_date.where(extra > 0))
    base = items[["entry_id", "customer_id", "document_number", "segment", "collector", "currency",
                  "due_date", "open_amount", "fx_rate"]]
    promised = base.assign(source="promise", expected_date=promised_date, amount=items["amount"] * share)
    predicted = base.assign(source="predicted", expected_date=items["expected_date"],
                            amount=items["amount"] * (1 - share))
    out = pd.concat([promised[share > 0], predicted[predicted["amount"] > 0]], ignore_index=True)
    days = (out["expected_date"] - pd.Timestamp(as_of)).dt.days
    out["week"] = np.where(days <= 7 * weeks, (days - 1) // 7 + 1, 0).astype(int)
    return out.sort_values(["week", "expected_date", "entry_id"]).reset_index(drop=True), rate


def weekly_forecast(items: pd.DataFrame, as_of: date, backtest: Backtest, weeks: int = WEEKS) -> pd.DataFrame:
    """One row per week: week, week_start, week_end, promised, predicted, expected = promised +
    predicted, low and high (expected × the backtest's weekly ratio quantiles; NaN without them)."""
    grid = pd.DataFrame({"week": range(1, weeks + 1)})
    grid["week_start"] = [as_of + pd.Timedelta(days=7 * (k - 1) + 1) for k in grid["week"]]
    grid["week_end"] = [as_of + pd.Timedelta(days=7 * k) for k in grid["week"]]
    sums = items[items["week"] > 0].pivot_table(index="week", columns="source", values="amount", aggfunc="sum")
    grid = grid.merge(sums.reindex(columns=["promise", "predicted"]), left_on="week", right_index=True, how="left")
    grid = grid.rename(columns={"promise": "promised"}).fillna({"promised": 0.0, "predicted": 0.0})
    grid["expected"] = grid["promised"] + grid["predicted"]
    low, high = backtest.summary.get("interval_low_ratio"), backtest.summary.get("interval_high_ratio")
    grid["low"] = grid["expected"] * low if low is not None else np.nan
    grid["high"] = grid["expected"] * high if high is not None else np.nan
    return grid.round(2)


def beyond_horizon(items: pd.DataFrame) -> float:
    """The open amount not expected within the horizon (week 0)."""
    return round(float(items.loc[items["week"] == 0, "amount"].sum()), 2)


def cash_forecast(store: Store, actor: Actor, as_of: date, weeks: int = WEEKS, filters: Filters = ALL,
                  backtest: Backtest | None = None) -> dict[str, object]:
    """The whole forecast: {"weekly", "items", "beyond_horizon", "kept_rate", "backtest"}; the
    backtest (default: the latest stored, never run here; none: the baseline without an interval)
    picks the method, and the model is trained only when it won."""
    require(actor, "see_forecasts")
    if weeks < 1 or weeks > 52:
        raise ValueError(f"weeks {weeks}: choose 1 to 52.")
    backtest = backtest or latest_backtest(store, actor) or no_backtest()
    model = train_as_of(store, as_of, filters) if backtest.summary.get("use_model") else None
    items, rate = expected_items(store, actor, as_of, backtest, weeks, filters, model)
    return {"weekly": weekly_forecast(items, as_of, backtest, weeks), "items": items,
            "beyond_horizon": beyond_horizon(items), "kept_rate": round(rate, 4), "backtest": backtest}
