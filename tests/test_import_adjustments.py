"""Adjustments and write-offs imported, and allocations to them: signs, rejections, re-imports,
audited updates, and how a debit adjustment ages, takes a payment and stays out of credit sales."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from analytics.access.roles import SYSTEM
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping
from analytics.kpis.aging import aging_buckets, bucket_labels
from analytics.kpis.bad_debt import bad_debt_monthly
from analytics.kpis.dso import dso_monthly
from analytics.ledger.open_items import portfolio_summary
from analytics.store.connection import Store

INVOICES = Mapping(dataset="invoices", columns={"customer_id": "cust", "document_number": "doc",
                                                "posting_date": "date", "due_date": "due", "amount": "amount"})
PAYMENTS = Mapping(dataset="payments", columns={"customer_id": "cust", "document_number": "doc",
                                                "posting_date": "date", "amount": "amount"})
CREDIT_NOTES = Mapping(dataset="credit-notes", columns={"customer_id": "cust", "document_number": "doc",
                                                        "posting_date": "date", "amount": "amount"})
ADJUSTMENTS = Mapping(dataset="adjustments")  # columns named like the fields
ALLOCATIONS = Mapping(dataset="allocations", columns={"from_document": "from", "to_document": "to",
                                                      "amount": "amount", "allocation_date": "on"})
WRITE_OFFS = Mapping(dataset="write-offs", columns={"posting_date": "date"})
ADJ_HEADER = "customer_id,document_number,posting_date,amount,direction,reason,related_invoice,due_date\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def fine(store: Store, tmp_path: Path, rows: str = "C1,FINE-1,2024-01-05,2024-02-04,100.00\n") -> None:
    result = run_import(store, write(tmp_path, "inv.csv", "cust,doc,date,due,amount\n" + rows), INVOICES, SYSTEM)
    assert result.status == "ok" and result.rejected == 0


def reasons(result_or_report) -> list[tuple[int, str, str | None, str]]:
    report = getattr(result_or_report, "report", result_or_report)
    return [(r["row_number"], r["column_name"], r["value"], r["reason"]) for r in report.errors.to_dict("records")]


def entry(store: Store, doc: str) -> dict:
    frame = store.read("SELECT entry_id, entry_type, customer_id, posting_date, due_date, amount, reference, "
                       "related_document, settled_on, open_now FROM ledger_entries WHERE document_number = :d",
                       {"d": doc})
    assert len(frame) == 1, frame
    return frame.astype(object).where(frame.notna(), None).iloc[0].to_dict()


def totals(store: Store, as_of: date) -> tuple[float, float, float]:
    row = portfolio_summary(store, as_of).iloc[0]
    return float(row.open_ar), float(row.unapplied_credits), float(row.net_balance)


# -- adjustments ----------------------------------------------------------------------------------
def test_a_penalty_raises_what_is_owed_and_a_payment_allocated_to_it_is_accepted(store: Store, tmp_path: Path) -> None:
    """The issue's case: a 10.00 penalty on a 100.00 fine. Before the fix the penalty was stored
    negative (Total 100, Unapplied -10, Net 90) and an allocation to it was an "unknown invoice"."""
    fine(store, tmp_path)
    result = run_import(store, write(tmp_path, "adj.csv", ADJ_HEADER +
                                     "C1,PEN-1,2024-02-10,10.00,debit,late-payment penalty,FINE-1,\n"),
                        ADJUSTMENTS, SYSTEM)
    assert (result.status, result.inserted, result.rejected) == ("ok", 1, 0)
    pen = entry(store, "PEN-1")
    assert (pen["entry_type"], float(pen["amount"]), pen["reference"], pen["related_document"]) == (
        "adjustment", 10.0, "late-payment penalty", "FINE-1")
    assert pd.Timestamp(pen["due_date"]).date() == date(2024, 2, 10)  # no due date: due on its posting date
    assert totals(store, date(2024, 2, 29)) == (110.0, 0.0, 110.0)

    run_import(store, write(tmp_path, "pay.csv", "cust,doc,date,amount\nC1,PAY-1,2024-03-01,110.00\n"),
               PAYMENTS, SYSTEM)
    alloc = run_import(store, write(tmp_path, "alloc.csv", "from,to,amount,on\n"
                                    "PAY-1,FINE-1,100.00,2024-03-01\nPAY-1,PEN-1,10.00,2024-03-01\n"),
                       ALLOCATIONS, SYSTEM)
    assert (alloc.status, alloc.inserted, alloc.rejected) == ("ok", 2, 0)
    assert totals(store, date(2024, 2, 29)) == (110.0, 0.0, 110.0)  # the past stays as it was
    assert totals(store, date(2024, 3, 1)) == (0.0, 0.0, 0.0)
    assert pd.Timestamp(entry(store, "PEN-1")["settled_on"]).date() == date(2024, 3, 1)


def test_the_issue_case_through_a_mapping_that_names_the_adjustment_entry_type(store: Store, tmp_path: Path) -> None:
    """The route the issue took: a ledger mapping with `entry_type = "adjustment"`. It stored the
    penalty as -10 (open AR 100, unapplied -10, net 90) and rejected PAY-1 -> PEN-1 as "unknown invoice"."""
    fine(store, tmp_path)
    penalties = Mapping(dataset="credit-notes", entry_type="adjustment", columns=CREDIT_NOTES.columns)
    run_import(store, write(tmp_path, "pen.csv", "cust,doc,date,amount\nC1,PEN-1,2024-02-10,10.00\n"), penalties, SYSTEM)
    assert totals(store, date(2024, 2, 29)) == (110.0, 0.0, 110.0)
    run_import(store, write(tmp_path, "pay.csv", "cust,doc,date,amount\nC1,PAY-1,2024-03-01,110.00\n"),
               PAYMENTS, SYSTEM)
    alloc = run_import(store, write(tmp_path, "alloc.csv", "from,to,amount,on\nPAY-1,FINE-1,100.00,2024-03-01\n"
                                    "PAY-1,PEN-1,10.00,2024-03-01\n"), ALLOCATIONS, SYSTEM)
    assert (alloc.inserted, reasons(alloc)) == (2, [])
    assert totals(store, date(2024, 3, 1)) == (0.0, 0.0, 0.0)


def test_an_adjustment_posted_as_an_invoice_type_is_found_by_allocations(store: Store, tmp_path: Path) -> None:
    """A debit adjustment is a target of allocations even when the invoice with the same number
    does not exist; an invoice with the number wins (the target rule, `DEBIT_ITEM_JOIN`)."""
    fine(store, tmp_path, "C1,X-1,2024-01-05,2024-02-04,100.00\n")
    run_import(store, write(tmp_path, "adj.csv", "customer_id,document_number,posting_date,amount\n"
                                                 "C1,X-1,2024-01-06,5.00\nC1,X-2,2024-01-06,7.00\n"),
               ADJUSTMENTS, SYSTEM)
    run_import(store, write(tmp_path, "pay.csv", "cust,doc,date,amount\nC1,PAY-1,2024-03-01,50.00\n"), PAYMENTS, SYSTEM)
    run_import(store, write(tmp_path, "alloc.csv", "from,to,amount,on\nPAY-1,X-1,20.00,2024-03-01\n"
                                                   "PAY-1,X-2,7.00,2024-03-01\n"), ALLOCATIONS, SYSTEM)
    got = store.read("""SELECT e.entry_type, e.document_number, a.amount FROM allocations a
        JOIN ledger_entries e ON e.entry_id = a.to_entry_id ORDER BY e.document_number""").to_dict("records")
    assert got == [{"entry_type": "invoice", "document_number": "X-1", "amount": 20.0},
                   {"entry_type": "adjustment", "document_number": "X-2", "amount": 7.0}]


def test_signs_by_direction_or_by_the_amount_as_written(store: Store, tmp_path: Path) -> None:
    with_direction = write(tmp_path, "a.csv", ADJ_HEADER +
                           "C1,A-1,2024-01-10,12.50,Debit,fee,,2024-01-31\n"
                           "C1,A-2,2024-01-10,4.00,CREDIT,goodwill,,\n"
                           "C1,A-3,2024-01-10,-3.00,credit,written negative,,\n")
    assert run_import(store, with_direction, ADJUSTMENTS, SYSTEM).inserted == 3
    signed = write(tmp_path, "b.csv", "customer_id,document_number,posting_date,amount,reason\n"
                                      "C1,B-1,2024-01-10,8.00,interest\nC1,B-2,2024-01-10,-2.00,rebate\n")
    assert run_import(store, signed, ADJUSTMENTS, SYSTEM).inserted == 2
    got = {d: (float(entry(store, d)["amount"]), entry(store, d)["due_date"]) for d in ("A-1", "A-2", "A-3", "B-1", "B-2")}
    assert {d: a for d, (a, _) in got.items()} == {"A-1": 12.5, "A-2": -4.0, "A-3": -3.0, "B-1": 8.0, "B-2": -2.0}
    assert pd.Timestamp(got["A-1"][1]).date() == date(2024, 1, 31)  # its own due date
    assert pd.Timestamp(got["B-1"][1]).date() == date(2024, 1, 10)  # none: its posting date
    assert got["A-2"][1] is None and got["B-2"][1] is None  # a credit is never due
    # credits are unapplied until allocated, like credit notes: 20.50 owed, 9.00 unapplied
    assert totals(store, date(2024, 1, 31)) == (20.5, -9.0, 11.5)


def test_every_adjustment_rejection_reason(store: Store, tmp_path: Path) -> None:
    fine(store, tmp_path, "C1,FINE-1,2024-01-05,2024-02-04,100.00\nC2,FINE-2,2024-01-05,2024-02-04,100.00\n")
    path = write(tmp_path, "adj.csv", ADJ_HEADER + "\n".join([
        "C1,A-1,2024-02-01,10.00,debit,ok,FINE-1,",           # 1 fine
        "C1,A-2,2024-02-01,10.00,,no direction,,",            # 2 blank direction
        "C1,A-3,2024-02-01,10.00,up,bad direction,,",         # 3 unknown direction
        "C1,A-4,2024-02-01,-10.00,debit,negative debit,,",    # 4 a debit written negative
        "C1,A-5,2024-02-01,0,credit,zero,,",                  # 5 zero amount
        "C1,A-6,2024-02-01,10.00,debit,early due,,2024-01-31",  # 6 due before posting
        "C1,A-7,2024-02-01,10.00,debit,unknown,FINE-404,",    # 7 unknown related invoice
        "C1,A-8,2024-02-01,10.00,debit,other's,FINE-2,",      # 8 related invoice of another customer
        "C1,A-9,2024-02-01,ten,debit,amount,,",               # 9 unparseable amount
        ",A-10,2024-02-01,10.00,debit,customer,,",            # 10 missing customer
        "C1,A-11,2099-02-01,10.00,debit,future,,",            # 11 far future
        "C1,A-12,2024-02-01,1.00,debit,dup,,",                # 12 duplicate number ...
        "C1,A-12,2024-02-02,2.00,debit,dup,,",                # 13 ... with row 12
    ]) + "\n")
    result = run_import(store, path, ADJUSTMENTS, SYSTEM)
    got = reasons(result)
    future = [r for r in got if r[0] == 11]
    assert len(future) == 1 and future[0][3].startswith("date more than 31 days in the future")
    assert [r for r in got if r[0] != 11] == [
        (2, "direction", None, "missing value (debit or credit)"),
        (3, "direction", "up", "unknown direction (debit or credit)"),
        (4, "amount", "-10.00", "negative amount on a debit adjustment"),
        (5, "amount", "0", "zero amount"),
        (6, "due_date", "2024-01-31", "due date before the posting date"),
        (7, "related_invoice", "FINE-404", "unknown related invoice"),
        (8, "related_invoice", "FINE-2", "related invoice belongs to another customer"),
        (9, "amount", "ten", "unparseable amount"),
        (10, "customer_id", None, "missing value"),
        (12, "document_number", "A-12", "duplicate document number in the file"),
        (13, "document_number", "A-12", "duplicate document number in the file"),
    ]
    assert (result.inserted, result.rejected) == (1, 12)
    assert store.scalar("SELECT COUNT(*) FROM quarantine WHERE run_id = :r", {"r": result.run_id}) == len(got)


def test_adjustments_reimport_is_a_no_op_and_a_changed_row_updates_in_place_with_an_audit_line(
        store: Store, tmp_path: Path) -> None:
    fine(store, tmp_path)
    path = write(tmp_path, "a.csv", ADJ_HEADER + "C1,PEN-1,2024-02-10,10.00,debit,penalty,FINE-1,\n")
    run_import(store, path, ADJUSTMENTS, SYSTEM)
    before = store.read("SELECT * FROM ledger_entries ORDER BY entry_id").astype(str).to_dict("records")
    again = run_import(store, path, ADJUSTMENTS, SYSTEM)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)
    assert store.read("SELECT * FROM ledger_entries ORDER BY entry_id").astype(str).to_dict("records") == before
    entry_id = entry(store, "PEN-1")["entry_id"]
    changed = run_import(store, write(tmp_path, "b.csv", ADJ_HEADER +
                                      "C1,PEN-1,2024-02-10,15.00,debit,penalty raised,FINE-1,2024-02-20\n"),
                         ADJUSTMENTS, SYSTEM)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 0)
    pen = entry(store, "PEN-1")
    assert (pen["entry_id"], float(pen["amount"]), pen["reference"]) == (entry_id, 15.0, "penalty raised")
    lines = store.read("SELECT entity, entity_id, old_values, new_values FROM audit_log "
                       "WHERE action = 'import_update'").to_dict("records")
    assert [(x["entity"], x["entity_id"]) for x in lines] == [("ledger_entry", "adjustment/PEN-1")]
    old, new = json.loads(lines[0]["old_values"]), json.loads(lines[0]["new_values"])
    assert (old["amount"], new["amount"], old["reference"], new["reference"]) == ("10.0", "15.0", "penalty",
                                                                                "penalty raised")
    assert (old["due_date"], new["due_date"], new["related_document"]) == ("2024-02-10", "2024-02-20", "FINE-1")


# -- a debit adjustment ages, takes a payment, stays out of credit sales ---------------------------
def test_a_debit_adjustment_ages_in_its_bucket(store: Store, tmp_path: Path) -> None:
    fine(store, tmp_path, "C1,FINE-1,2024-03-01,2024-03-31,100.00\n")
    run_import(store, write(tmp_path, "a.csv", "customer_id,document_number,posting_date,amount,due_date\n"
                                               "C1,PEN-1,2024-02-15,10.00,2024-03-01\n"), ADJUSTMENTS, SYSTEM)
    # as of 2024-04-15: the fine is 15 days past due (1-30), the penalty 45 days (31-60)
    row = aging_buckets(store, date(2024, 4, 15)).iloc[0]
    labels = bucket_labels("due")  # Current, 1-30, 31-60, ...
    assert [float(row[b]) for b in labels[:4]] == [0.0, 100.0, 10.0, 0.0]
    assert (float(row["Total"]), float(row["Unapplied"]), float(row["Net balance"])) == (110.0, 0.0, 110.0)


def test_a_debit_adjustment_counts_in_ar_but_never_in_credit_sales(store: Store, tmp_path: Path) -> None:
    """Hand-computed standard DSO (ar_end / credit_sales x days) for March 2024 (31 days):
    without the penalty: AR 300 (FINE-2 200 + FINE-1 100 open), sales 200 (FINE-2) -> 300/200 x 31 = 46.5;
    with a 50.00 penalty posted in March: AR 350, sales still 200 -> 350/200 x 31 = 54.25."""
    fine(store, tmp_path, "C1,FINE-1,2024-02-10,2024-03-10,100.00\nC1,FINE-2,2024-03-05,2024-04-04,200.00\n")
    march = dso_monthly(store, date(2024, 3, 1), date(2024, 3, 31)).iloc[0]
    assert (float(march.ar_end), float(march.credit_sales), float(march.dso_standard)) == (300.0, 200.0, 46.5)
    run_import(store, write(tmp_path, "a.csv", "customer_id,document_number,posting_date,amount\n"
                                               "C1,PEN-1,2024-03-20,50.00\n"), ADJUSTMENTS, SYSTEM)
    march = dso_monthly(store, date(2024, 3, 1), date(2024, 3, 31)).iloc[0]
    assert (float(march.ar_end), float(march.credit_sales), float(march.dso_standard)) == (350.0, 200.0, 54.25)
    # paid by an allocation file: AR falls back, sales unchanged
    run_import(store, write(tmp_path, "p.csv", "cust,doc,date,amount\nC1,PAY-1,2024-03-25,50.00\n"), PAYMENTS, SYSTEM)
    run_import(store, write(tmp_path, "al.csv", "from,to,amount,on\nPAY-1,PEN-1,50.00,2024-03-25\n"),
               ALLOCATIONS, SYSTEM)
    march = dso_monthly(store, date(2024, 3, 1), date(2024, 3, 31)).iloc[0]
    assert (float(march.ar_end), float(march.credit_sales), float(march.dso_standard)) == (300.0, 200.0, 46.5)


# -- allocations: dates and from_type spellings --------------------------------------------------
def test_allocations_dated_before_either_document_and_bad_from_types_are_rejected(store: Store, tmp_path: Path) -> None:
    fine(store, tmp_path, "C1,FINE-1,2024-02-01,2024-03-01,100.00\n")
    run_import(store, write(tmp_path, "a.csv", "customer_id,document_number,posting_date,amount\n"
                                               "C1,PEN-1,2024-02-10,10.00\nC1,GOODWILL-1,2024-02-12,-5.00\n"),
               ADJUSTMENTS, SYSTEM)
    run_import(store, write(tmp_path, "p.csv", "cust,doc,date,amount\nC1,PAY-1,2024-01-20,40.00\n"
                                               "C1,PAY-2,2024-02-20,40.00\n"), PAYMENTS, SYSTEM)
    run_import(store, write(tmp_path, "c.csv", "cust,doc,date,amount\nC1,CN-1,2024-02-05,-20.00\n"),
               CREDIT_NOTES, SYSTEM)
    mapping = ALLOCATIONS.with_columns({"from_type": "type"})
    path = write(tmp_path, "al.csv", "type,from,to,amount,on\n" + "\n".join([
        "payment,PAY-1,FINE-1,10.00,2024-01-25",      # 1 before the invoice's posting date
        ",PAY-2,PEN-1,5.00,2024-02-15",                # 2 before the payment's posting date
        "Credit-Note,CN-1,PEN-1,5.00,2024-02-08",      # 3 before the debit adjustment's posting date
        "cheque,PAY-1,PEN-1,10.00,2024-02-20",         # 4 unknown from_type
        "adjustment,PEN-1,FINE-1,5.00,2024-02-20",     # 5 a debit adjustment is not a credit
        "adjustment,GONE-1,FINE-1,5.00,2024-02-20",    # 6 unknown credit adjustment
        "payment,PAY-2,NOPE,5.00,2024-02-20",          # 7 unknown target
        "credit_note,CN-1,FINE-1,5.00,2024-02-10",     # 8 fine: credit_note spelling
        "adjustment,GOODWILL-1,FINE-1,5.00,2024-02-12",  # 9 fine: a credit adjustment applied
        "payment,PAY-2,FINE-1,40.00,2024-02-20",       # 10 fine
    ]) + "\n")
    result = run_import(store, path, mapping, SYSTEM)
    assert reasons(result) == [
        (1, "on", "2024-01-25", "allocation dated before the posting date of its invoice"),
        (2, "on", "2024-02-15", "allocation dated before the posting date of its payment"),
        (3, "on", "2024-02-08", "allocation dated before the posting date of its debit adjustment"),
        (4, "type", "cheque", "unknown from_type (payment, credit-note, adjustment or write-off)"),
        (5, "from", "PEN-1", "a debit adjustment cannot be applied as a credit"),
        (6, "from", "GONE-1", "unknown credit adjustment"),
        (7, "to", "NOPE", "unknown invoice or debit adjustment"),
    ]
    assert (result.inserted, result.rejected) == (3, 7)
    # owed: FINE-1 100 - 5 - 5 - 40, PEN-1 10; unapplied: PAY-1 -40, CN-1 -20 + 5; net = the entries' sum
    assert totals(store, date(2024, 2, 29)) == (60.0, -55.0, 5.0)


# -- write-offs -----------------------------------------------------------------------------------
def _ledger_with_a_payment(store: Store, tmp_path: Path) -> None:
    """FINE-1 100 (Jan), PEN-1 a 10.00 penalty (Feb), 30 paid on FINE-1 on 2024-03-01."""
    fine(store, tmp_path)
    run_import(store, write(tmp_path, "a.csv", "customer_id,document_number,posting_date,amount\n"
                                               "C1,PEN-1,2024-02-10,10.00\n"), ADJUSTMENTS, SYSTEM)
    run_import(store, write(tmp_path, "p.csv", "cust,doc,date,amount\nC1,PAY-1,2024-03-01,30.00\n"), PAYMENTS, SYSTEM)
    run_import(store, write(tmp_path, "al.csv", "from,to,amount,on\nPAY-1,FINE-1,30.00,2024-03-01\n"),
               ALLOCATIONS, SYSTEM)


def test_a_write_off_books_its_entry_and_allocation_in_one_step(store: Store, tmp_path: Path) -> None:
    _ledger_with_a_payment(store, tmp_path)
    path = write(tmp_path, "wo.csv", "document_number,amount,date,reason\n"
                                     "FINE-1,70.00,2024-06-30,uncollectable\nPEN-1,-10.00,2024-06-30,waived\n")
    result = run_import(store, path, WRITE_OFFS, SYSTEM)
    assert (result.status, result.inserted, result.rejected) == ("ok", 2, 0)
    wo = entry(store, "WO-FINE-1")
    assert (wo["entry_type"], wo["customer_id"], float(wo["amount"]), wo["reference"]) == (
        "write_off", "C1", -70.0, "uncollectable")
    allocs = store.read("""SELECT f.document_number AS from_doc, t.document_number AS to_doc, a.amount, a.allocation_date
        FROM allocations a JOIN ledger_entries f ON f.entry_id = a.from_entry_id
        JOIN ledger_entries t ON t.entry_id = a.to_entry_id WHERE f.entry_type = 'write_off' ORDER BY to_doc""")
    assert allocs.astype(str).to_dict("records") == [
        {"from_doc": "WO-FINE-1", "to_doc": "FINE-1", "amount": "70.0", "allocation_date": "2024-06-30"},
        {"from_doc": "WO-PEN-1", "to_doc": "PEN-1", "amount": "10.0", "allocation_date": "2024-06-30"}]
    assert totals(store, date(2024, 6, 29)) == (80.0, 0.0, 80.0)
    assert totals(store, date(2024, 6, 30)) == (0.0, 0.0, 0.0)  # nothing unapplied: each write-off is used up
    assert pd.Timestamp(entry(store, "FINE-1")["settled_on"]).date() == date(2024, 6, 30)
    # bad debt: 80 written off in June; credit sales are the invoices only (100 in January, not the penalty)
    bad = bad_debt_monthly(store, date(2024, 1, 1), date(2024, 6, 30)).set_index("month_end")
    assert float(bad.loc[date(2024, 6, 30), "write_offs"]) == 80.0
    assert float(bad["credit_sales"].sum()) == 100.0
    assert float(bad.loc[date(2024, 6, 30), "write_offs_12m"]) == 80.0
    assert float(bad.loc[date(2024, 6, 30), "bad_debt_pct_12m"]) == 80.0  # 80 / 100 x 100

    again = run_import(store, path, WRITE_OFFS, SYSTEM)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert store.scalar("SELECT COUNT(*) FROM allocations") == 3

    entry_id = wo["entry_id"]
    changed = run_import(store, write(tmp_path, "wo2.csv", "document_number,amount,date,reason\n"
                                                           "FINE-1,60.00,2024-06-30,\"uncollectable, part\"\n"),
                         WRITE_OFFS.with_columns({"reason": "reason"}), SYSTEM)
    assert changed.rejected == 0, reasons(changed)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 0)
    wo = entry(store, "WO-FINE-1")
    assert (wo["entry_id"], float(wo["amount"])) == (entry_id, -60.0)
    assert store.scalar("SELECT a.amount FROM allocations a JOIN ledger_entries f ON f.entry_id = a.from_entry_id "
                        "WHERE f.document_number = 'WO-FINE-1'") == 60
    assert totals(store, date(2024, 6, 30)) == (10.0, 0.0, 10.0)
    lines = store.read("SELECT entity, entity_id, old_values, new_values FROM audit_log "
                       "WHERE action = 'import_update' ORDER BY entity").to_dict("records")
    assert [(x["entity"], x["entity_id"]) for x in lines][-1] == ("ledger_entry", "write_off/WO-FINE-1")
    assert [x["entity"] for x in lines] == ["allocation", "ledger_entry"]
    old, new = json.loads(lines[-1]["old_values"]), json.loads(lines[-1]["new_values"])
    assert (old["amount"], new["amount"]) == ("-70.0", "-60.0")


def test_every_write_off_rejection_reason(store: Store, tmp_path: Path) -> None:
    _ledger_with_a_payment(store, tmp_path)
    path = write(tmp_path, "wo.csv", "document_number,amount,date,reason\n" + "\n".join([
        "NOPE-1,5.00,2024-06-30,unknown",          # 1 unknown document
        "FINE-1,80.00,2024-06-30,too much",        # 2 70 open that day
        "PEN-1,10.00,2024-02-01,early",            # 3 before the penalty's posting date
        "PAY-1,5.00,2024-06-30,a payment",         # 4 a payment is not an invoice or debit adjustment
        "Z-5,0,2024-06-30,zero",                   # 5 zero
        "Z-6,,2024-06-30,blank",                   # 6 missing amount
        "Z-7,1.00,2024-06-31,bad date",            # 7 unparseable date
    ]) + "\n")
    result = run_import(store, path, WRITE_OFFS, SYSTEM)
    assert reasons(result) == [
        (1, "document_number", "NOPE-1", "unknown invoice or debit adjustment"),
        (2, "amount", "80.00", "write-off larger than what is open on the item that day"),
        (3, "date", "2024-02-01", "write-off dated before the item's posting date"),
        (4, "document_number", "PAY-1", "unknown invoice or debit adjustment"),
        (5, "amount", "0", "zero amount"),
        (6, "amount", None, "missing value"),
        (7, "date", "2024-06-31", "unparseable date (expected %Y-%m-%d)"),
    ]
    assert (result.status, result.inserted) == ("rejected", 0)
    # written off on 2024-02-15 while 100 was open; the payment of 2024-03-01 leaves only 70
    later = run_import(store, write(tmp_path, "wo2.csv", "document_number,amount,date\nFINE-1,100.00,2024-02-15\n"
                                                         "FINE-1,1.00,2024-02-16\n"), WRITE_OFFS, SYSTEM)
    assert [r[3] for r in reasons(later)] == ["duplicate document number in the file"] * 2
    later = run_import(store, write(tmp_path, "wo3.csv", "document_number,amount,date\nFINE-1,100.00,2024-02-15\n"),
                       WRITE_OFFS, SYSTEM)
    assert reasons(later) == [(1, "amount", "100.00", "write-off larger than what the item's later payments leave open")]
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries WHERE entry_type = 'write_off'") == 0


# -- a million rows --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.duckdb_only  # on PostgreSQL about 3 min at load ~11 (README: "Big writes keep their plans")
def test_a_million_adjustments_then_write_offs_match_a_pandas_computation(store: Store, tmp_path: Path) -> None:
    """1M adjustments (debits and credits by direction, 20k customers) and 100k write-offs of some of
    the debits, imported from CSV; open AR, unapplied and each customer's net balance equal a pandas
    computation over the generated files, to the cent."""
    import time

    import numpy as np

    rng = np.random.default_rng(13)
    n = 1_000_000
    cents = rng.integers(1, 500_000, n)
    direction = np.where(rng.random(n) < 0.8, "debit", "credit")
    posted = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    adj = pd.DataFrame({
        "customer_id": pd.Series(rng.integers(0, 20_000, n)).map("C{:05d}".format),
        "document_number": [f"ADJ-{i:07d}" for i in range(n)],
        "posting_date": posted.strftime("%Y-%m-%d"),
        "amount": pd.Series(cents).map(lambda c: f"{c // 100}.{c % 100:02d}"),
        "direction": direction,
        "reason": "penalty",
    })
    adj_path = tmp_path / "adjustments.csv"
    adj.to_csv(adj_path, index=False)
    debit_rows = np.flatnonzero(direction == "debit")
    chosen = rng.choice(debit_rows, 100_000, replace=False)
    wo_cents = np.minimum(cents[chosen], rng.integers(1, 500_000, len(chosen)))
    wo = pd.DataFrame({"document_number": adj.document_number.to_numpy()[chosen],
                       "amount": pd.Series(wo_cents).map(lambda c: f"{c // 100}.{c % 100:02d}"),
                       "date": "2025-01-15", "reason": "uncollectable"})
    wo_path = tmp_path / "write_offs.csv"
    wo.to_csv(wo_path, index=False)

    started = time.perf_counter()
    first = run_import(store, adj_path, ADJUSTMENTS, SYSTEM)
    adj_seconds = time.perf_counter() - started
    started = time.perf_counter()
    written = run_import(store, wo_path, WRITE_OFFS, SYSTEM)
    wo_seconds = time.perf_counter() - started
    print(f"\n1M adjustments: {adj_seconds:.1f} s; 100k write-offs: {wo_seconds:.1f} s")
    assert (first.inserted, first.rejected, written.inserted, written.rejected) == (n, 0, 100_000, 0)

    # pandas: debits +, credits -, write-offs take their amount off the debit they name
    signed = np.where(direction == "debit", cents, -cents)
    open_cents = signed.copy()
    open_cents[chosen] -= wo_cents
    expected_ar = open_cents[open_cents > 0].sum() / 100
    expected_unapplied = open_cents[open_cents < 0].sum() / 100
    ar, unapplied, net = totals(store, date(2025, 1, 15))
    assert (round(ar, 2), round(unapplied, 2)) == (round(expected_ar, 2), round(expected_unapplied, 2))
    assert round(net, 2) == round((signed.sum() - wo_cents.sum()) / 100, 2)
    per_customer = (pd.DataFrame({"customer_id": adj.customer_id, "c": open_cents})
                    .groupby("customer_id")["c"].sum() / 100).round(2)
    stored = store.read("SELECT customer_id, SUM(amount) AS net FROM ledger_entries GROUP BY customer_id")
    stored = stored.set_index("customer_id")["net"].astype(float).round(2).sort_index()
    pd.testing.assert_series_equal(stored, per_customer.sort_index(), check_names=False)
    # a past date (before the write-offs) sums the allocations instead of reading open_now
    then = np.asarray(posted <= pd.Timestamp("2024-06-30"))
    past = totals(store, date(2024, 6, 30))
    assert (round(past[0], 2), round(past[1], 2)) == (round(signed[then & (signed > 0)].sum() / 100, 2),
                                                      round(signed[then & (signed < 0)].sum() / 100, 2))
    # re-importing the write-offs changes nothing
    assert run_import(store, wo_path, WRITE_OFFS, SYSTEM).unchanged == 100_000
