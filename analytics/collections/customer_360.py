"""Customer 360: one customer's numbers, aging, open invoices, ledger, contacts and one timeline.

Formulas (as of D, amounts in the customer's own currency):
- balance = sum of the customer's open items = open invoices − unapplied cash and credits (the
  open amounts of payments and credit notes not yet applied; `BALANCE_PARTS_SQL`, shared with the
  reminders); overdue = open invoice amounts with days past due > 0;
- own DSO = open invoices ÷ invoices posted in the 90 days to D × 90 (None without sales);
- average days late = amount-weighted mean of (allocation date − due date) over payments applied
  to the customer's invoices in the 365 days to D (negative: paid early).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

from analytics.collections.holds import disputed_sql, dunning_hold_sql
from analytics.collections.statements import statement_items
from analytics.kpis.aging import bucket_labels
from analytics.ledger.open_items import CUSTOMER_OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store

HISTORY_DAYS = 365
DSO_DAYS = 90

# The balance and its parts over an `items` relation (open amounts as of D): one definition for the
# Customer 360 header and the reminders' balance line.
BALANCE_PARTS_SQL = """COALESCE(SUM(open_amount), 0) AS balance,
       COALESCE(SUM(CASE WHEN open_amount > 0 THEN open_amount ELSE 0 END), 0) AS open_invoices_amount,
       COALESCE(SUM(CASE WHEN open_amount < 0 THEN -open_amount ELSE 0 END), 0) AS unapplied"""


def balance_line(balance: float, open_invoices_amount: float, unapplied: float, currency: str) -> str:
    """One line that explains the balance: "Balance X = open invoices Y − unapplied cash/credits Z"."""
    return (f"Balance {balance:,.2f} {currency} = open invoices {open_invoices_amount:,.2f} {currency} "
            f"− unapplied cash/credits {unapplied:,.2f} {currency}")


# Amount-weighted average days late per customer over the history window (used by the worklist too):
# each payment's days late is max(paid - due, 0), as the README defines days late; an early payment
# counts as on time, never as negative lateness.
AVG_DAYS_LATE_SQL = """
SELECT i.customer_id,
       SUM(CAST(a.amount AS DOUBLE PRECISION) * GREATEST(a.allocation_date - i.due_date, 0))
         / NULLIF(SUM(CAST(a.amount AS DOUBLE PRECISION)), 0) AS avg_days_late
FROM allocations a JOIN ledger_entries i ON i.entry_id = a.to_entry_id
WHERE a.allocation_date <= :as_of AND a.allocation_date > :history_start AND i.due_date IS NOT NULL
GROUP BY i.customer_id
"""


def _params(as_of: date, **extra: Any) -> dict[str, Any]:
    return {"as_of": as_of, "reporting": load_settings().reporting_currency,
            "history_start": as_of - timedelta(days=HISTORY_DAYS), **extra}


def find_customers(store: Store, text: str, limit: int = 25) -> pd.DataFrame:
    """Customers whose id or name contains `text` (case-insensitive), by name."""
    return store.read(
        "SELECT customer_id, name, segment, status, collector FROM customers "
        "WHERE LOWER(name) LIKE :q OR LOWER(customer_id) LIKE :q ORDER BY name LIMIT :limit",
        {"q": f"%{text.strip().lower()}%", "limit": limit})


def customer_header(store: Store, customer_id: str, as_of: date) -> dict[str, Any] | None:
    """The numbers at the top of the 360 (see module docstring), or None for an unknown customer."""
    sql = f"""
    WITH mine AS ({CUSTOMER_OPEN_ITEMS_SQL}),
    history AS ({AVG_DAYS_LATE_SQL.replace("GROUP BY", "AND i.customer_id = :customer_id GROUP BY")})
    SELECT c.customer_id, c.name, c.segment, c.country, c.currency, c.payment_terms_days, c.credit_limit,
           c.status, c.collector, c.sales_rep, c.risk_class,
           bp.balance, bp.open_invoices_amount, bp.unapplied,
           (SELECT COALESCE(SUM(open_amount), 0) FROM mine WHERE open_amount > 0 AND days_past_due > 0) AS overdue,
           (SELECT COUNT(*) FROM mine WHERE open_amount > 0) AS open_invoices,
           (SELECT MAX(days_past_due) FROM mine WHERE open_amount > 0) AS max_days_past_due,
           (SELECT SUM(amount) FROM ledger_entries e WHERE e.customer_id = c.customer_id AND e.amount > 0
              AND e.entry_type = 'invoice' AND e.posting_date > :dso_start AND e.posting_date <= :as_of) AS sales_90d,
           h.avg_days_late
    FROM customers c LEFT JOIN history h ON h.customer_id = c.customer_id
    CROSS JOIN (SELECT {BALANCE_PARTS_SQL} FROM mine) bp
    WHERE c.customer_id = :customer_id
    """  # noqa: S608 - composed from constants only
    frame = store.read(sql, _params(as_of, customer_id=customer_id, dso_start=as_of - timedelta(days=DSO_DAYS)))
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    sales = row.pop("sales_90d")
    row["dso"] = (round(float(row["open_invoices_amount"]) / float(sales) * DSO_DAYS, 1)
                  if sales is not None and not pd.isna(sales) and float(sales) > 0 else None)
    late = row["avg_days_late"]
    row["avg_days_late"] = None if late is None or pd.isna(late) else round(float(late), 1)
    for key in ("balance", "overdue", "open_invoices_amount", "unapplied"):
        row[key] = round(float(row[key]), 2)
    row["credit_limit"] = None if pd.isna(row["credit_limit"]) else float(row["credit_limit"])
    row["open_invoices"] = int(row["open_invoices"])
    row["max_days_past_due"] = None if pd.isna(row["max_days_past_due"]) else int(row["max_days_past_due"])
    return row


def customer_aging(store: Store, customer_id: str, as_of: date) -> pd.DataFrame:
    """Open invoice amounts per aging bucket (edges from settings `[reporting] aging_edges`)."""
    edges = load_settings().aging_edges
    items = statement_items(store, customer_id, as_of)
    labels = bucket_labels("due")  # the one definition of the buckets and their labels
    dpd = items["days_overdue"]
    bucket = pd.cut(dpd, bins=[-1, 0, *edges, 10**9], labels=labels)
    grouped = items.assign(bucket=bucket).groupby("bucket", observed=False)["open_amount"].agg(["sum", "count"])
    return pd.DataFrame({"bucket": labels, "amount": [round(float(grouped.loc[b, "sum"]), 2) for b in labels],
                         "invoices": [int(grouped.loc[b, "count"]) for b in labels]})


def open_invoices(store: Store, customer_id: str, as_of: date) -> pd.DataFrame:
    """Open invoices as of D with days overdue, whether a dispute open as of D covers them, and
    whether dunning holds them (disputed or paused by a promise: `collections.holds`)."""
    items = statement_items(store, customer_id, as_of)
    sql = f"""
    SELECT e.entry_id, CASE WHEN {disputed_sql('e.entry_id', 'e.customer_id')} THEN 1 ELSE 0 END AS disputed,
           CASE WHEN {dunning_hold_sql('e.entry_id', 'e.customer_id')} THEN 1 ELSE 0 END AS held
    FROM ledger_entries e WHERE e.customer_id = :c AND e.amount > 0
    """  # noqa: S608 - composed from constants only
    flags = store.read(sql, {"c": customer_id, "as_of": as_of})
    flags = flags.set_index("entry_id")
    items["disputed"] = items["entry_id"].map(flags["disputed"]).fillna(0).astype(bool)
    items["held"] = items["entry_id"].map(flags["held"]).fillna(0).astype(bool)
    return items


def customer_ledger(store: Store, customer_id: str) -> pd.DataFrame:
    """Every ledger entry of the customer, newest first, with the amount applied to or from it."""
    return store.read("""
        SELECT e.entry_id, e.entry_type, e.document_number, e.posting_date, e.due_date, e.amount, e.currency,
               COALESCE((SELECT SUM(a.amount) FROM allocations a
                         WHERE a.to_entry_id = e.entry_id OR a.from_entry_id = e.entry_id), 0) AS applied,
               e.reference, e.source
        FROM ledger_entries e WHERE e.customer_id = :c
        ORDER BY e.posting_date DESC, e.entry_id DESC
    """, {"c": customer_id})


def timeline(store: Store, customer_id: str, limit: int = 500) -> pd.DataFrame:
    """Every activity from every team, dunning runs, outbox messages not (yet) sent, and every request
    between departments (kind 'request': its type as the outcome, its owner as the target): newest first.

    Sent messages appear once, as the `email` activity their delivery wrote.
    """
    return store.read("""
        SELECT * FROM (
            SELECT occurred_at, kind, author, department, subject, body, outcome, amount, due_date,
                   status, reason, target, activity_id, entry_id
            FROM activities WHERE customer_id = :c
            UNION ALL
            SELECT CAST(r.run_date AS TIMESTAMP), 'dunning', 'system', 'collections',
                   'Dunning stage ' || CAST(r.stage_no AS VARCHAR) || ' for ' || COALESCE(e.document_number, '?'),
                   NULL, r.outcome, NULL, NULL, NULL, NULL, NULL, NULL, r.entry_id
            FROM dunning_runs r LEFT JOIN ledger_entries e ON e.entry_id = r.entry_id WHERE r.customer_id = :c
            UNION ALL
            SELECT created_at, 'message', created_by, NULL, subject, NULL, status, NULL, NULL, status,
                   last_error, to_address, NULL, NULL
            FROM messages WHERE customer_id = :c AND status <> 'sent'
            UNION ALL
            SELECT raised_at, 'request', raised_by, department,
                   'Request #' || CAST(request_id AS VARCHAR) || ': ' || subject, details, REPLACE(request_type, '_', ' '), NULL, due_date, status, resolution_note, owner, NULL, NULL
            FROM requests WHERE customer_id = :c
        ) t ORDER BY occurred_at DESC LIMIT :limit
    """, {"c": customer_id, "limit": limit})
