"""Who a customer's message goes to (the contact chosen by role, then primary), which of its
invoices are open as of a date (and which of them a dispute or a promise holds), and its balance
in parts; read as frames with an expanding `:ids` list, Decimals as floats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.collections.customer_360 import BALANCE_PARTS_SQL
from analytics.collections.holds import dunning_hold_sql
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store


def ids_statement(sql: str) -> sa.TextClause:
    """The SQL with its `:ids` parameter bound as a list (IN :ids)."""
    return sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))


def read_frame(conn: sa.Connection, stmt: sa.TextClause, params: dict[str, Any]) -> pd.DataFrame:
    """The statement's rows as a frame, Decimal columns as floats."""
    result = conn.execute(stmt, params)
    frame = pd.DataFrame(result.mappings().all(), columns=list(result.keys()))
    for col in frame.columns:
        if frame[col].map(lambda v: type(v).__name__ == "Decimal").any():
            frame[col] = frame[col].astype(float)
    return frame


# A contact a message can go to: active, with an email of the form x@y that has not bounced.
EMAILABLE_CONTACT = "active AND email LIKE '%_@_%' AND bounced_at IS NULL"

RECIPIENTS_SQL = """
SELECT c.customer_id, c.name AS customer_name, c.currency, c.status,
       ct.contact_id, ct.name AS contact_name, ct.email
FROM customers c
LEFT JOIN (
    SELECT contact_id, customer_id, name, email,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY
               CASE WHEN role = 'accounts_payable' THEN 0 ELSE 1 END,
               CASE WHEN is_primary THEN 0 ELSE 1 END, contact_id) AS rn
    FROM contacts WHERE {EMAILABLE_CONTACT}
) ct ON ct.customer_id = c.customer_id AND ct.rn = 1
WHERE c.customer_id IN :ids
ORDER BY c.customer_id
""".replace("{EMAILABLE_CONTACT}", EMAILABLE_CONTACT)


def recipients(store: Store, customer_ids: Sequence[str]) -> pd.DataFrame:
    """Who each customer's message goes to: the active accounts-payable contact with an email that
    has not bounced, else the primary contact with one, else any contact with one (email None:
    nobody usable)."""
    if not customer_ids:
        return pd.DataFrame(columns=["customer_id", "customer_name", "currency", "status",
                                     "contact_id", "contact_name", "email"])
    with store.engine.connect() as conn:
        return read_frame(conn, ids_statement(RECIPIENTS_SQL), {"ids": list(customer_ids)})


def open_invoices(conn: sa.Connection, customer_ids: Sequence[str], as_of: date) -> pd.DataFrame:
    """The customers' invoices with an open amount as of the date, oldest due first, with days overdue
    and `held` (1 when a dispute or a promise that pauses dunning holds it, with what is known now:
    `collections.holds`)."""
    sql = f"""
    WITH items AS ({OPEN_ITEMS_SQL})
    SELECT customer_id, entry_id, document_number, posting_date, due_date, amount, open_amount,
           CASE WHEN days_past_due > 0 THEN days_past_due ELSE 0 END AS days_overdue,
           CASE WHEN {dunning_hold_sql("items.entry_id", "items.customer_id", known_now=True)} THEN 1 ELSE 0 END
             AS held
    FROM items WHERE open_amount > 0 AND customer_id IN :ids
    ORDER BY customer_id, due_date, document_number
    """  # noqa: S608 - composed from constants only
    params = {"as_of": as_of, "reporting": load_settings().reporting_currency, "ids": list(customer_ids)}
    return read_frame(conn, ids_statement(sql), params)


def balance_parts(conn: sa.Connection, customer_ids: Sequence[str], as_of: date) -> pd.DataFrame:
    """Per customer, the balance and its parts as of the date, in its own currency: the same
    definition as the Customer 360 header (`customer_360.BALANCE_PARTS_SQL`)."""
    sql = f"""
    WITH items AS ({OPEN_ITEMS_SQL})
    SELECT customer_id, {BALANCE_PARTS_SQL} FROM items WHERE customer_id IN :ids GROUP BY customer_id
    """  # noqa: S608 - composed from constants only
    params = {"as_of": as_of, "reporting": load_settings().reporting_currency, "ids": list(customer_ids)}
    return read_frame(conn, ids_statement(sql), params)
