"""A stand-in for `analytics.portal.account` (helper PB's module, written in parallel): the shared
contract's functions, reading only `who`'s own invoices, recording calls, so the portal pages'
wiring (and the portal browser test) can run before PB's module is merged. Used ONLY when the real
module is missing (`install_if_missing`); never shipped.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from datetime import date, datetime

import pandas as pd

from analytics.collections.statements import statement_items, statement_pdf, statement_xlsx
from analytics.portal.identity import PortalCustomer
from analytics.store.connection import Store

DISPUTE_REASONS = ["Price or quantity wrong", "Goods not received", "Already paid", "Other"]
CALLS: list[tuple] = []
THREAD: list[dict] = []


class PortalError(ValueError):
    pass


def portal_invoices(store: Store, who: PortalCustomer, as_of: date | None = None) -> pd.DataFrame:
    frame = store.read(
        "SELECT e.document_number, e.posting_date, e.due_date, e.amount, COALESCE(e.open_now, e.amount) "
        "AS open_amount, e.currency, GREATEST(DATE '2026-10-31' - e.due_date, 0) AS days_overdue "
        "FROM ledger_entries e WHERE e.customer_id = :c AND e.entry_type = 'invoice' ORDER BY e.due_date",
        {"c": who.customer_id})
    frame["status"] = ["open" if a > 0 else "paid" for a in frame["open_amount"]]
    return frame


def _doc(store: Store, who: PortalCustomer, number: str) -> None:
    if number not in set(portal_invoices(store, who)["document_number"]):
        raise PortalError("no such invoice")


def portal_statement_pdf(store: Store, who: PortalCustomer, as_of: date | None = None) -> bytes:
    day = as_of or date(2026, 10, 31)
    return statement_pdf("Customer", who.customer_id, "USD", statement_items(store, who.customer_id, day), day)


def portal_statement_excel(store: Store, who: PortalCustomer, as_of: date | None = None) -> bytes:
    day = as_of or date(2026, 10, 31)
    return statement_xlsx("Customer", who.customer_id, "USD", statement_items(store, who.customer_id, day), day)


def portal_dispute(store, who, document_number, reason, amount, comment) -> int:  # noqa: ANN001
    _doc(store, who, document_number)
    CALLS.append(("dispute", who.customer_id, document_number, reason, amount, comment))
    return len(CALLS)


def portal_promise(store, who, document_numbers, amount, promised_date) -> int:  # noqa: ANN001
    for number in document_numbers:
        _doc(store, who, number)
    CALLS.append(("promise", who.customer_id, tuple(document_numbers), amount, promised_date))
    return len(CALLS)


def portal_remittance(store, who, document_numbers, paid_on, amount, reference) -> int:  # noqa: ANN001
    CALLS.append(("remittance", who.customer_id, tuple(document_numbers), paid_on, amount, reference))
    return len(CALLS)


def portal_thread(store: Store, who: PortalCustomer) -> pd.DataFrame:
    rows = [m for m in THREAD if m["customer_id"] == who.customer_id]
    return pd.DataFrame([{k: m[k] for k in ("at", "author", "body")} for m in rows], columns=["at", "author", "body"])


def portal_message(store: Store, who: PortalCustomer, body: str) -> int:
    if not body.strip():
        raise PortalError("Write a message first.")
    THREAD.append({"customer_id": who.customer_id, "at": datetime(2026, 10, 31, 9, 0), "author": "you", "body": body})
    return len(THREAD)


def install_if_missing() -> bool:
    """Register this module as `analytics.portal.account` when PB's is not there; True if it did."""
    import analytics.portal

    if "analytics.portal.account" in sys.modules or importlib.util.find_spec("analytics.portal.account"):
        return False
    module = sys.modules[__name__]
    assert isinstance(module, types.ModuleType)
    sys.modules["analytics.portal.account"] = module
    analytics.portal.account = module  # type: ignore[attr-defined]
    return True
