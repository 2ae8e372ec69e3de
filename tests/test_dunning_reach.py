"""Which customers with invoices past due dunning reaches: a policy and a contact to email, by hand.

A fresh store with a team's own ledger has no policy, so `dunning due` finds nothing; the team is
told how many overdue customers (and how much) follow no policy, and what to do.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from analytics.collections.dunning_schedule import due_stages, dunning_reach, unreached_note
from analytics.store.connection import Store
from tests.collector_data import add_customer, add_dunning_config, add_invoice, add_payment, setup_people

D = date(2026, 3, 31)


def _reach(store: Store, as_of: date = D) -> dict[str, tuple[int, int, float]]:
    frame = dunning_reach(store, as_of)
    return {r.reach: (r.customers, r.invoices, round(r.overdue_ar, 2)) for r in frame.itertuples()}


def _ledger(store: Store) -> None:
    """C1 (an AP contact): 100 ten days past due and 50 not yet due; C2 (no contact): 200 and 20 past due;
    C3 with an agency: 300 past due; C4: 400 due tomorrow; C5 (a bounced contact): 500 past due;
    C6: 600 past due, paid in full on D."""
    setup_people(store)
    for cid, contact, status in (("C1", "ap", "active"), ("C2", None, "active"), ("C3", "ap", "with_agency"),
                                 ("C4", "ap", "active"), ("C5", "ap", "active"), ("C6", "ap", "active")):
        add_customer(store, cid, contact=contact, status=status, config_id=None)
    add_invoice(store, "C1", "I1", D - timedelta(days=40), D - timedelta(days=10), 100)
    add_invoice(store, "C1", "I1b", D - timedelta(days=5), D + timedelta(days=25), 50)
    add_invoice(store, "C2", "I2", D - timedelta(days=40), D - timedelta(days=10), 200)
    add_invoice(store, "C2", "I2b", D - timedelta(days=31), D - timedelta(days=1), 20)
    add_invoice(store, "C3", "I3", D - timedelta(days=90), D - timedelta(days=60), 300)
    add_invoice(store, "C4", "I4", D - timedelta(days=29), D + timedelta(days=1), 400)
    add_invoice(store, "C5", "I5", D - timedelta(days=40), D - timedelta(days=1), 500)
    paid = add_invoice(store, "C6", "I6", D - timedelta(days=40), D - timedelta(days=10), 600)
    add_payment(store, "C6", "P6", D, 600, invoice_id=paid)
    with store.write() as conn:
        conn.execute(sa.text("UPDATE contacts SET bounced_at = :t WHERE customer_id = 'C5'"), {"t": datetime(2026, 3, 1)})


def test_without_a_policy_every_overdue_customer_is_unreached_and_the_team_is_told_why(store: Store) -> None:
    _ledger(store)
    assert due_stages(store, D).empty
    assert _reach(store) == {"no_policy": (3, 4, 820.0), "not_dunned": (1, 1, 300.0)}
    assert unreached_note(dunning_reach(store, D), "USD") == (
        "Of 4 customer(s) with invoices past due, 3 on no dunning policy (820.00 USD past due); 1 not dunned "
        "(with an agency, written off, on hold, or an experiment's holdout) (300.00 USD past due). To dun "
        "them: create a policy (Dunning policies in the app, or `ardesk policies apply FILE`), give segments a "
        "policy (`ardesk segments apply FILE`), or adopt an imported dunning history (`ardesk dunning adopt NAME`).")


def test_a_default_policy_reaches_them_and_a_customer_without_a_usable_email_is_named(store: Store) -> None:
    _ledger(store)
    add_dunning_config(store)  # active, for every segment
    assert _reach(store) == {"policy": (1, 1, 100.0), "policy_no_email": (2, 3, 720.0), "not_dunned": (1, 1, 300.0)}
    assert list(dunning_reach(store, D)["reach"]) == ["policy", "policy_no_email", "not_dunned"]
    assert unreached_note(dunning_reach(store, D), "USD").endswith(
        "To dun them: import contacts (`ardesk import contacts FILE`) or add them on the Customer 360.")
    assert set(due_stages(store, D)["customer_id"]) == {"C1", "C2", "C5"}  # a stage is due; email needs a contact


def test_customers_kept_out_of_dunning_on_purpose_are_counted_with_no_advice(store: Store) -> None:
    setup_people(store)
    add_dunning_config(store)
    add_customer(store, "C1", status="on_hold")
    add_invoice(store, "C1", "I1", D - timedelta(days=40), D - timedelta(days=10), 100)
    assert unreached_note(dunning_reach(store, D), "USD") == (
        "Of 1 customer(s) with invoices past due, 1 not dunned (with an agency, written off, on hold, or an "
        "experiment's holdout) (100.00 USD past due).")


def test_everyone_reached_or_nobody_overdue_needs_no_note(store: Store) -> None:
    setup_people(store)
    add_dunning_config(store)
    assert dunning_reach(store, D).empty and unreached_note(dunning_reach(store, D), "USD") is None
    add_customer(store, "C1")
    add_invoice(store, "C1", "I1", D - timedelta(days=40), D - timedelta(days=10), 100)
    assert _reach(store) == {"policy": (1, 1, 100.0)}
    assert unreached_note(dunning_reach(store, D), "USD") is None
    assert _reach(store, D - timedelta(days=11)) == {}  # not yet due then: a past date reproduces the past

