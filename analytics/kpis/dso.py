"""DSO (standard and countback), Best Possible DSO, ADD, CEI, % over 90, and days to pay, per month.

Periods: one per report point, the month ends from start's month to end's month (the last point
is `end` itself when it is not a month end, so the last period is month-to-date). A period runs
from the day after the previous point (the first: the 1st of its month) to its point; days = its
length in days.

Definitions (reporting currency; balances converted at the FX rate on the point, flows of a
period at the rate on its last day; open items by the one rule in `analytics.ledger.open_items`):
- ar_end = open debits (open invoices and debit adjustments, gross of unapplied cash) at the
  point; ar_start = the same at the previous point; current_ar_end = the part not yet past due;
  over_90_ar_end = the part more than 90 days past due;
- credit_sales = invoices (entry_type 'invoice') posted in the period, and nothing else: a debit
  adjustment (penalty, fee, interest, re-billed cost) is owed, ages and counts in ar_end, but is
  not a sale, so it is never in the denominator of DSO, BPDSO, CEI or bad debt %; credit notes and
  credit adjustments do not reduce it either; collections = payments posted in the period
  (positive); write_offs = write-offs posted in the period (positive);
- dso_standard = ar_end / credit_sales x days;
- dso_countback = exhaust ar_end against credit sales period by period backwards (this period,
  then the months before it): each fully covered period adds its days, the last one its days x the
  uncovered share; history before 24 months is not searched (the DSO is then capped there);
- bpdso = current_ar_end / credit_sales x days; add = dso_standard - bpdso;
- cei = (ar_start + credit_sales/N - ar_end) / (ar_start + credit_sales/N - current_ar_end) x 100,
  N = months in the period (1 for a monthly row);
- pct_over_90 = over_90_ar_end / ar_end x 100.
A ratio whose denominator is 0 is NaN (no sales in the period: no DSO).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from analytics.ledger.filters import ALL, Filters, filter_sql
from analytics.ledger.fx import FX_AT_SPINE, fx_at_sql, reporting_params
from analytics.ledger.monthly_summaries import (
    bucket_from,
    summarised_points,
    summary_balances_sql,
    summary_flows_sql,
)
from analytics.ledger.months import add_months, month_end, month_ends, previous_month_end
from analytics.ledger.open_items import (
    open_amounts_sql,
    open_debits_by_due_sql,
    reads_open_now,
    spine_key,
    spine_sql,
)
from analytics.store.connection import Store, read_df

DSO_COLUMNS = [
    "month_end", "period_start", "days", "ar_start", "ar_end", "current_ar_end", "overdue_ar_end",
    "over_90_ar_end", "credit_sales", "collections", "write_offs", "dso_standard", "dso_countback",
    "bpdso", "add", "cei", "pct_over_90",
]
HISTORY_MONTHS = 24  # months before the first period kept for countback and rolling 12-month ratios


def _history(first_point: date, months: int) -> list[date]:
    """Month ends before the first period: the previous month end and `months` - 1 before it."""
    before = previous_month_end(first_point)
    return [month_end(add_months(before, -i)) for i in range(months, -1, -1)]


def period_figures(store: Store, points: list[date], filters: Filters = ALL,
                   history_months: int = HISTORY_MONTHS) -> pd.DataFrame:
    """Balances at each point and flows of the period ending there, plus `history_months` month ends
    before the first point (rows flagged history=True; the earliest has no flows).

    Columns: point, period_start, days, history, ar, current_ar, overdue_ar, over_90_ar,
    credit_sales, collections, write_offs (reporting currency; see the module docstring).
    Two aggregate queries whatever the number of points (no points x entries join); the month ends
    the monthly summaries cover are read from `monthly_balances` and `monthly_flows` (months x
    customers rows) instead of the ledger, the same sums; a last point that is not a month end
    (month to date) is then read from the ledger alone.
    """
    points = sorted(set(points))
    spine_points = _history(points[0], history_months) + points
    count = len(spine_points)
    with store.engine.connect() as conn:
        summarised = summarised_points(conn, spine_points, need_edge=90, consecutive=True)
    if summarised == count:
        ar, flows = _summary_figures(store, spine_points, filters)
    elif summarised:  # month ends from the summaries; the month to date (the last point) from the ledger
        ar, flows = _summary_figures(store, spine_points[:-1], filters)
        last_ar = _balances_at(store, spine_points[-1], filters).assign(k=count - 1)
        last_flows = _ledger_flows(store, spine_points[-2:], filters)
        last_flows = last_flows[last_flows["k"] == 1].assign(k=count - 1)
        ar, flows = _stack(ar, last_ar), _stack(flows, last_flows)
    else:
        ar, flows = _ledger_balances(store, spine_points, filters), _ledger_flows(store, spine_points, filters)
    frame = pd.DataFrame({"k": range(count), "point": spine_points})
    frame = frame.merge(ar, on="k", how="left").merge(flows, on="k", how="left")
    value_columns = ["ar", "current_ar", "overdue_ar", "over_90_ar", "credit_sales", "collections", "write_offs"]
    frame[value_columns] = frame[value_columns].astype(float).fillna(0.0)
    previous = frame["point"].shift(1)
    frame["period_start"] = [p + timedelta(days=1) if isinstance(p, date) else pt.replace(day=1)
                             for p, pt in zip(previous, frame["point"], strict=True)]
    frame["days"] = [(pt - ps).days + 1 for pt, ps in zip(frame["point"], frame["period_start"], strict=True)]
    frame["history"] = frame["k"] < count - len(points)
    return frame.drop(columns="k")


def _summary_figures(store: Store, spine_points: list[date], filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`period_figures`' balances and flows per k from the monthly summaries."""
    balances, params = summary_balances_sql(spine_points, filters)
    over_90 = bucket_from(90)
    ar = store.read(f"""
        WITH b AS ({balances})
        SELECT b.k, SUM(b.open_amount * b.fx_rate) AS ar,
               SUM(CASE WHEN b.bucket = 0 THEN b.open_amount * b.fx_rate ELSE 0 END) AS current_ar,
               SUM(CASE WHEN b.bucket > 0 THEN b.open_amount * b.fx_rate ELSE 0 END) AS overdue_ar,
               SUM(CASE WHEN b.bucket >= {over_90} THEN b.open_amount * b.fx_rate ELSE 0 END) AS over_90_ar
        FROM b GROUP BY b.k
    """, {**reporting_params(), **params})  # noqa: S608 - composed from constants and bind names only
    monthly, fparams = summary_flows_sql(spine_points, filters)
    flows = store.read(f"""
        WITH f AS ({monthly})
        SELECT f.k, SUM(f.credit_sales * f.rate) AS credit_sales, SUM(f.collections * f.rate) AS collections,
               SUM(f.write_offs * f.rate) AS write_offs
        FROM f GROUP BY f.k
    """, {**reporting_params(), **fparams})  # noqa: S608 - composed from constants and bind names only
    return ar, flows


def _stack(head: pd.DataFrame, tail: pd.DataFrame) -> pd.DataFrame:
    """Rows of the summaries then the ledger's last point (either may be empty)."""
    return pd.concat([f for f in (head, tail) if not f.empty] or [head], ignore_index=True)


def _ledger_balances(store: Store, spine_points: list[date], filters: Filters) -> pd.DataFrame:
    """`period_figures`' balances per k from the ledger."""
    balances, params = open_debits_by_due_sql(spine_points, filters)
    return store.read(f"""
        WITH b AS ({balances})
        SELECT b.k, SUM(b.open_amount * b.fx_rate) AS ar,
               SUM(CASE WHEN b.days_past_due <= 0 THEN b.open_amount * b.fx_rate ELSE 0 END) AS current_ar,
               SUM(CASE WHEN b.days_past_due > 0 THEN b.open_amount * b.fx_rate ELSE 0 END) AS overdue_ar,
               SUM(CASE WHEN b.days_past_due > 90 THEN b.open_amount * b.fx_rate ELSE 0 END) AS over_90_ar
        FROM b GROUP BY b.k
    """, {**reporting_params(), **params})  # noqa: S608 - composed from constants and bind names only


def _balances_at(store: Store, point: date, filters: Filters) -> pd.DataFrame:
    """`_ledger_balances` at one point (k = 0) from the open items at it (`open_amounts_sql`, read
    back from `open_now` near the horizon): the open debit entries' open amounts, the same sums."""
    with store.engine.connect() as conn, conn.begin():  # the horizon check and the sums on one snapshot
        items, params = open_amounts_sql(filters, customer=False, path=reads_open_now(conn, point), debit=True)
        return read_df(conn, f"""
            WITH items AS ({items}), per_currency AS (
                SELECT i.currency, SUM(i.open_amount) AS ar,
                       SUM(CASE WHEN i.days_past_due <= 0 THEN i.open_amount ELSE 0 END) AS current_ar,
                       SUM(CASE WHEN i.days_past_due > 0 THEN i.open_amount ELSE 0 END) AS overdue_ar,
                       SUM(CASE WHEN i.days_past_due > 90 THEN i.open_amount ELSE 0 END) AS over_90_ar
                FROM items i WHERE i.debit = 1 GROUP BY i.currency
            ), {fx_at_sql("as_of")}
            SELECT 0 AS k, SUM(p.ar * r.rate) AS ar, SUM(p.current_ar * r.rate) AS current_ar,
                   SUM(p.overdue_ar * r.rate) AS overdue_ar, SUM(p.over_90_ar * r.rate) AS over_90_ar
            FROM per_currency p
            JOIN (SELECT p.currency, CASE WHEN p.currency = :reporting THEN 1 ELSE fx.rate END AS rate
                  FROM per_currency p LEFT JOIN fx ON fx.currency = p.currency) r ON r.currency = p.currency
        """, {**reporting_params(point), **params})  # noqa: S608 - composed from constants and bind names only


def _ledger_flows(store: Store, spine_points: list[date], filters: Filters) -> pd.DataFrame:
    """`period_figures`' flows per k (the period ending at point k; none at k = 0) from the ledger."""
    count = len(spine_points)
    spine, sparams = spine_sql(spine_points)
    entry_filter, fparams = filter_sql(filters, "e.customer_id")
    key = spine_key("d.posting_date", count)
    return store.read(f"""
        WITH {spine}, {FX_AT_SPINE},
        daily AS (
            SELECT e.posting_date, e.currency, e.entry_type, SUM(e.amount) AS amount
            FROM ledger_entries e
            WHERE e.posting_date > :s0 AND e.posting_date <= :s{count - 1}
              AND e.entry_type IN ('invoice', 'payment', 'write_off'){entry_filter}
            GROUP BY e.posting_date, e.currency, e.entry_type
        ), keyed AS (
            SELECT {key} AS k, d.currency, d.entry_type, SUM(d.amount) AS amount
            FROM daily d GROUP BY {key}, d.currency, d.entry_type
        )
        SELECT f.k,
               SUM(CASE WHEN f.entry_type = 'invoice' THEN f.amount * f.rate ELSE 0 END) AS credit_sales,
               -SUM(CASE WHEN f.entry_type = 'payment' THEN f.amount * f.rate ELSE 0 END) AS collections,
               -SUM(CASE WHEN f.entry_type = 'write_off' THEN f.amount * f.rate ELSE 0 END) AS write_offs
        FROM (SELECT keyed.k, keyed.entry_type, keyed.amount,
                     CASE WHEN keyed.currency = :reporting THEN 1 ELSE fx.rate END AS rate
              FROM keyed LEFT JOIN fx ON fx.k = keyed.k AND fx.currency = keyed.currency) f
        GROUP BY f.k
    """, {**reporting_params(), **sparams, **fparams})  # noqa: S608 - composed from constants and bind names only


def _countback(ar_end: float, sales: list[float], days: list[int]) -> float:
    """Days of sales, newest period first, that it takes to exhaust ar_end (prorating the last)."""
    if ar_end <= 0:
        return 0.0
    remaining, total = ar_end, 0.0
    for s, d in zip(sales, days, strict=True):
        if s <= 0:
            total += d
            continue
        if remaining <= s:
            return total + remaining / s * d
        remaining -= s
        total += d
    return total  # history exhausted: capped


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator / denominator.where(denominator != 0, np.nan)


def dso_from_figures(figures: pd.DataFrame) -> pd.DataFrame:
    """`DSO_COLUMNS` for the non-history rows of `period_figures` (formulas in the module docstring)."""
    f = figures.reset_index(drop=True)
    out = pd.DataFrame({
        "month_end": f["point"], "period_start": f["period_start"], "days": f["days"],
        "ar_start": f["ar"].shift(1), "ar_end": f["ar"], "current_ar_end": f["current_ar"],
        "overdue_ar_end": f["overdue_ar"], "over_90_ar_end": f["over_90_ar"],
        "credit_sales": f["credit_sales"], "collections": f["collections"], "write_offs": f["write_offs"],
    })
    out["dso_standard"] = _ratio(out["ar_end"], out["credit_sales"]) * out["days"]
    sales, days = f["credit_sales"].tolist(), f["days"].tolist()
    out["dso_countback"] = [
        _countback(out.at[i, "ar_end"], sales[i:0:-1], days[i:0:-1]) if out.at[i, "credit_sales"] > 0 else np.nan
        for i in range(len(out))
    ]
    out["bpdso"] = _ratio(out["current_ar_end"], out["credit_sales"]) * out["days"]
    out["add"] = out["dso_standard"] - out["bpdso"]
    months = 1  # each row is one (monthly) period
    opening = out["ar_start"] + out["credit_sales"] / months
    out["cei"] = _ratio(opening - out["ar_end"], opening - out["current_ar_end"]) * 100
    out["pct_over_90"] = _ratio(out["over_90_ar_end"], out["ar_end"]) * 100
    out = out[~f["history"]].reset_index(drop=True)
    money = ["ar_start", "ar_end", "current_ar_end", "overdue_ar_end", "over_90_ar_end", "credit_sales",
             "collections", "write_offs"]
    out[money] = out[money].round(2)
    ratios = ["dso_standard", "dso_countback", "bpdso", "add", "cei", "pct_over_90"]
    out[ratios] = out[ratios].round(2)
    return out[DSO_COLUMNS]


def dso_monthly(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """One row per month end in [start, end] with `DSO_COLUMNS` (formulas in the module docstring)."""
    points = month_ends(start, end)
    if not points:
        return pd.DataFrame(columns=DSO_COLUMNS)
    return dso_from_figures(period_figures(store, points, filters))


def days_to_pay(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Invoices paid in each month of [start, end]: count, amount, weighted days to pay and days late.

    An invoice is paid on its `settled_on` date: the day its allocations from payments and credit
    notes reach its amount (and stay there); invoices with a write-off allocation are not "paid"
    (bad debt).
    days_to_pay = paid date - posting date; days_late = max(paid date - due date, 0); both averaged
    weighted by invoice amount (reporting currency at the rate on `end`). Columns: month_end,
    invoices_paid, amount_paid, avg_days_to_pay, avg_days_late, paid_late_pct (share of the amount
    paid after the due date).
    """
    points = month_ends(start, end)
    columns = ["month_end", "invoices_paid", "amount_paid", "avg_days_to_pay", "avg_days_late", "paid_late_pct"]
    if not points:
        return pd.DataFrame(columns=columns)
    _, sparams = spine_sql(points)
    entry_filter, fparams = filter_sql(filters, "e.customer_id")
    key = spine_key("p.paid_date", len(points))
    # summed per paid date and currency first, then keyed to months and converted (a few hundred rows,
    # not one CASE and one multiplication per invoice; DECIMAL sums are exact, so the same figures)
    frame = store.read(f"""
        WITH written_off AS (
            SELECT DISTINCT a.to_entry_id FROM allocations a
            JOIN ledger_entries c ON c.entry_id = a.from_entry_id AND c.entry_type = 'write_off'
        ), {fx_at_sql("end")}, paid AS (
            SELECT e.settled_on AS paid_date, e.currency, COUNT(*) AS invoices, SUM(e.amount) AS amount,
                   SUM(e.amount * (e.settled_on - e.posting_date)) AS amount_days,
                   SUM(CASE WHEN e.settled_on > COALESCE(e.due_date, e.posting_date)
                            THEN e.amount * (e.settled_on - COALESCE(e.due_date, e.posting_date)) ELSE 0 END)
                       AS amount_days_late,
                   SUM(CASE WHEN e.settled_on > COALESCE(e.due_date, e.posting_date) THEN e.amount ELSE 0 END)
                       AS amount_late
            FROM ledger_entries e
            LEFT JOIN written_off w ON w.to_entry_id = e.entry_id
            WHERE e.entry_type = 'invoice' AND w.to_entry_id IS NULL
              AND e.settled_on >= :start AND e.settled_on <= :end AND e.posting_date <= :end{entry_filter}
            GROUP BY e.settled_on, e.currency
        ), converted AS (
            SELECT p.paid_date, p.invoices, CASE WHEN p.currency = :reporting THEN 1 ELSE fx.rate END AS rate,
                   p.amount, p.amount_days, p.amount_days_late, p.amount_late
            FROM paid p LEFT JOIN fx ON fx.currency = p.currency
        )
        SELECT {key} AS k, SUM(p.invoices) AS invoices_paid, SUM(p.amount * p.rate) AS amount_paid,
               SUM(p.amount_days * p.rate) AS weighted_days_to_pay,
               SUM(p.amount_days_late * p.rate) AS weighted_days_late,
               SUM(p.amount_late * p.rate) AS amount_late
        FROM converted p GROUP BY {key}
    """, {**reporting_params(), **sparams, **fparams, "start": start, "end": end})  # noqa: S608
    out = pd.DataFrame({"k": range(len(points)), "month_end": points}).merge(frame, on="k", how="left")
    out["invoices_paid"] = out["invoices_paid"].fillna(0).astype(int)
    out["amount_paid"] = out["amount_paid"].astype(float).fillna(0.0)
    out["avg_days_to_pay"] = _ratio(out["weighted_days_to_pay"].astype(float), out["amount_paid"])
    out["avg_days_late"] = _ratio(out["weighted_days_late"].astype(float), out["amount_paid"])
    out["paid_late_pct"] = _ratio(out["amount_late"].astype(float), out["amount_paid"]) * 100
    out[columns[2:]] = out[columns[2:]].round(2)
    return out[columns]
