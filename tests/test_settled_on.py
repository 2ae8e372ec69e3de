"""`ledger_entries.settled_on`: the date an entry became fully applied, kept by every writer.

Its SQL definition is `ledger.refresh_settled_on`; the demo generator computes it in numpy and the
imports refresh the entries they touch. The open-items rule only uses it to skip entries closed by D,
so a report as of D must still show what was open then.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from analytics.access.roles import SYSTEM
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.kpis.aging import open_invoices
from analytics.ledger.fx import reporting_params
from analytics.ledger.open_items import OPEN_ITEMS_SQL
from analytics.ledger.settlement import refresh_settled_on
from analytics.store.connection import Store
from tests.ledger_builder import LedgerBuilder

INVOICES = Mapping(dataset="invoices", columns={
    "customer_id": "cust", "document_number": "doc", "posting_date": "date", "due_date": "due",
    "amount": "amount", "currency": "ccy"})
PAYMENTS = Mapping(dataset="payments", columns={"customer_id": "cust", "document_number": "doc",
                                                "posting_date": "date", "amount": "amount"})
ALLOCATIONS = Mapping(dataset="allocations", columns={"from_document": "pay", "to_document": "inv",
                                                      "amount": "amt", "allocation_date": "on"})


def settled(store: Store) -> dict[str, date | None]:
    """document number -> settled_on."""
    frame = store.read("SELECT document_number, settled_on FROM ledger_entries ORDER BY document_number")
    return {row.document_number: None if pd.isna(row.settled_on) else pd.Timestamp(row.settled_on).date()
            for row in frame.itertuples()}


def recomputed(store: Store) -> dict[str, date | None]:
    """settled_on as `refresh_settled_on` computes it from scratch (rolled back afterwards)."""
    with store.engine.connect() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET settled_on = NULL"))
        refresh_settled_on(conn)
        frame = pd.DataFrame(conn.execute(sa.text(
            "SELECT document_number, settled_on FROM ledger_entries ORDER BY document_number")).fetchall())
        conn.rollback()
    return {row.document_number: None if pd.isna(row.settled_on) else pd.Timestamp(row.settled_on).date()
            for row in frame.itertuples()}


def open_now(store: Store, conn: sa.Connection | None = None) -> dict[str, float]:
    """document number -> open amount after every allocation (NULL open_now = the amount)."""
    sql = "SELECT document_number, COALESCE(open_now, amount) AS o FROM ledger_entries ORDER BY document_number"
    frame = pd.DataFrame(conn.execute(sa.text(sql)).fetchall()) if conn is not None else store.read(sql)
    return {row.document_number: float(row.o) for row in frame.itertuples()}


def open_now_recomputed(store: Store) -> dict[str, float]:
    with store.engine.connect() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET open_now = NULL, settled_on = NULL"))
        refresh_settled_on(conn)
        recomputed_values = open_now(store, conn)
        conn.rollback()
    return recomputed_values


def open_docs(store: Store, as_of: date) -> dict[str, float]:
    frame = open_invoices(store, as_of)
    return dict(zip(frame["document_number"], frame["open_amount"], strict=True))


def open_items(store: Store, as_of: date) -> dict[str, float]:
    """Every open item (debits and credits) as of D: document number -> open amount."""
    frame = store.read(OPEN_ITEMS_SQL, reporting_params(as_of))
    return dict(zip(frame["document_number"], frame["open_amount"], strict=True))


def test_the_demo_generator_sets_exactly_what_the_sql_definition_gives(demo_store: Store) -> None:
    generated = settled(demo_store)
    assert sum(v is not None for v in generated.values()) > len(generated) // 2  # most of the history is settled
    assert sum(v is None for v in generated.values()) > 0
    assert generated == recomputed(demo_store)
    assert open_now(demo_store) == open_now_recomputed(demo_store)


def test_partial_then_final_payment_and_a_payment_dated_after_d(store: Store) -> None:
    b = LedgerBuilder(store)
    b.customer("A")
    b.invoice("A", "INV1", posted="2024-01-10", due="2024-02-09", amount=100)
    b.invoice("A", "INV2", posted="2024-01-20", due="2024-02-19", amount=50)
    b.payment("A", "PAY1", posted="2024-02-20", amount=60, applies={"INV1": 60})  # partial
    assert settled(store) == {"INV1": None, "INV2": None, "PAY1": date(2024, 2, 20)}
    b.payment("A", "PAY2", posted="2024-03-01", amount=90, applies={"INV1": (40, "2024-03-05")})  # final
    b.apply("A", "PAY2", applies={"INV2": 50}, on="2024-04-01")  # paid after D = 2024-03-31
    assert settled(store) == {"INV1": date(2024, 3, 5), "INV2": date(2024, 4, 1), "PAY1": date(2024, 2, 20),
                              "PAY2": date(2024, 4, 1)}
    assert settled(store) == recomputed(store)
    assert open_docs(store, date(2024, 3, 4)) == {"INV1": 40.0, "INV2": 50.0}
    assert open_docs(store, date(2024, 3, 5)) == {"INV2": 50.0}
    assert open_docs(store, date(2024, 3, 31)) == {"INV2": 50.0}  # its payment is dated later
    assert open_docs(store, date(2024, 4, 1)) == {}


def test_an_over_applied_invoice_stays_unsettled_and_keeps_its_negative_open_amount(store: Store) -> None:
    b = LedgerBuilder(store)
    b.customer("A")
    b.invoice("A", "INV1", posted="2024-01-10", due="2024-02-09", amount=100)
    b.payment("A", "PAY1", posted="2024-02-01", amount=100, applies={"INV1": 100})
    assert settled(store)["INV1"] == date(2024, 2, 1)
    b.payment("A", "PAY2", posted="2024-02-10", amount=5, applies={"INV1": 5})  # too much: open again
    assert settled(store) == {"INV1": None, "PAY1": date(2024, 2, 1), "PAY2": date(2024, 2, 10)}
    assert open_now(store) == {"INV1": -5.0, "PAY1": 0.0, "PAY2": 0.0}
    assert open_items(store, date(2024, 2, 5)) == {}
    assert open_items(store, date(2024, 2, 10)) == {"INV1": -5.0}


def test_imports_and_reimports_keep_settled_on(store: Store, tmp_path: Path) -> None:
    def write(name: str, text: str) -> Path:
        (tmp_path / name).write_text(text)
        return tmp_path / name

    run_import(store, write("i.csv", "cust,doc,date,due,amount,ccy\nC1,INV-1,2024-01-05,2024-02-04,100.00,USD\n"
                                     "C1,INV-2,2024-01-06,2024-02-05,40.00,USD\n"), INVOICES, SYSTEM)
    run_import(store, write("p.csv", "cust,doc,date,amount\nC1,PAY-1,2024-02-01,140.00\n"), PAYMENTS, SYSTEM)
    run_import(store, write("a.csv", "pay,inv,amt,on\nPAY-1,INV-1,60.00,2024-02-01\n"), ALLOCATIONS, SYSTEM)
    assert settled(store) == {"INV-1": None, "INV-2": None, "PAY-1": None}
    run_import(store, write("b.csv", "pay,inv,amt,on\nPAY-1,INV-1,100.00,2024-02-03\n"), ALLOCATIONS, SYSTEM)  # changed
    assert settled(store) == {"INV-1": date(2024, 2, 3), "INV-2": None, "PAY-1": None}
    run_import(store, write("c.csv", "pay,inv,amt,on\nPAY-1,INV-2,40.00,2024-02-02\n"), ALLOCATIONS, SYSTEM)  # new
    assert settled(store) == {"INV-1": date(2024, 2, 3), "INV-2": date(2024, 2, 2), "PAY-1": date(2024, 2, 3)}
    assert open_docs(store, date(2024, 2, 2)) == {"INV-1": 100.0}
    # the invoice grows in a re-import: open again, and the payment is still fully applied
    run_import(store, write("i2.csv", "cust,doc,date,due,amount,ccy\nC1,INV-1,2024-01-05,2024-02-04,120.00,USD\n"),
               INVOICES, SYSTEM)
    assert settled(store) == {"INV-1": None, "INV-2": date(2024, 2, 2), "PAY-1": date(2024, 2, 3)}
    assert open_docs(store, date(2024, 3, 1)) == {"INV-1": 20.0}
    assert settled(store) == recomputed(store)
    assert open_now(store) == {"INV-1": 20.0, "INV-2": 0.0, "PAY-1": 0.0} == open_now_recomputed(store)


def test_an_invoice_register_with_settlement_dates(store: Store, tmp_path: Path) -> None:
    register = INVOICES.with_columns({"settled_date": "paid"})
    path = tmp_path / "r.csv"
    path.write_text("cust,doc,date,due,amount,ccy,paid\nC1,INV-1,2024-01-05,2024-02-04,100.00,USD,2024-02-10\n"
                    "C1,INV-2,2024-01-06,2024-02-05,40.00,USD,\n")
    run_import(store, path, register, SYSTEM)
    pay = register.settlement_prefix + "INV-1"
    assert settled(store) == {"INV-1": date(2024, 2, 10), "INV-2": None, pay: date(2024, 2, 10)}
    assert open_docs(store, date(2024, 2, 9)) == {"INV-1": 100.0, "INV-2": 40.0}
    assert open_docs(store, date(2024, 2, 10)) == {"INV-2": 40.0}
    path.write_text("cust,doc,date,due,amount,ccy,paid\nC1,INV-1,2024-01-05,2024-02-04,100.00,USD,2024-02-10\n"
                    "C1,INV-2,2024-01-06,2024-02-05,40.00,USD,2024-03-01\n")  # the re-export: INV-2 paid since
    run_import(store, path, register, SYSTEM)
    assert settled(store) == {"INV-1": date(2024, 2, 10), "INV-2": date(2024, 3, 1), pay: date(2024, 2, 10),
                              register.settlement_prefix + "INV-2": date(2024, 3, 1)}
    assert settled(store) == recomputed(store)


def test_refresh_is_scoped_and_writes_only_what_changes(store: Store) -> None:
    b = LedgerBuilder(store)
    b.customer("A").customer("B")
    b.invoice("A", "A1", posted="2024-01-10", amount=10).invoice("B", "B1", posted="2024-01-10", amount=10)
    b.payment("A", "PA", posted="2024-02-01", amount=10, applies={"A1": 10})
    b.payment("B", "PB", posted="2024-02-01", amount=10, applies={"B1": 10})
    with store.write() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET settled_on = NULL"))
        assert refresh_settled_on(conn, customer_ids=["A"]) == 2
        assert refresh_settled_on(conn, customer_ids=[]) == 0
        assert refresh_settled_on(conn, entry_ids=[b.entry_id("B", "B1")]) == 1
        assert refresh_settled_on(conn) == 1  # only PB was left
        assert refresh_settled_on(conn) == 0
    assert settled(store) == {"A1": date(2024, 2, 1), "B1": date(2024, 2, 1), "PA": date(2024, 2, 1),
                              "PB": date(2024, 2, 1)}
