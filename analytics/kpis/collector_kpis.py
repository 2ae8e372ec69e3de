"""Collector KPIs over a period [start, end], one row per collector (customers.collector).

- customers = customers owned (matching the filters); open_ar / overdue_ar = their open debits
  (invoices and debit adjustments) and the past-due part as of `end` (reporting currency); no KPI
  here uses credit sales (invoices only, never adjustments: `analytics.kpis.dso`);
- calls, emails, notes = activities of those kinds the collector authored in the period;
  actions_per_day = (calls + emails + notes) / working days (Monday to Friday) in the period;
- promises = promises to pay the collector recorded in the period; promises_due = those whose
  promised date is on or before `end`; kept = due promises for which the customer's payments
  posted from the promise date to the promised date reach the promised amount ("paid in full on or
  before the promised date"); kept_pct = kept / promises_due x 100;
- collected_14d = payments (positive, reporting currency) posted by the collector's customers in
  the period within 14 days after one of the collector's actions on that customer (each payment
  counted once).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from analytics.ledger.filters import ALL, Filters, customer_conditions, filter_sql
from analytics.ledger.fx import fx_at_sql, reporting_params
from analytics.ledger.open_items import current_open_amounts, open_amounts_sql
from analytics.store.connection import Store, read_df

ACTION_KINDS = ("call", "email", "note")
COLLECTOR_COLUMNS = ["collector", "customers", "open_ar", "overdue_ar", "calls", "emails", "notes", "actions_per_day",
                     "promises", "promises_due", "promises_kept", "kept_pct", "collected_14d"]


# "Within 14 days after an action" joins payments to actions of the same customer. Joined on the
# customer alone, every payment meets every action ever taken on its customer (most of the time of
# the 10M report). So days are cut into blocks of BLOCK_DAYS (15: the 0-14 day window spans at most
# two blocks), each action is listed under its own block and the next, and a payment meets only the
# actions listed under its block; the exact 0-14 day test still decides.
BLOCK_DAYS = 15


def _block(day: str) -> str:
    """SQL: the first day number (days since 1900-01-01) of the BLOCK_DAYS-day block holding `day`."""
    number = f"({day} - CAST('1900-01-01' AS DATE))"
    return f"{number} - MOD({number}, {BLOCK_DAYS})"


def working_days(start: date, end: date) -> int:
    """Monday-to-Friday days in [start, end]."""
    return int(np.busday_count(start, end + timedelta(days=1)))


def collector_kpis(store: Store, start: date, end: date, filters: Filters = ALL) -> pd.DataFrame:
    """Columns: collector, customers, open_ar, overdue_ar, calls, emails, notes, actions_per_day,
    promises, promises_due, promises_kept, kept_pct, collected_14d.

    One row per collector owning at least one customer matching the filters; actions by people who
    own no such customer are not shown. Payments in reporting currency at the rate on `end`.
    """
    conditions, params = customer_conditions(filters, alias="c")
    activity_filter, _ = filter_sql(filters, "a.customer_id")
    payment_filter, _ = filter_sql(filters, "p.customer_id")
    kinds = ", ".join(f"'{k}'" for k in ACTION_KINDS)
    # each action listed under its block and the next; only actions that can reach a payment in the period
    acted_blocks = " UNION ALL ".join(f"""
        SELECT a.customer_id, a.author, CAST(a.occurred_at AS DATE) AS acted_on,
               {_block("CAST(a.occurred_at AS DATE)")} + {shift} AS block
        FROM activities a
        WHERE a.kind IN ({kinds}) AND CAST(a.occurred_at AS DATE) >= CAST(:start AS DATE) - 14
          AND CAST(a.occurred_at AS DATE) <= :end""" for shift in (0, BLOCK_DAYS))  # noqa: S608
    with store.engine.connect() as conn, conn.begin():
        # open items by the one rule, summed per collector and currency, converted once per currency
        # (DECIMAL sums are exact: the same figures as converting each item)
        items, iparams = open_amounts_sql(filters, current=current_open_amounts(conn, end))
        frame = read_df(conn, f"""
    WITH items AS ({items}),
    owned AS (
        SELECT c.collector, COUNT(*) AS customers FROM customers c
        WHERE c.collector IS NOT NULL AND {conditions} GROUP BY c.collector
    ), {fx_at_sql("end")}, own_balances AS (
        SELECT c.collector, i.currency,
               SUM(CASE WHEN i.open_amount > 0 THEN i.open_amount ELSE 0 END) AS open_ar,
               SUM(CASE WHEN i.open_amount > 0 AND i.days_past_due > 0 THEN i.open_amount ELSE 0 END) AS overdue_ar
        FROM items i JOIN customers c ON c.customer_id = i.customer_id
        GROUP BY c.collector, i.currency
    ), balances AS (
        SELECT b.collector,
               SUM(b.open_ar * CASE WHEN b.currency = :reporting THEN 1 ELSE fx.rate END) AS open_ar,
               SUM(b.overdue_ar * CASE WHEN b.currency = :reporting THEN 1 ELSE fx.rate END) AS overdue_ar
        FROM own_balances b LEFT JOIN fx ON fx.currency = b.currency
        GROUP BY b.collector
    ), acts AS (
        SELECT a.author AS collector,
               SUM(CASE WHEN a.kind = 'call' THEN 1 ELSE 0 END) AS calls,
               SUM(CASE WHEN a.kind = 'email' THEN 1 ELSE 0 END) AS emails,
               SUM(CASE WHEN a.kind = 'note' THEN 1 ELSE 0 END) AS notes
        FROM activities a
        WHERE a.kind IN ({kinds}) AND CAST(a.occurred_at AS DATE) >= :start
          AND CAST(a.occurred_at AS DATE) <= :end{activity_filter}
        GROUP BY a.author
    ), promised AS (
        SELECT a.activity_id, a.author, a.customer_id, CAST(a.occurred_at AS DATE) AS promised_on, a.due_date,
               a.amount
        FROM activities a
        WHERE a.kind = 'promise' AND CAST(a.occurred_at AS DATE) >= :start
          AND CAST(a.occurred_at AS DATE) <= :end{activity_filter}
    ), promise_payments AS (
        -- per due promise, the customer's payments posted from the promise date to the promised date:
        -- a join, not a subquery per promise (PostgreSQL ran that as one ledger scan per promise)
        SELECT pm.activity_id, -SUM(p.amount) AS paid
        FROM promised pm
        JOIN ledger_entries p ON p.customer_id = pm.customer_id
        WHERE pm.due_date <= :end AND p.entry_type = 'payment'
          AND p.posting_date >= pm.promised_on AND p.posting_date <= pm.due_date
          AND p.posting_date >= :start AND p.posting_date <= :end
        GROUP BY pm.activity_id
    ), promises AS (
        SELECT pm.author AS collector, COUNT(*) AS promises,
               SUM(CASE WHEN pm.due_date <= :end THEN 1 ELSE 0 END) AS promises_due,
               SUM(CASE WHEN pm.due_date <= :end AND pm.amount <= COALESCE(pp.paid, 0) THEN 1 ELSE 0 END)
                   AS promises_kept
        FROM promised pm LEFT JOIN promise_payments pp ON pp.activity_id = pm.activity_id
        GROUP BY pm.author
    ), acted_blocks AS (
        {acted_blocks}
    ), credited AS (
        SELECT a.author AS collector, p.entry_id, p.currency, p.amount
        FROM ledger_entries p
        JOIN acted_blocks a ON a.customer_id = p.customer_id AND a.block = {_block("p.posting_date")}
        WHERE p.entry_type = 'payment' AND p.posting_date >= :start AND p.posting_date <= :end{payment_filter}
          AND p.posting_date - a.acted_on >= 0
          AND p.posting_date - a.acted_on <= 14
        GROUP BY a.author, p.entry_id, p.currency, p.amount
    ), collected AS (
        SELECT c.collector, SUM(-c.amount * CASE WHEN c.currency = :reporting THEN 1 ELSE fx.rate END) AS collected_14d
        FROM (SELECT collector, currency, SUM(amount) AS amount FROM credited GROUP BY collector, currency) c
        LEFT JOIN fx ON fx.currency = c.currency
        GROUP BY c.collector
    )
    SELECT o.collector, o.customers, b.open_ar, b.overdue_ar, a.calls, a.emails, a.notes,
           pr.promises, pr.promises_due, pr.promises_kept, co.collected_14d
    FROM owned o
    LEFT JOIN balances b ON b.collector = o.collector
    LEFT JOIN acts a ON a.collector = o.collector
    LEFT JOIN promises pr ON pr.collector = o.collector
    LEFT JOIN collected co ON co.collector = o.collector
    ORDER BY o.collector
    """, {**reporting_params(end), **params, **iparams, "start": start, "end": end})  # noqa: S608
    counts = ["customers", "calls", "emails", "notes", "promises", "promises_due", "promises_kept"]
    frame[counts] = frame[counts].fillna(0).astype(int)
    money = ["open_ar", "overdue_ar", "collected_14d"]
    frame[money] = frame[money].astype(float).fillna(0.0).round(2)
    days = working_days(start, end)
    frame["actions_per_day"] = ((frame["calls"] + frame["emails"] + frame["notes"]) / days).round(2) if days else np.nan
    due = frame["promises_due"].astype(float)
    frame["kept_pct"] = (frame["promises_kept"] / due.where(due != 0, np.nan) * 100).round(2)
    return frame[COLLECTOR_COLUMNS]
