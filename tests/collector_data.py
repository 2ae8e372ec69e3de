"""A tiny builder of hand-computed collector data: customers, contacts, invoices, payments, dunning."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from analytics.access.roles import SYSTEM
from analytics.access.users import add_user
from analytics.ledger.monthly_summaries import drop_monthly_summaries
from analytics.ledger.settlement import refresh_settled_on
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import Store
from analytics.store.ids import reserve_ids
from analytics.store.schema import ALLOCATION_IDS, ENTRY_IDS

STAGES = [
    (1, "Friendly reminder", 1, "email", "reminder_friendly"),
    (2, "Firm reminder", 15, "email", "reminder_firm"),
    (3, "Final notice", 30, "email", "final_notice"),
]


def setup_people(store: Store) -> None:
    add_user(store, SYSTEM, "ana.collector", "Ana Collector", "collector", email="ana@ardesk.example",
             team="collections")
    add_user(store, SYSTEM, "ben.collector", "Ben Collector", "collector", team="collections")
    add_user(store, SYSTEM, "sam.sales", "Sam Sales", "sales", team="sales")
    add_user(store, SYSTEM, "val.viewer", "Val Viewer", "viewer")


def add_dunning_config(store: Store, config_id: int = 1, stages: list[tuple] = STAGES, grace_days: int = 0,
                       mode: str = "manual") -> None:
    """A dunning configuration; a stage tuple may carry its own mode as a sixth item."""
    with store.write() as conn:
        conn.execute(sa.text(
            "INSERT INTO dunning_configs (config_id, version, name, segment, grace_days, active, created_at) "
            "VALUES (:c, 1, 'Standard', NULL, :g, TRUE, :now)"), {"c": config_id, "g": grace_days, "now": datetime.now()})
        for no, name, offset, channel, template, *own_mode in stages:
            conn.execute(sa.text(
                "INSERT INTO dunning_stages (config_id, version, stage_no, name, day_offset, channel, template, mode) "
                "VALUES (:c, 1, :n, :name, :o, :ch, :t, :mode)"),
                {"c": config_id, "n": no, "name": name, "o": offset, "ch": channel, "t": template,
                 "mode": own_mode[0] if own_mode else mode})


def add_customer(store: Store, customer_id: str, *, name: str | None = None, collector: str = "ana.collector",
                 segment: str = "mid-market", status: str = "active", currency: str = "USD",
                 contact: str | None = "ap", config_id: int | None = 1) -> None:
    """contact: 'ap' (an accounts-payable contact with email), 'other' (purchasing, with email), None."""
    with store.write() as conn:
        conn.execute(sa.text(
            "INSERT INTO customers (customer_id, name, segment, currency, payment_terms_days, credit_limit, status, "
            "collector, sales_rep, dunning_config_id, created_at) VALUES (:id, :name, :seg, :cur, 30, 50000, :st, "
            ":col, 'sam.sales', :cfg, :now)"),
            {"id": customer_id, "name": name or f"Customer {customer_id}", "seg": segment, "cur": currency,
             "st": status, "col": collector, "cfg": config_id, "now": datetime.now()})
        if contact:
            conn.execute(sa.text(
                "INSERT INTO contacts (customer_id, name, email, role, is_primary, active) "
                "VALUES (:id, :name, :email, :role, TRUE, TRUE)"),
                {"id": customer_id, "name": f"Pat {customer_id}", "email": f"ap@{customer_id.lower()}.example",
                 "role": "accounts_payable" if contact == "ap" else "purchasing"})


def add_invoice(store: Store, customer_id: str, document: str, posting: date, due: date, amount: float) -> int:
    with store.write() as conn:
        entry_id = reserve_ids(conn, ENTRY_IDS, 1)
        conn.execute(sa.text(
            "INSERT INTO ledger_entries (entry_id, customer_id, entry_type, document_number, posting_date, due_date, "
            "amount, currency) VALUES (:e, :c, 'invoice', :d, :p, :due, :a, 'USD')"),
            {"e": entry_id, "c": customer_id, "d": document, "p": posting, "due": due, "a": amount})
        drop_monthly_summaries(conn)
    return entry_id


def add_payment(store: Store, customer_id: str, document: str, paid_on: date, amount: float,
                invoice_id: int | None = None) -> int:
    """A payment of `amount` (> 0) on a date, applied to `invoice_id` on that date when given."""
    with store.write() as conn:
        entry_id = reserve_ids(conn, ENTRY_IDS, 1)
        conn.execute(sa.text(
            "INSERT INTO ledger_entries (entry_id, customer_id, entry_type, document_number, posting_date, "
            "amount, currency) VALUES (:e, :c, 'payment', :d, :p, :a, 'USD')"),
            {"e": entry_id, "c": customer_id, "d": document, "p": paid_on, "a": -amount})
        if invoice_id is not None:
            conn.execute(sa.text(
                "INSERT INTO allocations (allocation_id, customer_id, from_entry_id, to_entry_id, amount, "
                "allocation_date) VALUES (:id, :c, :f, :t, :a, :d)"),
                {"id": reserve_ids(conn, ALLOCATION_IDS, 1), "c": customer_id, "f": entry_id,
                 "t": invoice_id, "a": amount, "d": paid_on})
            refresh_settled_on(conn, entry_ids=[entry_id, invoice_id])
            refresh_stage_results(conn, entry_ids=[entry_id, invoice_id])
        drop_monthly_summaries(conn)
    return entry_id


def overdue_customers(store: Store, n: int, today: date) -> list[str]:
    """`n` customers C001.. of ana.collector, each with an AP contact and one invoice 10 days overdue
    (1,000 + i), under the standard dunning configuration."""
    setup_people(store)
    add_dunning_config(store)
    ids = []
    for i in range(1, n + 1):
        cid = f"C{i:03d}"
        add_customer(store, cid, name=f"Acme {i:03d}")
        add_invoice(store, cid, f"INV-{i:03d}", today - timedelta(days=40), today - timedelta(days=10), 1000 + i)
        ids.append(cid)
    return ids
