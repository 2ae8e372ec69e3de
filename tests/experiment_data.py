"""A hand-made ledger for the experiment tests: six customers of segment 'smb' whose arms in experiment 1
are known in advance (bucket_of(1, id): K001 161 and K042 259 are below the 5% holdout's 500 buckets;
K003, K005 fall in the challenger's half of the rest, K002, K004 in the champion's), one 'enterprise'
customer outside it, two policies (1 Standard, 2 Firm early).

Every customer has one invoice of 1,000.00 posted S - 30, due S (S = 2026-03-01, the start): it enters
dunning on S + 1, under the customer's arm.
Payments (each applied to that invoice on its date):
  K002 100.00 on S - 5 (before entry: overdue at entry 900.00) and 200.00 on S + 5;
  K003 1,000.00 on S + 10 (paid in full, 10 days); K005 400.00 on S + 20;
  K004 300.00 on S + 31 (after the 30-day window: not counted); K001 500.00 on S + 3; K042 nothing.
So on S + 31: champion 200 / 1,900, challenger 1,400 / 2,000 = 0.70, holdout 500 / 2,000 = 0.25.
"""

from __future__ import annotations

from datetime import date, timedelta

from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, add_payment

S = date(2026, 3, 1)
AS_OF = S + timedelta(days=31)
HOLDOUT, CHALLENGER, CHAMPION = ("K001", "K042"), ("K003", "K005"), ("K002", "K004")
FIRM = [(1, "Early firm reminder", 1, "email", "reminder_firm")]


def build_experiment_ledger(store: Store) -> None:
    add_dunning_config(store, 1)
    add_dunning_config(store, 2, FIRM)
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE dunning_configs SET name = 'Firm early' WHERE config_id = 2")
    for cid in (*HOLDOUT, *CHALLENGER, *CHAMPION):
        add_customer(store, cid, segment="smb", contact=None)
    add_customer(store, "Z900", segment="enterprise", contact=None)
    invoices = {cid: add_invoice(store, cid, f"INV-{cid}", S - timedelta(days=30), S, 1000)
                for cid in (*HOLDOUT, *CHALLENGER, *CHAMPION, "Z900")}
    for cid, days, amount in (("K002", -5, 100), ("K002", 5, 200), ("K003", 10, 1000), ("K005", 20, 400),
                              ("K004", 31, 300), ("K001", 3, 500)):
        add_payment(store, cid, f"PAY-{cid}-{days}", S + timedelta(days=days), amount, invoices[cid])
