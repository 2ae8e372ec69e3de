"""What a customer sees and does in the portal: its own invoices, statement, disputes, promises,
payments ("I have paid") and messages, and the collector's reply.

Isolation rule: every function takes the `PortalCustomer` of the session (never a customer id) and
reads or writes only that customer's rows. An invoice is named by its document number and must be a
debit of that customer; any other number (another customer's included) is refused with "no such
invoice", the same words whether or not it exists elsewhere, so nothing of another customer leaks.

The writes are the collector's own follow-ups, made as `portal_actor(who)` (role 'portal',
permission portal_self_service; the engine also refuses a portal actor any other customer) and
audited as `portal:<customer id>`:
- a dispute (`followups.open_dispute`): reason from DISPUTE_REASONS, routed to the department that
  owns it (DISPUTE_DEPARTMENTS); amount at most the invoices' open amount; it holds the invoices out
  of dunning (`collections.holds`) and is the collector's worklist item 'portal_dispute' at once;
- a promise to pay (`followups.promise_to_pay`, pausing dunning until the date + 1 day);
- a remittance advice (kind 'remittance'): paid on, amount, reference (`reason`), invoices; it
  pauses their reminders until paid on + `[portal] remittance_pause_days` (`due_date`) and is the
  worklist item 'expected_payment';
- a message (kind 'portal_message', `outcome` 'in'), the worklist item 'portal_message'; the reply
  from the Customer 360 (`reply_to_portal`, role act_on_customers) has `outcome` 'out'.

Invoice status (`portal_invoices`): paid (nothing open as of D), else disputed (an open dispute
covers it), promised (a pending promise covers it, its date not passed as of D), remitted (a remittance pause runs as of D),
else open; what is known now counts, like the reminders' re-check (`holds`, known_now).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor, require
from analytics.collections import followups
from analytics.collections.followups import FollowUpError
from analytics.collections.holds import covers_invoice_sql, disputed_sql, paused_remittance_sql
from analytics.collections.letterhead import Letterhead
from analytics.collections.statements import statement_items, statement_pdf, statement_xlsx
from analytics.collections.worklist import default_as_of
from analytics.ledger.open_items import CUSTOMER_OPEN_ITEMS_SQL
from analytics.portal.identity import PortalCustomer, portal_actor
from analytics.settings import load_settings, portal_days
from analytics.store.connection import Store

# The reasons the portal's dispute form offers, and the department each goes to.
DISPUTE_DEPARTMENTS = {
    "Price differs from the order or contract": "sales",
    "Goods or service not received": "logistics",
    "Wrong quantity delivered": "logistics",
    "Goods damaged or faulty": "quality",
    "Invoice details wrong (address, tax, PO number)": "billing",
    "Already paid": "collections",
    "Other": "collections",
}
DISPUTE_REASONS = tuple(DISPUTE_DEPARTMENTS)
INVOICE_COLUMNS = ["document_number", "posting_date", "due_date", "amount", "open_amount", "currency",
                   "days_overdue", "status"]
THREAD_COLUMNS = ["at", "author", "body"]
MAX_PAID_DAYS_AGO = 366
MAX_REFERENCE = 100
MAX_MESSAGE = 4000


class PortalError(ValueError):
    """Bad input from the portal, saying why (never revealing another customer's data)."""


def _as_of(store: Store, as_of: date | None) -> date:
    return as_of or default_as_of(store)


INVOICES_SQL = f"""
WITH items AS ({CUSTOMER_OPEN_ITEMS_SQL}),
open_by_invoice AS (
    SELECT entry_id, SUM(open_amount) AS open_amount, MAX(days_past_due) AS days_past_due
    FROM items WHERE open_amount > 0 GROUP BY entry_id
)
SELECT e.entry_id, e.document_number, e.posting_date, COALESCE(e.due_date, e.posting_date) AS due_date,
       e.amount, COALESCE(o.open_amount, 0) AS open_amount, e.currency,
       CASE WHEN o.days_past_due > 0 THEN o.days_past_due ELSE 0 END AS days_overdue,
       CASE WHEN o.entry_id IS NULL THEN 'paid'
            WHEN {disputed_sql('e.entry_id', 'e.customer_id', known_now=True)} THEN 'disputed'
            WHEN EXISTS (SELECT 1 FROM activities p WHERE p.customer_id = e.customer_id
                         AND p.kind = 'promise' AND p.status = 'pending' AND :as_of <= p.due_date
                         AND {covers_invoice_sql('p', 'e.entry_id')}) THEN 'promised'
            WHEN EXISTS (SELECT 1 FROM activities r WHERE r.customer_id = e.customer_id
                         AND {paused_remittance_sql('r', known_now=True)}
                         AND {covers_invoice_sql('r', 'e.entry_id')}) THEN 'remitted'
            ELSE 'open' END AS status
FROM ledger_entries e
LEFT JOIN open_by_invoice o ON o.entry_id = e.entry_id
WHERE e.customer_id = :customer_id AND e.amount > 0 AND e.posting_date <= :as_of
ORDER BY CASE WHEN o.entry_id IS NULL THEN 1 ELSE 0 END, due_date, e.document_number
"""  # noqa: S608 - composed from constants only


def _invoices(store: Store, who: PortalCustomer, as_of: date) -> pd.DataFrame:
    frame = store.read(INVOICES_SQL, {"customer_id": who.customer_id, "as_of": as_of,
                                      "reporting": load_settings().reporting_currency})
    for col in ("posting_date", "due_date"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    frame["amount"] = frame["amount"].astype(float).round(2)
    frame["open_amount"] = frame["open_amount"].astype(float).round(2)
    frame["days_overdue"] = frame["days_overdue"].astype(int)
    return frame


def portal_invoices(store: Store, who: PortalCustomer, as_of: date | None = None) -> pd.DataFrame:
    """The customer's invoices (every debit posted by D): open ones first by due date, then paid
    ones; status per the module rule. Columns: INVOICE_COLUMNS."""
    return _invoices(store, who, _as_of(store, as_of))[INVOICE_COLUMNS]


def _statement(store: Store, who: PortalCustomer, as_of: date | None) -> tuple[str, str, pd.DataFrame, date]:
    day = _as_of(store, as_of)
    head = store.read("SELECT name, currency FROM customers WHERE customer_id = :c", {"c": who.customer_id})
    if head.empty:
        raise PortalError("This portal link names no customer; ask for a new link.")
    return str(head["name"].iloc[0]), str(head["currency"].iloc[0]), statement_items(store, who.customer_id, day), day


def portal_statement_pdf(store: Store, who: PortalCustomer, as_of: date | None = None) -> bytes:
    """The statement of open items as a PDF: the one the collector sends (`collections.statements`)."""
    name, currency, items, day = _statement(store, who, as_of)
    return statement_pdf(name, who.customer_id, currency, items, day, letterhead=Letterhead.from_settings())


def portal_statement_excel(store: Store, who: PortalCustomer, as_of: date | None = None) -> bytes:
    """The statement of open items as an Excel workbook (`collections.statements`)."""
    name, currency, items, day = _statement(store, who, as_of)
    return statement_xlsx(name, who.customer_id, currency, items, day)


def _own_invoices(store: Store, who: PortalCustomer, document_numbers: Sequence[str] | str,
                  required: bool = True) -> pd.DataFrame:
    """The customer's invoices with these document numbers (entry_id, document_number, open_now);
    PortalError "no such invoice" for any number that is not one of its invoices."""
    numbers = [document_numbers] if isinstance(document_numbers, str) else list(document_numbers or ())
    numbers = list(dict.fromkeys(str(n).strip() for n in numbers if str(n).strip()))
    if not numbers:
        if required:
            raise PortalError("invoices: choose at least one invoice.")
        return pd.DataFrame(columns=["entry_id", "document_number", "open_now"])
    stmt = sa.text("SELECT entry_id, document_number, COALESCE(open_now, amount) AS open_now FROM ledger_entries "
                   "WHERE customer_id = :c AND amount > 0 AND document_number IN :docs").bindparams(
        sa.bindparam("docs", expanding=True))
    with store.engine.connect() as conn:
        found = pd.DataFrame(conn.execute(stmt, {"c": who.customer_id, "docs": numbers}).mappings().all(),
                             columns=["entry_id", "document_number", "open_now"])
    missing = [n for n in numbers if n not in set(found["document_number"])]
    if missing:
        raise PortalError(f"invoice {missing[0]!r}: no such invoice.")
    return found


def _write(action: Any) -> int:
    """Run a follow-up write, turning its validation error into a PortalError with the same reason."""
    try:
        return int(action())
    except FollowUpError as exc:
        raise PortalError(str(exc)) from exc


def _today(today: date | None) -> date:
    return today or date.today()


def portal_dispute(store: Store, who: PortalCustomer, document_number: str, reason: str, amount: float | None,
                   comment: str = "", *, idempotency_key: str | None = None) -> int:
    """Dispute one of the customer's open invoices (reason from DISPUTE_REASONS, routed to its
    department; amount 0 < amount <= the open amount, None: all of it); returns the activity id."""
    if reason not in DISPUTE_DEPARTMENTS:
        raise PortalError(f"reason {reason!r}: choose one of {', '.join(DISPUTE_REASONS)}.")
    invoice = _own_invoices(store, who, [document_number])
    open_now = round(float(invoice["open_now"].sum()), 2)
    if open_now <= 0:
        raise PortalError(f"invoice {document_number!r}: it is paid; there is nothing open to dispute.")
    if amount is not None and round(float(amount), 2) > open_now:
        raise PortalError(f"amount {float(amount):,.2f}: more than the invoice's open amount {open_now:,.2f}.")
    return _write(lambda: followups.open_dispute(
        store, portal_actor(who, store), who.customer_id, reason, amount, DISPUTE_DEPARTMENTS[reason],
        entry_ids=[int(e) for e in invoice["entry_id"]], note=comment, idempotency_key=idempotency_key))


def portal_promise(store: Store, who: PortalCustomer, document_numbers: Sequence[str], amount: float | None,
                   promised_date: date, *, today: date | None = None, idempotency_key: str | None = None) -> int:
    """Promise to pay `amount` by `promised_date` for these invoices (none: the whole account, amount
    then required); it pauses their reminders until the date + 1 day. Returns the activity id."""
    invoices = _own_invoices(store, who, document_numbers, required=False)
    return _write(lambda: followups.promise_to_pay(
        store, portal_actor(who, store), who.customer_id, amount, promised_date,
        entry_ids=[int(e) for e in invoices["entry_id"]], pauses_dunning=True, today=_today(today),
        idempotency_key=idempotency_key))


def portal_remittance(store: Store, who: PortalCustomer, document_numbers: Sequence[str], paid_on: date,
                      amount: float, reference: str = "", *, today: date | None = None,
                      idempotency_key: str | None = None) -> int:
    """"I have paid": a remittance advice for these invoices (at least one), paid on a date within
    the last 366 days and not after today; reminders for them pause until paid_on + `[portal]
    remittance_pause_days`. Returns the activity id."""
    day = _today(today)
    if not isinstance(paid_on, date) or not day - timedelta(days=MAX_PAID_DAYS_AGO) <= paid_on <= day:
        raise PortalError(f"paid on {paid_on}: must be a date from {day - timedelta(days=MAX_PAID_DAYS_AGO)} "
                          f"to {day} (today).")
    try:
        value = round(float(amount), 2)
    except (TypeError, ValueError):
        raise PortalError(f"amount {amount!r}: must be a number greater than 0.") from None
    if not value > 0:
        raise PortalError(f"amount {value!r}: must be greater than 0.")
    ref = (reference or "").strip()
    if len(ref) > MAX_REFERENCE:
        raise PortalError(f"reference: at most {MAX_REFERENCE} characters (got {len(ref)}).")
    invoices = _own_invoices(store, who, document_numbers)
    entry_ids = [int(e) for e in invoices["entry_id"]]
    documents = ", ".join(sorted(invoices["document_number"]))
    resumes = paid_on + timedelta(days=portal_days("remittance_pause_days"))
    fields = {"amount": value, "due_date": resumes, "paid_on": paid_on, "reason": ref or None,
              "entry_id": entry_ids[0], "whole_account": False, "department": "collections",
              "subject": (f"Paid {value:,.2f} on {paid_on} for {documents}"
                          + (f" (reference {ref})" if ref else ""))[:200]}
    return _write(lambda: followups.record_activity(
        store, portal_actor(who, store), "portal_self_service", who.customer_id, "remittance", fields,
        idempotency_key, also=followups._link_invoices(entry_ids), audit_extra={"entry_ids": entry_ids}))


def _message_text(body: str) -> str:
    text = (body or "").strip()
    if not text:
        raise PortalError("message: write something to send.")
    if len(text) > MAX_MESSAGE:
        raise PortalError(f"message: at most {MAX_MESSAGE} characters (got {len(text)}).")
    return text


def portal_message(store: Store, who: PortalCustomer, body: str, *, idempotency_key: str | None = None) -> int:
    """A message from the customer to its collector (kind 'portal_message', outcome 'in')."""
    text = _message_text(body)
    return _write(lambda: followups.record_activity(
        store, portal_actor(who, store), "portal_self_service", who.customer_id, "portal_message",
        {"outcome": "in", "department": "collections", "subject": f"Portal message: {text}"[:200], "body": text},
        idempotency_key))


def reply_to_portal(store: Store, actor: Actor, customer_id: str, body: str, *,
                    idempotency_key: str | None = None) -> int:
    """The collector's reply (role act_on_customers), shown in the customer's portal thread."""
    require(actor, "act_on_customers")  # a portal actor may write its own messages, never a reply
    text = _message_text(body)
    return _write(lambda: followups.record_activity(
        store, actor, "act_on_customers", customer_id, "portal_message",
        {"outcome": "out", "subject": f"Reply in the portal: {text}"[:200], "body": text}, idempotency_key))


def portal_thread(store: Store, who: PortalCustomer) -> pd.DataFrame:
    """The customer's messages and the collector's replies, oldest first: at, author ("you" or
    the collector's name), body."""
    return store.read("""
        SELECT a.occurred_at AS at,
               CASE WHEN a.outcome = 'in' THEN 'you' ELSE COALESCE(u.name, a.author) END AS author, a.body
        FROM activities a LEFT JOIN users u ON u.username = a.author
        WHERE a.customer_id = :c AND a.kind = 'portal_message'
        ORDER BY a.occurred_at, a.activity_id
    """, {"c": who.customer_id})[THREAD_COLUMNS]
