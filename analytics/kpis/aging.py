"""AR aging as of any date: buckets per group, the open invoices behind a bucket, and the trend.

Rules (all from `analytics.ledger.open_items`, the one open-as-of-D definition):
- open as of D: entries posted on or before D, allocations dated on or before D; age measured to D;
- an invoice with a payment schedule is aged as its installments (each on its own due date, paid
  oldest first: `open_items`); its total is the invoice's open amount;
- basis "due": days past due = D - due date; "Current" = not yet past due (due today is current),
  then one bucket per `[reporting] aging_edges` interval (1-30, 31-60, 61-90, 91-120, 120+ by
  default); basis "invoice": age = D - posting date, buckets 0-30, 31-60, ..., 120+;
- unapplied cash and open credit notes (open credit items) are their own column "Unapplied"
  (negative), never netted into a bucket; "Total" = open invoices (debits); "Net balance" =
  Total + Unapplied;
- amounts in the reporting currency: each item times the latest FX rate on or before D (the
  reporting currency itself at 1). Items with no such rate are left out; their count is in
  `frame.attrs["missing_fx"]`.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics.ledger.buckets import BASES as BASES  # re-exported: the aging bases
from analytics.ledger.buckets import bucket_case, bucket_condition, bucket_labels, intervals
from analytics.ledger.filters import ALL, Filters
from analytics.ledger.fx import fx_at_sql, reporting_params
from analytics.ledger.monthly_summaries import summarised_points, summary_balances_sql
from analytics.ledger.months import month_ends
from analytics.ledger.open_items import (
    open_amounts_sql,
    open_debits_by_due_sql,
    open_items_sql,
    reads_open_now,
)
from analytics.store.connection import Store, read_df

GROUPINGS: dict[str, list[tuple[str, str]]] = {  # by -> [(output column, customers column)]
    "total": [],
    "customer": [("customer_id", "customer_id"), ("customer_name", "name")],
    "segment": [("segment", "segment")],
    "collector": [("collector", "collector")],
    "country": [("country", "country")],
    "currency": [("currency", "currency")],
}
TOTAL, UNAPPLIED, NET = "Total", "Unapplied", "Net balance"
_intervals = intervals  # the bucket definition lives in `analytics.ledger.buckets`


def _days_column(basis: str) -> str:
    return "days_past_due" if basis == "due" else "age_days"


def aging_buckets(store: Store, as_of: date, filters: Filters = ALL, by: str = "total",
                  basis: str = "due") -> pd.DataFrame:
    """One row per group: key column(s), one column per bucket label, Total, Unapplied, Net balance.

    bucket amount = sum of open debit amounts x FX rate at D whose age falls in the bucket;
    Total = sum of the buckets; Unapplied = sum of open credit items x FX (<= 0);
    Net balance = Total + Unapplied. Groups are customer attributes (by: total, customer, segment,
    collector, country, currency). Groups with no open item are left out; by="total" always gives
    one row.
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    spans = intervals(basis)
    days = f"i.{_days_column(basis)}"
    # Per (customer,) currency and bucket (-1 = open credit), summed in the item's currency, then
    # converted once per currency: exact DECIMAL arithmetic, so the same numbers as converting each
    # item (see `open_items.open_amounts_sql`). by="total" needs no customer attribute, so no join
    # (as in `open_items.portfolio_summary`; every writer of ledger rows creates or requires the customer).
    whens = " ".join(f"WHEN {bucket_condition(days, lo, hi)} THEN {k}" for k, (_, lo, hi) in enumerate(spans))
    bucket = f"CASE WHEN i.open_amount < 0 THEN -1 {whens} END"
    amount = "v.amount * v.fx_rate"
    columns = [f'SUM(CASE WHEN v.bucket = {k} THEN {amount} ELSE 0 END) AS "{label}"'
               for k, (label, _, _) in enumerate(spans)]
    columns.append(f'SUM(CASE WHEN v.bucket >= 0 THEN {amount} ELSE 0 END) AS "{TOTAL}"')
    columns.append(f'SUM(CASE WHEN v.bucket = -1 THEN {amount} ELSE 0 END) AS "{UNAPPLIED}"')
    columns.append("SUM(CASE WHEN v.fx_rate IS NULL THEN v.items ELSE 0 END) AS missing_fx")
    grouped = bool(GROUPINGS[by])
    keys = [f"c.{col} AS {out}" for out, col in GROUPINGS[by]]
    group = f"GROUP BY {', '.join(f'c.{col}' for _, col in GROUPINGS[by])}" if keys else ""
    customer = "i.customer_id, " if grouped else ""
    # One read transaction: the horizon check and the report see the same snapshot.
    with store.engine.connect() as conn, conn.begin():
        items, params = open_amounts_sql(filters, customer=grouped, path=reads_open_now(conn, as_of))
        frame = read_df(conn, _aging_sql(items, customer, bucket, keys, columns, group, grouped),
                        {**reporting_params(as_of), **params})
    labels = [label for label, _, _ in spans] + [TOTAL, UNAPPLIED]
    if frame.empty and by == "total":
        frame = pd.DataFrame([{label: 0.0 for label in labels} | {"missing_fx": 0}])
    missing = int(np.nansum(frame["missing_fx"].to_numpy(dtype=float)))
    # numpy per column instead of pandas astype/fillna/round on a column list (same values, ms less).
    key_columns = [out for out, _ in GROUPINGS[by]]
    columns = {key: frame[key] for key in key_columns}
    for label in labels:
        values = frame[label].to_numpy(dtype=float)
        columns[label] = np.round(np.where(np.isnan(values), 0.0, values), 2)
    columns[NET] = np.round(columns[TOTAL] + columns[UNAPPLIED], 2)
    frame = pd.DataFrame(columns)
    if by == "customer":
        frame = frame.sort_values([TOTAL, "customer_id"], ascending=[False, True])
    elif key_columns:
        frame = frame.sort_values(key_columns, na_position="last")
    frame = frame.reset_index(drop=True)
    frame.attrs["missing_fx"] = missing
    return frame


def _aging_sql(items: str, customer: str, bucket: str, keys: list[str], columns: list[str], group: str,
               grouped: bool) -> str:
    return f"""
    WITH items AS ({items}), per_currency AS (
        SELECT {customer}i.currency, {bucket} AS bucket, SUM(i.open_amount) AS amount, COUNT(*) AS items
        FROM items i GROUP BY {customer}i.currency, {bucket}
    ), {fx_at_sql("as_of")}, converted AS (
        SELECT {customer.replace("i.", "p.")}p.bucket, p.amount, p.items,
               CASE WHEN p.currency = :reporting THEN 1 ELSE fx.rate END AS fx_rate
        FROM per_currency p LEFT JOIN fx ON fx.currency = p.currency
    )
    SELECT {', '.join(keys + columns)}
    FROM converted v{" JOIN customers c ON c.customer_id = v.customer_id" if grouped else ""}
    {group}
    """  # noqa: S608 - composed from constants, config integers and bind names only


def open_invoices(store: Store, as_of: date, filters: Filters = ALL, bucket: str | None = None,
                  basis: str = "due") -> pd.DataFrame:
    """The open invoices (debits) as of D behind an aging cell, oldest first, with customer name.

    `bucket` is one of `bucket_labels(basis)` (None = all open debits), or "Unapplied" for the open
    credit items (unapplied cash, open credit notes). open_amount is in the item's currency;
    open_amount_reporting = open_amount x the FX rate at D.
    """
    labels = bucket_labels(basis)
    if bucket is not None and bucket not in labels and bucket != UNAPPLIED:
        raise ValueError(f"bucket must be one of {', '.join(labels + [UNAPPLIED])}, not {bucket!r}")
    days = _days_column(basis)
    case = bucket_case(f"i.{days}", basis)
    if bucket == UNAPPLIED:
        where = "i.open_amount < 0"
    else:
        where = "i.open_amount > 0" + (f" AND {case} = :bucket" if bucket else "")
    with store.engine.connect() as conn, conn.begin():  # the horizon check and the report on one snapshot
        items, params = open_items_sql(filters, path=reads_open_now(conn, as_of))
        frame = read_df(conn, _open_invoices_sql(items, case, where, days),
                        {**reporting_params(as_of), **params, "bucket": bucket})
    for col in ("posting_date", "due_date"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    frame["open_amount_reporting"] = frame["open_amount_reporting"].round(2)
    return frame


def _open_invoices_sql(items: str, case: str, where: str, days: str) -> str:
    return f"""
    WITH items AS ({items})
    SELECT i.entry_id, i.customer_id, c.name AS customer_name, i.entry_type, i.document_number,
           i.posting_date, i.due_date, i.days_past_due, i.age_days,
           CASE WHEN i.open_amount > 0 THEN {case} ELSE '{UNAPPLIED}' END AS bucket,
           i.currency, i.amount, i.open_amount, i.fx_rate, i.open_amount * i.fx_rate AS open_amount_reporting
    FROM items i JOIN customers c ON c.customer_id = i.customer_id
    WHERE {where}
    ORDER BY i.{days} DESC, i.open_amount DESC, i.entry_id
    """  # noqa: S608 - composed from constants, config integers and bind names only


def aging_trend(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Bucket amounts (due basis, reporting currency) at each month end from start to end.

    Long format: month_end, bucket, amount; every bucket for every month end (0 when empty). The
    last point is `end` itself when it is not a month end. Open debits only (unapplied credits are
    not in a bucket). Same open-as-of rule as `aging_buckets`, evaluated per month end through
    `open_items.open_debits_by_due_sql` (cumulative flows, no months x invoices join); FX at each month end.
    Month ends the monthly summaries cover are read from them (the same sums); a last point that is
    not a month end then comes from the ledger alone.
    """
    points = month_ends(start, end)
    labels = bucket_labels("due")
    if not points:
        return pd.DataFrame({"month_end": pd.Series(dtype=object), "bucket": pd.Series(dtype=str),
                             "amount": pd.Series(dtype=float)})
    with store.engine.connect() as conn:
        summarised = summarised_points(conn, points)
    frames = []
    if summarised:  # the month-end summaries: the same sums, bucketed with the same edges
        head = points[:summarised]
        balances, params = summary_balances_sql(head, filters)
        frame = store.read(f"""
            WITH b AS ({balances})
            SELECT b.k, b.bucket, SUM(b.open_amount * b.fx_rate) AS amount FROM b GROUP BY b.k, b.bucket
        """, {**reporting_params(), **params})  # noqa: S608 - composed from constants and bind names only
        frames.append(pd.DataFrame({"month_end": [head[int(k)] for k in frame["k"]],
                                    "bucket": [labels[int(b)] for b in frame["bucket"]],
                                    "amount": frame["amount"]}))
    if summarised < len(points):  # everything, or the month to date only
        frames.append(_ledger_trend(store, points[summarised:], filters))
    frame = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    frame["month_end"] = pd.to_datetime(frame["month_end"]).dt.date
    grid = pd.MultiIndex.from_product([points, labels], names=["month_end", "bucket"])
    out = (frame.set_index(["month_end", "bucket"])["amount"].astype(float)
           .reindex(grid, fill_value=0.0).fillna(0.0).round(2).reset_index())
    return out


def _ledger_trend(store: Store, points: list[date], filters: Filters) -> pd.DataFrame:
    """month_end, bucket label, amount from the ledger (`open_debits_by_due_sql`)."""
    balances, params = open_debits_by_due_sql(points, filters)
    sql = f"""
    WITH b AS ({balances})
    SELECT b.at_date AS month_end, {bucket_case("b.days_past_due", "due")} AS bucket,
           SUM(b.open_amount * b.fx_rate) AS amount
    FROM b GROUP BY b.at_date, {bucket_case("b.days_past_due", "due")}
    """  # noqa: S608 - composed from constants, config integers and bind names only
    return store.read(sql, {**reporting_params(), **params})
