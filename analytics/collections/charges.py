"""Late-payment interest and dunning fees: what a reminder or a statement may add to what is owed.

Interest (per invoice, in the invoice's currency), as of D at an annual rate r:
    interest = r / 365 × Σ over the days overdue of the amount still open on that day,
piecewise between payments: the invoice's amount accrues from its due date to D, and each
allocation to it (payment, credit note, write-off, credit adjustment) dated on or before D stops
accruing from its date (never before the due date) to D:
    interest = r / 365 × (amount × (D − due) − Σ allocation × (D − max(allocation date, due)))
rounded to the cent once per invoice. Only invoices open on D and overdue on D (due before D: due
today is not overdue) accrue; debit adjustments (fees, interest already booked) never do.
A fixed fee per dunning stage is added once per customer per stage sent (`stage_fee`).

By default these figures are shown on the reminder and the statement only: they are not in the
ledger and do not inflate open AR. `book_charges` books them as debit adjustments (a policy's
`book_fees = true`): interest as `INT-<invoice entry id>-<YYYYMMDD>` (only what accrued beyond the
interest already booked on that invoice) and the fee as `FEE-<YYYYMMDD>-<customer>`, each due on D,
related to its invoice, once per day (booking the same day again books nothing).

Hand-checked (ERPNext's own dunning test): 100 outstanding at 10 % for 15 days = 0.41 interest,
plus a fee of 10: 110.41 owed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import Actor, require
from analytics.ledger.monthly_summaries import refresh_monthly_summaries
from analytics.store.connection import Store, bulk_insert, read_df
from analytics.store.ids import reserve_ids
from analytics.store.schema import ENTRY_IDS

CENT = Decimal("0.01")
INTEREST_PREFIX, FEE_PREFIX = "INT-", "FEE-"
CHARGE_SOURCE = "dunning charges"

INTEREST_COLUMNS = ["customer_id", "entry_id", "document_number", "due_date", "currency", "amount",
                    "open_amount", "days_overdue", "interest"]

# One row per invoice open and overdue on :as_of (optionally of one customer); amount_days is
# Σ (open amount × days) over the overdue days, the piecewise base of the interest.
_INTEREST_SQL = """
WITH inv AS (
    SELECT e.entry_id, e.customer_id, e.document_number, e.due_date, e.currency, e.amount
    FROM ledger_entries e
    WHERE e.entry_type = 'invoice' AND e.amount > 0 AND e.posting_date <= :as_of
      AND e.due_date < :as_of AND (e.settled_on IS NULL OR e.settled_on > :as_of) {customer_filter}
), paid AS (
    SELECT a.to_entry_id AS entry_id, SUM(a.amount) AS paid,
           SUM(a.amount * (CAST(:as_of AS DATE) - CASE WHEN a.allocation_date > i.due_date
                                                       THEN a.allocation_date ELSE i.due_date END)) AS paid_days
    FROM allocations a JOIN inv i ON i.entry_id = a.to_entry_id
    WHERE a.allocation_date <= :as_of
    GROUP BY a.to_entry_id
)
SELECT i.customer_id, i.entry_id, i.document_number, i.due_date, i.currency, i.amount,
       i.amount - COALESCE(p.paid, 0) AS open_amount,
       CAST(CAST(:as_of AS DATE) - i.due_date AS INTEGER) AS days_overdue,
       ROUND(CAST(i.amount * (CAST(:as_of AS DATE) - i.due_date) - COALESCE(p.paid_days, 0) AS NUMERIC(38, 4))
             * CAST(:rate AS NUMERIC(12, 8)) / 365, 2) AS interest
FROM inv i LEFT JOIN paid p ON p.entry_id = i.entry_id
WHERE i.amount - COALESCE(p.paid, 0) > 0
ORDER BY i.customer_id, i.due_date, i.document_number
"""


class ChargesError(ValueError):
    """A rate or a fee that cannot be charged (negative, not a number)."""


def _rate(annual_rate: float | Decimal | None) -> Decimal:
    rate = Decimal(str(annual_rate or 0))
    if rate < 0 or rate > 1:
        raise ChargesError(f"The annual interest rate must be between 0 and 1 (0.10 is 10 %), not {annual_rate}.")
    return rate


def stage_fee(fee: float | Decimal | None) -> Decimal:
    """The fixed fee of a dunning stage, to the cent: none (NULL) is 0; a negative fee is refused."""
    value = Decimal(str(fee or 0)).quantize(CENT, rounding=ROUND_HALF_UP)
    if value < 0:
        raise ChargesError(f"A stage fee cannot be negative ({fee}).")
    return value


def interest_due(source: Store | sa.Connection, customer_id: str | None, as_of: date,
                 annual_rate: float | Decimal | None) -> pd.DataFrame:
    """Interest accrued on each invoice open and overdue on `as_of` (module docstring), one row per
    invoice: customer_id, entry_id, document_number, due_date, currency, amount, open_amount,
    days_overdue, interest. `customer_id` None: every customer. A rate of 0 or None gives 0 interest."""
    rate = _rate(annual_rate)
    sql = _INTEREST_SQL.format(customer_filter="AND e.customer_id = :customer_id" if customer_id is not None else "")
    params = {"as_of": as_of, "rate": float(rate), "customer_id": customer_id}
    frame = source.read(sql, params) if isinstance(source, Store) else read_df(source, sql, params)
    frame = frame[INTEREST_COLUMNS]
    frame["due_date"] = pd.to_datetime(frame["due_date"]).dt.date
    for col in ("amount", "open_amount", "interest"):
        frame[col] = frame[col].astype(float)
    frame["days_overdue"] = frame["days_overdue"].astype(int)
    return frame


def charges_summary(source: Store | sa.Connection, customer_id: str, as_of: date,
                    annual_rate: float | Decimal | None, fee: float | Decimal | None) -> dict[str, float]:
    """One customer's figures for a reminder or a statement: overdue (the open amount of its overdue
    invoices), interest (their accrued interest), fee (`stage_fee`) and total = overdue + interest + fee."""
    items = interest_due(source, customer_id, as_of, annual_rate)
    overdue = Decimal(str(round(float(items["open_amount"].sum()), 2))).quantize(CENT)
    interest = Decimal(str(round(float(items["interest"].sum()), 2))).quantize(CENT)
    charged_fee = stage_fee(fee) if len(items) else Decimal("0.00")
    return {"overdue": float(overdue), "interest": float(interest), "fee": float(charged_fee),
            "total": float(overdue + interest + charged_fee), "annual_rate": float(_rate(annual_rate))}


def book_charges(store: Store, actor: Actor, as_of: date, *, annual_rate: float | Decimal | None = None,
                 fee: float | Decimal | None = None, customer_ids: Sequence[str] | None = None,
                 stage_name: str = "") -> pd.DataFrame:
    """Book interest and the stage fee as debit adjustments dated `as_of` (a policy with
    `book_fees = true`); returns the entries booked (customer_id, document_number, amount, reference).

    Interest: per invoice, what accrued to `as_of` minus the interest already booked on it (only a
    positive difference is booked). Fee: once per customer and day, for customers with an overdue
    invoice. Booking again the same day books nothing. Role-checked (`act_on_customers`: charges
    are booked when reminders go out) and audited (one line per entry, in the same transaction)."""
    require(actor, "act_on_customers")
    rate, fee_amount = _rate(annual_rate), stage_fee(fee)
    stamp = as_of.strftime("%Y%m%d")
    with store.write() as conn:
        items = interest_due(conn, None, as_of, rate)
        if customer_ids is not None:
            items = items[items["customer_id"].isin(list(customer_ids))]
        booked = read_df(conn, """
            SELECT related_document AS document_number, customer_id, SUM(amount) AS booked,
                   MAX(CASE WHEN posting_date = :as_of THEN 1 ELSE 0 END) AS today
            FROM ledger_entries
            WHERE entry_type = 'adjustment' AND source = :source AND document_number LIKE 'INT-%'
            GROUP BY related_document, customer_id""", {"as_of": as_of, "source": CHARGE_SOURCE})
        interest = items.merge(booked, on=["customer_id", "document_number"], how="left")
        interest["booked"] = interest["booked"].astype(float).fillna(0.0)
        interest["charge"] = (interest["interest"] - interest["booked"]).round(2)
        interest = interest[(interest["charge"] > 0) & (interest["today"].fillna(0) == 0)]
        lines = pd.DataFrame({
            "customer_id": interest["customer_id"],
            "document_number": INTEREST_PREFIX + interest["entry_id"].astype("int64").astype(str) + "-" + stamp,
            "amount": interest["charge"], "currency": interest["currency"],
            "reference": f"Interest at {float(rate) * 100:.2f} % a year to {as_of.isoformat()}",
            "related_document": interest["document_number"]})
        if fee_amount > 0:
            first = items.drop_duplicates("customer_id")
            fees = pd.DataFrame({
                "customer_id": first["customer_id"],
                "document_number": (FEE_PREFIX + stamp + "-" + first["customer_id"]).str.slice(0, 64),
                "amount": float(fee_amount), "currency": first["currency"],
                "reference": f"Dunning fee{': ' + stage_name if stage_name else ''}"[:200],
                "related_document": first["document_number"]})
            done = read_df(conn, "SELECT document_number FROM ledger_entries WHERE entry_type = 'adjustment' "
                                 "AND source = :source AND posting_date = :as_of AND document_number LIKE 'FEE-%'",
                           {"as_of": as_of, "source": CHARGE_SOURCE})
            lines = pd.concat([lines, fees[~fees["document_number"].isin(done["document_number"])]],
                              ignore_index=True)
        lines = lines.reset_index(drop=True)
        if lines.empty:
            return lines
        base = reserve_ids(conn, ENTRY_IDS, len(lines))
        rows = lines.assign(entry_id=range(base, base + len(lines)), entry_type="adjustment",
                            posting_date=pd.Timestamp(as_of), due_date=pd.Timestamp(as_of),
                            source=CHARGE_SOURCE, updated_at=pd.Timestamp(datetime.now()))
        bulk_insert(conn, "ledger_entries", rows[["entry_id", "customer_id", "entry_type", "document_number",
                                                  "posting_date", "due_date", "amount", "currency", "reference",
                                                  "source", "updated_at", "related_document"]])
        refresh_monthly_summaries(conn, customer_ids=rows["customer_id"].astype(str).unique().tolist())
        # one audit line per booked entry, inserted in bulk (a run may book thousands)
        bulk_insert(conn, "audit_log", pd.DataFrame({
            "logged_at": datetime.now(), "actor": actor.username, "action": "charge.book", "entity": "ledger_entry",
            "entity_id": lines["document_number"].to_numpy(),
            "new_values": lines.to_json(orient="records", lines=True).splitlines(),
            "detail": f"interest at {float(rate):.4f} a year and fee {fee_amount} as of {as_of.isoformat()}"}))
    return lines
