"""A tiny builder for hand-computed ledgers in tests (others may import it).

    b = LedgerBuilder(store)
    b.customer("A", currency="EUR").invoice("A", "INV1", posted="2024-01-10", due="2024-02-09", amount=100)
    b.payment("A", "PAY1", posted="2024-02-20", amount=60, applies={"INV1": 60})
    b.payment("A", "PAY2", posted="2024-03-01", amount=40, applies={"INV1": (40, "2024-03-05")})

Amounts are given positive; payments, credit notes and write-offs are stored negative (the schema's
sign convention). `applies` maps document numbers of this customer's invoices to an amount (applied
on the posting date) or to (amount, allocation date). Every call writes at once, through
`store.write()` and `bulk_insert`, and keeps the derived columns current as the write paths do
(`settled_on`, stage results); the monthly summaries are dropped (the reports read the ledger; the
next write path's refresh rebuilds them whole). Dates are `date` objects or ISO strings.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from analytics.ledger.monthly_summaries import drop_monthly_summaries
from analytics.ledger.settlement import refresh_settled_on
from analytics.ledger.stage_results import refresh_stage_results
from analytics.store.connection import Store, bulk_insert
from analytics.store.ids import reserve_ids
from analytics.store.schema import ALLOCATION_IDS, DUNNING_RUN_IDS, ENTRY_IDS

Day = date | str
Applies = dict[str, float | tuple[float, Day]]


def day(value: Day) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


class LedgerBuilder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.currency: dict[str, str] = {}
        self.terms: dict[str, int] = {}
        self.entries: dict[tuple[str, str], int] = {}  # (customer, document) -> entry_id

    def _reserve(self, sequence: str, count: int = 1) -> int:
        with self.store.write() as conn:
            return reserve_ids(conn, sequence, count)

    def _insert(self, table: str, rows: list[dict]) -> None:
        with self.store.write() as conn:
            bulk_insert(conn, table, pd.DataFrame(rows))

    def customer(self, customer_id: str, *, currency: str = "USD", segment: str = "enterprise",
                 country: str | None = "US", collector: str | None = None, name: str | None = None,
                 terms: int = 30, dunning_config_id: int | None = None) -> LedgerBuilder:
        self.currency[customer_id], self.terms[customer_id] = currency, terms
        self._insert("customers", [{
            "customer_id": customer_id, "name": name or f"Customer {customer_id}", "segment": segment,
            "country": country, "currency": currency, "payment_terms_days": terms, "collector": collector,
            "dunning_config_id": dunning_config_id, "created_at": datetime(2020, 1, 1),
        }])
        return self

    def _entry(self, customer_id: str, entry_type: str, document: str, posted: Day, amount: float,
               due: Day | None, currency: str | None) -> int:
        entry_id = self._reserve(ENTRY_IDS)
        with self.store.write() as conn:
            bulk_insert(conn, "ledger_entries", pd.DataFrame([{
                "entry_id": entry_id, "customer_id": customer_id, "entry_type": entry_type,
                "document_number": document, "posting_date": day(posted),
                "due_date": day(due) if due is not None else None, "amount": float(amount),
                "currency": currency or self.currency[customer_id],
            }]).astype({"due_date": "datetime64[s]"}))
            drop_monthly_summaries(conn)  # a refresh per row costs too much test time: the ledger answers
        self.entries[(customer_id, document)] = entry_id
        return entry_id

    def _apply(self, customer_id: str, from_id: int, posted: Day, applies: Applies | None) -> None:
        if not applies:
            return
        rows = []
        for document, spec in applies.items():
            amount, when = spec if isinstance(spec, tuple) else (spec, posted)
            rows.append({"customer_id": customer_id, "from_entry_id": from_id,
                         "to_entry_id": self.entries[(customer_id, document)], "amount": float(amount),
                         "allocation_date": day(when)})
        first = self._reserve(ALLOCATION_IDS, len(rows))
        for i, row in enumerate(rows):
            row["allocation_id"] = first + i
        with self.store.write() as conn:
            bulk_insert(conn, "allocations", pd.DataFrame(rows))
            touched = [from_id, *(row["to_entry_id"] for row in rows)]
            refresh_settled_on(conn, entry_ids=touched)
            refresh_stage_results(conn, entry_ids=touched)
            drop_monthly_summaries(conn)

    def invoice(self, customer_id: str, document: str, *, posted: Day, amount: float, due: Day | None = None,
                currency: str | None = None) -> LedgerBuilder:
        """An invoice; due defaults to posted + the customer's terms."""
        due = due if due is not None else day(posted) + timedelta(days=self.terms[customer_id])
        self._entry(customer_id, "invoice", document, posted, amount, due, currency)
        return self

    def adjustment(self, customer_id: str, document: str, *, posted: Day, amount: float,
                   due: Day | None = None) -> LedgerBuilder:
        """A debit (amount > 0) or credit (amount < 0) adjustment, as signed."""
        self._entry(customer_id, "adjustment", document, posted, amount, due, None)
        return self

    def payment(self, customer_id: str, document: str, *, posted: Day, amount: float,
                applies: Applies | None = None, currency: str | None = None) -> LedgerBuilder:
        entry_id = self._entry(customer_id, "payment", document, posted, -abs(amount), None, currency)
        self._apply(customer_id, entry_id, posted, applies)
        return self

    def credit_note(self, customer_id: str, document: str, *, posted: Day, amount: float,
                    applies: Applies | None = None) -> LedgerBuilder:
        entry_id = self._entry(customer_id, "credit_note", document, posted, -abs(amount), None, None)
        self._apply(customer_id, entry_id, posted, applies)
        return self

    def write_off(self, customer_id: str, document: str, *, posted: Day, amount: float,
                  applies: Applies | None = None) -> LedgerBuilder:
        entry_id = self._entry(customer_id, "write_off", document, posted, -abs(amount), None, None)
        self._apply(customer_id, entry_id, posted, applies)
        return self

    def apply(self, customer_id: str, from_document: str, *, applies: Applies, on: Day) -> LedgerBuilder:
        """Apply an existing credit (e.g. cash first left unapplied) to invoices later."""
        self._apply(customer_id, self.entries[(customer_id, from_document)], on, applies)
        return self

    def fx(self, currency: str, rate_date: Day, rate: float) -> LedgerBuilder:
        """Reporting currency per 1 unit of `currency` from `rate_date`."""
        self._insert("fx_rates", [{"rate_date": day(rate_date), "currency": currency, "rate": rate}])
        return self

    def entry_id(self, customer_id: str, document: str) -> int:
        return self.entries[(customer_id, document)]

    def dunning_config(self, config_id: int, *, stages: list[tuple[str, int, str]], version: int = 1,
                       name: str | None = None, segment: str | None = None) -> LedgerBuilder:
        """A dunning configuration version with stages [(name, day_offset, channel)], numbered from 1."""
        self._insert("dunning_configs", [{"config_id": config_id, "version": version,
                                          "name": name or f"Config {config_id}", "segment": segment,
                                          "grace_days": 0, "active": True, "created_at": datetime(2020, 1, 1)}])
        self._insert("dunning_stages", [{"config_id": config_id, "version": version, "stage_no": i + 1,
                                         "name": stage, "day_offset": offset, "channel": channel,
                                         "mode": "automatic"}
                                        for i, (stage, offset, channel) in enumerate(stages)])
        return self

    def dunning_run(self, customer_id: str, document: str, *, config_id: int, stage_no: int, run_date: Day,
                    version: int = 1, outcome: str = "sent") -> LedgerBuilder:
        run_id = self._reserve(DUNNING_RUN_IDS)
        with self.store.write() as conn:
            bulk_insert(conn, "dunning_runs", pd.DataFrame([{
                "run_id": run_id, "entry_id": self.entries[(customer_id, document)], "customer_id": customer_id,
                "config_id": config_id, "config_version": version, "stage_no": stage_no,
                "run_date": day(run_date), "outcome": outcome}]))
            refresh_stage_results(conn, entry_ids=[self.entries[(customer_id, document)]])
        return self

    def activity(self, customer_id: str, kind: str, *, at: Day | datetime, author: str,
                 amount: float | None = None, due: Day | None = None, status: str | None = None,
                 document: str | None = None) -> LedgerBuilder:
        """An activity (call, email, note, promise...); a promise takes amount and due (promised date)."""
        occurred = at if isinstance(at, datetime) else datetime.combine(day(at), datetime.min.time()).replace(hour=10)
        self._insert("activities", [{
            "customer_id": customer_id, "kind": kind, "occurred_at": occurred, "author": author,
            "amount": amount, "due_date": day(due) if due is not None else None, "status": status,
            "entry_id": self.entries[(customer_id, document)] if document else None,
        }])
        return self
