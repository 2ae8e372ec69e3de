"""When an invoice will be paid: the features known on a prediction date, the baseline and the model.

**Prediction date D.** Everything here reads only facts dated on or before D: entries posted by D,
allocations dated by D (through the ledger's open-as-of-D rule, `ledger.open_items`), invoices
settled *before* D (`settled_on < D`, not written off by D), disputes opened by D (open at D when not
resolved by D), promises whose promised date passed before D and were broken, dunning stages run by
D. No settlement date, days-to-settle or later flag of the invoice being predicted is ever read.
The rows predicted ("targets") are the invoices open at D and, for a backtest month, those issued
in (D, until]; an issued invoice is known by its own amount, dates and terms, and by its customer's
history as of D.

**Days to settle** of a paid invoice = settled_on − posting date (`ledger.settlement`).

**Baseline** (days from posting to payment): the customer's median days to settle over its invoices
paid before D when it has at least `MIN_HISTORY` of them; a customer with a thinner history takes its
segment's median (segment with at least `MIN_HISTORY` paid invoices), else the whole ledger's; a
customer with no paid invoice before D is predicted to pay on its due date. The predicted date is
posting date + those days, never before D + 1 for an invoice still open at D (it was not paid by D)
nor before its posting date.

**Model**: scikit-learn's HistGradientBoostingRegressor (fixed `random_state`) on `FEATURES` to the
days to settle; its prediction is clamped like the baseline's. **Training labels** (`labelled`): the
model for D learns from the `TRAIN_MONTHS` month-start snapshots S with S <= D − `HORIZON_DAYS`
(`training_dates`), so every invoice in them has had at least `HORIZON_DAYS` − 1 month to resolve
before D. Label = days to settle when it was paid before D; an invoice written off before D is
dropped (it was not paid); one still open at D is **censored**: kept with the label D − posting date
(a lower bound of its true days to settle, at least ~120 days: the model learns "very late", not
"fast"). Labels read only what is known at D (settled before D, written off before D).
"""

# ruff: noqa: S608 - SQL here is composed from this module's constants and ledger SQL only; values are bound.
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analytics.ledger.filters import ALL, Filters, filter_sql
from analytics.ledger.fx import fx_at_sql, reporting_params
from analytics.ledger.months import add_months
from analytics.ledger.open_items import open_items_sql
from analytics.store.connection import Store, read_df

MIN_HISTORY = 3  # paid invoices before a customer's (or segment's) own median is trusted
TREND_DAYS = 90  # the recent window of the days-late trend
TRAIN_MONTHS = 6  # monthly snapshots a model learns from
HORIZON_DAYS = 150  # a training snapshot is at least this old at D: its invoices had time to resolve
RANDOM_STATE = 19
MAX_TRAINING_ROWS = 100_000  # a seeded sample beyond this: training time stays bounded at 1M entries

FEATURES = [
    "paid_invoices", "mean_days_late", "median_days_late", "share_late", "trend_days_late",
    "median_days_to_settle", "amount_vs_usual", "terms_days", "invoice_month", "invoice_weekday",
    "age_days", "was_open", "open_share", "open_balance", "credit_utilisation", "disputes_so_far",
    "open_disputes", "invoice_disputed", "broken_promises", "dunning_stage", "baseline_days",
]

_PERCENTILE = "percentile_cont(0.5) WITHIN GROUP (ORDER BY {})"


def _median(column: str) -> str:
    return _PERCENTILE.format(column)


def _features_sql(filters: Filters) -> tuple[str, dict[str, object]]:
    """The one query of the features of the targets as of :as_of (targets issued up to :until)."""
    items, params = open_items_sql(filters)
    entry_filter, fparams = filter_sql(filters, "e.customer_id", prefix="t_")
    params.update(fparams)
    sql = f"""
    WITH items AS ({items}),
    {fx_at_sql("as_of")},
    written_off AS (
        SELECT DISTINCT a.to_entry_id AS entry_id FROM allocations a
        JOIN ledger_entries w ON w.entry_id = a.from_entry_id AND w.entry_type = 'write_off'
        WHERE a.allocation_date <= :as_of
    ), paid AS (
        SELECT e.customer_id, e.settled_on,
               e.settled_on - e.posting_date AS days_to_settle,
               e.settled_on - COALESCE(e.due_date, e.posting_date) AS days_late
        FROM ledger_entries e LEFT JOIN written_off w ON w.entry_id = e.entry_id
        WHERE e.entry_type = 'invoice' AND e.settled_on < :as_of AND w.entry_id IS NULL
    ), history AS (
        SELECT customer_id, COUNT(*) AS paid_invoices,
               {_median("days_to_settle")} AS median_days_to_settle,
               AVG(days_late) AS mean_days_late, {_median("days_late")} AS median_days_late,
               AVG(CASE WHEN days_late > 0 THEN 1.0 ELSE 0.0 END) AS share_late,
               AVG(CASE WHEN settled_on >= :trend_from THEN days_late END) - AVG(days_late) AS trend_days_late
        FROM paid GROUP BY customer_id
    ), segment_history AS (
        SELECT c.segment, COUNT(*) AS paid_invoices, {_median("p.days_to_settle")} AS median_days_to_settle
        FROM paid p JOIN customers c ON c.customer_id = p.customer_id GROUP BY c.segment
    ), ledger_history AS (
        SELECT COUNT(*) AS paid_invoices, {_median("days_to_settle")} AS median_days_to_settle FROM paid
    ), usual AS (
        SELECT customer_id, AVG(amount) AS usual_amount FROM ledger_entries
        WHERE entry_type = 'invoice' AND posting_date <= :as_of GROUP BY customer_id
    ), open_invoices AS (
        SELECT entry_id, SUM(open_amount) AS open_amount, MAX(fx_rate) AS fx_rate FROM items
        WHERE entry_type = 'invoice' GROUP BY entry_id
    ), balance AS (
        SELECT customer_id, SUM(open_amount * fx_rate) AS open_balance FROM items
        WHERE open_amount > 0 GROUP BY customer_id
    ), disputes AS (
        SELECT customer_id, COUNT(*) AS disputes_so_far,
               SUM(CASE WHEN resolved_at IS NULL OR CAST(resolved_at AS DATE) > :as_of THEN 1 ELSE 0 END)
                   AS open_disputes
        FROM activities WHERE kind = 'dispute' AND CAST(occurred_at AS DATE) <= :as_of GROUP BY customer_id
    ), disputed_invoices AS (
        SELECT DISTINCT COALESCE(ai.entry_id, d.entry_id) AS entry_id
        FROM activities d LEFT JOIN activity_invoices ai ON ai.activity_id = d.activity_id
        WHERE d.kind = 'dispute' AND CAST(d.occurred_at AS DATE) <= :as_of
          AND (d.resolved_at IS NULL OR CAST(d.resolved_at AS DATE) > :as_of)
    ), broken AS (
        SELECT customer_id, COUNT(*) AS broken_promises FROM activities
        WHERE kind = 'promise' AND status = 'broken' AND due_date < :as_of AND CAST(occurred_at AS DATE) <= :as_of
        GROUP BY customer_id
    ), stages AS (
        SELECT entry_id, MAX(stage_no) AS dunning_stage FROM dunning_runs
        WHERE run_date <= :as_of AND outcome IN ('sent', 'done') GROUP BY entry_id
    ), targets AS (
        SELECT o.entry_id, o.open_amount, o.fx_rate, 1 AS was_open FROM open_invoices o WHERE o.open_amount > 0
        UNION ALL
        SELECT e.entry_id, e.amount, CASE WHEN e.currency = :reporting THEN 1 ELSE fx.rate END, 0
        FROM ledger_entries e LEFT JOIN fx ON fx.currency = e.currency
        WHERE e.entry_type = 'invoice' AND e.amount > 0 AND e.posting_date > :as_of
          AND e.posting_date <= :until{entry_filter}
    )
    SELECT t.entry_id, e.customer_id, e.document_number, c.segment, c.collector, e.currency,
           e.posting_date, COALESCE(e.due_date, e.posting_date) AS due_date, e.amount,
           t.open_amount, t.fx_rate, t.was_open,
           COALESCE(h.paid_invoices, 0) AS paid_invoices, h.mean_days_late, h.median_days_late,
           h.share_late, h.trend_days_late, h.median_days_to_settle,
           sh.paid_invoices AS segment_paid_invoices, sh.median_days_to_settle AS segment_median_days,
           lh.paid_invoices AS ledger_paid_invoices, lh.median_days_to_settle AS ledger_median_days,
           e.amount / NULLIF(u.usual_amount, 0) AS amount_vs_usual,
           COALESCE(e.due_date, e.posting_date) - e.posting_date AS terms_days,
           COALESCE(b.open_balance, 0) AS open_balance,
           COALESCE(b.open_balance, 0) / NULLIF(c.credit_limit * COALESCE(t.fx_rate, 1), 0) AS credit_utilisation,
           COALESCE(d.disputes_so_far, 0) AS disputes_so_far, COALESCE(d.open_disputes, 0) AS open_disputes,
           CASE WHEN di.entry_id IS NULL THEN 0 ELSE 1 END AS invoice_disputed,
           COALESCE(br.broken_promises, 0) AS broken_promises, COALESCE(s.dunning_stage, 0) AS dunning_stage
    FROM targets t
    JOIN ledger_entries e ON e.entry_id = t.entry_id
    JOIN customers c ON c.customer_id = e.customer_id
    LEFT JOIN history h ON h.customer_id = e.customer_id
    LEFT JOIN segment_history sh ON sh.segment = c.segment
    CROSS JOIN ledger_history lh
    LEFT JOIN usual u ON u.customer_id = e.customer_id
    LEFT JOIN balance b ON b.customer_id = e.customer_id
    LEFT JOIN disputes d ON d.customer_id = e.customer_id
    LEFT JOIN disputed_invoices di ON di.entry_id = t.entry_id
    LEFT JOIN broken br ON br.customer_id = e.customer_id
    LEFT JOIN stages s ON s.entry_id = t.entry_id
    ORDER BY t.entry_id
    """
    return sql, params


def snapshot(conn: sa.Connection, as_of: date, until: date | None = None, filters: Filters = ALL) -> pd.DataFrame:
    """The targets as of D (invoices open at D, and those issued in (D, until]) with their features
    and the baseline (module docstring). One SQL statement; `until` None means open items only."""
    sql, params = _features_sql(filters)
    frame = read_df(conn, sql, {**params, **reporting_params(as_of), "until": until or as_of,
                                "trend_from": as_of - timedelta(days=TREND_DAYS)})
    for column in ("posting_date", "due_date"):
        frame[column] = pd.to_datetime(frame[column])
    numeric = [c for c in frame.columns if c not in
               ("entry_id", "customer_id", "document_number", "segment", "collector", "currency",
                "posting_date", "due_date")]
    frame[numeric] = frame[numeric].astype(float)
    frame["as_of"] = pd.Timestamp(as_of)
    frame["invoice_month"] = frame["posting_date"].dt.month.astype(float)
    frame["invoice_weekday"] = frame["posting_date"].dt.day_of_week.astype(float)
    frame["age_days"] = ((frame["as_of"] - frame["posting_date"]).dt.days.clip(lower=0)).astype(float)
    frame["open_share"] = frame["open_amount"] / frame["amount"]
    frame["open_amount_reporting"] = frame["open_amount"] * frame["fx_rate"]
    frame["baseline_days"] = baseline_days(frame)
    frame["baseline_date"] = clamp_dates(frame, frame["baseline_days"])
    return frame


def baseline_days(frame: pd.DataFrame) -> pd.Series:
    """Days from posting to payment by the baseline rule: own median (>= MIN_HISTORY paid), else the
    segment's, else the ledger's; the due date's terms when the customer has no paid invoice."""
    own = frame["median_days_to_settle"].where(frame["paid_invoices"] >= MIN_HISTORY)
    segment = frame["segment_median_days"].where(frame["segment_paid_invoices"] >= MIN_HISTORY)
    ledger = frame["ledger_median_days"].where(frame["ledger_paid_invoices"] >= MIN_HISTORY)
    days = own.fillna(segment).fillna(ledger)
    return days.where(frame["paid_invoices"] > 0, frame["terms_days"]).fillna(frame["terms_days"])


def clamp_dates(frame: pd.DataFrame, days: pd.Series | np.ndarray) -> pd.Series:
    """posting date + days, rounded to whole days, never before the posting date, nor before D + 1
    for an invoice open at D."""
    predicted = frame["posting_date"] + pd.to_timedelta(np.maximum(np.rint(np.asarray(days, float)), 0), unit="D")
    floor = frame["as_of"] + pd.Timedelta(days=1)
    return predicted.where((frame["was_open"] == 0) | (predicted >= floor), floor)


def month_snapshots(store: Store, dates: list[date], filters: Filters = ALL) -> dict[date, pd.DataFrame]:
    """One snapshot per date D: open at D plus issued until the day before the next month start."""
    with store.engine.connect() as conn:
        return {d: snapshot(conn, d, add_months(d, 1) - timedelta(days=1), filters) for d in dates}


def paid_dates(store: Store, known_before: date | None = None) -> pd.DataFrame:
    """entry_id, paid_on: invoices paid (settled, not by a write-off) before `known_before` (None:
    every paid invoice). The labels of training and of the backtest, never a feature."""
    sql = """
    SELECT e.entry_id, e.settled_on AS paid_on FROM ledger_entries e
    WHERE e.entry_type = 'invoice' AND e.settled_on IS NOT NULL{before}
      AND NOT EXISTS (SELECT 1 FROM allocations a JOIN ledger_entries w
                      ON w.entry_id = a.from_entry_id AND w.entry_type = 'write_off'
                      WHERE a.to_entry_id = e.entry_id{written_before})
    """.format(before=" AND e.settled_on < :known" if known_before else "",
               written_before=" AND a.allocation_date < :known" if known_before else "")
    frame = store.read(sql, {"known": known_before} if known_before else None)
    frame["paid_on"] = pd.to_datetime(frame["paid_on"])
    return frame


def written_off_before(store: Store, known_before: date) -> pd.DataFrame:
    """entry_id of the invoices a write-off was applied to before `known_before` (dropped from training)."""
    return store.read("""
    SELECT DISTINCT a.to_entry_id AS entry_id FROM allocations a
    JOIN ledger_entries w ON w.entry_id = a.from_entry_id AND w.entry_type = 'write_off'
    WHERE a.allocation_date < :known""", {"known": known_before})


def labelled(snapshots: list[pd.DataFrame], labels: pd.DataFrame, known_before: date | None = None,
             dropped: pd.DataFrame | None = None) -> pd.DataFrame:
    """The snapshots' rows with `days_to_settle` (module docstring): paid before D → its days to
    settle; with `known_before` D, a row not paid by D is censored (label D − posting date,
    `censored` 1) unless in `dropped` (written off before D); without D, unpaid rows are left out."""
    if not snapshots:
        return pd.DataFrame(columns=[*FEATURES, "days_to_settle", "censored"])
    rows = pd.concat(snapshots, ignore_index=True).merge(labels, on="entry_id", how="left")
    if dropped is not None and len(dropped):
        rows = rows[~rows["entry_id"].isin(dropped["entry_id"]) | rows["paid_on"].notna()]
    if known_before is None:
        rows = rows[rows["paid_on"].notna()]
    rows = rows.reset_index(drop=True)
    rows["censored"] = rows["paid_on"].isna().astype(float)
    settled = rows["paid_on"].fillna(pd.Timestamp(known_before) if known_before else pd.NaT)
    rows["days_to_settle"] = (settled - rows["posting_date"]).dt.days.astype(float)
    return rows


@dataclass(frozen=True)
class PaymentModel:
    """A trained model and what it learned from."""

    estimator: object
    trained_rows: int
    trained_to: date
    empty_features: tuple[str, ...] = ()  # no value in the training rows: read as 0 (a store without credit limits)


def _matrix(frame: pd.DataFrame, empty: tuple[str, ...]) -> np.ndarray:
    """`FEATURES` as floats: infinities as missing, the features empty in training as 0."""
    x = frame[FEATURES].astype(float).replace([np.inf, -np.inf], np.nan)
    if empty:
        x[list(empty)] = 0.0
    return x.to_numpy(float)


def train(rows: pd.DataFrame, trained_to: date, max_iter: int = 100) -> PaymentModel | None:
    """HistGradientBoostingRegressor on `FEATURES` -> days to settle (None with fewer than 50 rows);
    at most `MAX_TRAINING_ROWS` rows, a sample drawn with `RANDOM_STATE`."""
    from sklearn.ensemble import HistGradientBoostingRegressor  # heavy import, only when a model is trained
    from threadpoolctl import threadpool_limits

    if len(rows) < 50:
        return None
    if len(rows) > MAX_TRAINING_ROWS:
        rows = rows.sample(MAX_TRAINING_ROWS, random_state=RANDOM_STATE)
    estimator = HistGradientBoostingRegressor(loss="absolute_error", max_iter=max_iter, learning_rate=0.1,
                                              early_stopping=False, random_state=RANDOM_STATE)
    values = rows[FEATURES].astype(float).replace([np.inf, -np.inf], np.nan)
    empty = tuple(c for c in FEATURES if values[c].nunique() < 2)
    # one thread: OpenMP workers spin-wait on a busy 2-core machine, and one thread sums in one order
    with threadpool_limits(1):
        estimator.fit(_matrix(rows, empty), rows["days_to_settle"].to_numpy(float))
    return PaymentModel(estimator, len(rows), trained_to, empty)


def model_dates(model: PaymentModel, frame: pd.DataFrame) -> pd.Series:
    """The model's predicted payment dates of a snapshot's rows (clamped as the baseline's)."""
    if frame.empty:
        return pd.Series([], dtype="datetime64[ns]")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        days = model.estimator.predict(_matrix(frame, model.empty_features))  # type: ignore[attr-defined]
    return clamp_dates(frame, days)


def training_dates(as_of: date, months: int = TRAIN_MONTHS) -> list[date]:
    """The month starts a model for D learns from: the `months` latest with S <= D − `HORIZON_DAYS`."""
    latest = (as_of - timedelta(days=HORIZON_DAYS)).replace(day=1)
    return [add_months(latest, -k) for k in range(months - 1, -1, -1)]


def train_as_of(store: Store, as_of: date, filters: Filters = ALL, max_iter: int = 100) -> PaymentModel | None:
    """The model for D: the snapshots of `training_dates(D)`, labelled with what was known at D
    (paid before D, else censored at D; nothing after D is learnt)."""
    snapshots = month_snapshots(store, training_dates(as_of), filters)
    rows = labelled(list(snapshots.values()), paid_dates(store, as_of), as_of, written_off_before(store, as_of))
    return train(rows, as_of, max_iter)


def predict_open_items(store: Store, as_of: date, filters: Filters = ALL,
                       model: PaymentModel | None = None) -> pd.DataFrame:
    """The invoices open at D with their features, `baseline_date` and (with a model) `model_date`."""
    with store.engine.connect() as conn:
        frame = snapshot(conn, as_of, None, filters)
    if model is not None:
        frame["model_date"] = model_dates(model, frame)
    return frame
