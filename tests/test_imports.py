"""Imports: every validation rule, the quarantine, idempotent re-import, audited updates, a crash
mid-import, mappings for differently-named exports, and the real IBM receivables export."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from analytics.access.roles import SYSTEM, Actor, PermissionDenied
from analytics.ingest import quarantine
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import Mapping, MappingError, load_mapping, parse_column_overrides
from analytics.ingest.progress import ImportProgress
from analytics.ingest.validation import validate
from analytics.ledger.open_items import portfolio_summary
from analytics.store.connection import Store

ROOT = Path(__file__).resolve().parent.parent
REAL_EXPORT = ROOT.parent / "shared" / "data" / "real" / "WA_Fn-UseC_-Accounts-Receivable.csv"
HEADER = "cust,doc,date,due,amount,ccy\n"
INVOICES = Mapping(dataset="invoices", columns={
    "customer_id": "cust", "document_number": "doc", "posting_date": "date", "due_date": "due",
    "amount": "amount", "currency": "ccy"})
DATA_TABLES = ("customers", "ledger_entries", "allocations", "activities", "fx_rates", "quarantine",
               "sync_watermarks", "audit_log")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def snapshot(store: Store, tables: tuple[str, ...] = DATA_TABLES) -> dict[str, list[dict]]:
    out = {}
    for t in tables:
        frame = store.read(f"SELECT * FROM {t}")
        out[t] = frame.sort_values(list(frame.columns[:2])).astype(str).to_dict("records")
    return out


def entries(store: Store) -> list[dict]:
    frame = store.read("SELECT customer_id, entry_type, document_number, posting_date, due_date, amount, currency "
                       "FROM ledger_entries ORDER BY entry_type, document_number")
    frame["posting_date"] = frame["posting_date"].dt.date
    frame["due_date"] = frame["due_date"].dt.date
    return frame.to_dict("records")


def test_every_rule_is_reported_with_row_column_value_and_reason(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "inv.csv", HEADER + "\n".join([
        "C1,INV-1,2024-01-05,2024-02-04,100.00,USD",   # 1 fine
        ",INV-2,2024-01-05,2024-02-04,10,USD",          # 2 missing customer
        "C1,INV-3,2024-13-45,2024-02-04,10,USD",        # 3 unparseable date
        "C1,INV-4,2024-01-05,2024-02-04,ten,USD",       # 4 unparseable amount
        "C1,INV-5,2024-01-05,2024-02-04,-5,USD",        # 5 negative amount
        "C1,INV-6,2024-01-05,2024-02-04,0,USD",         # 6 zero amount
        "C1,INV-7,2024-03-01,2024-02-01,10,USD",        # 7 due before invoice date
        "C1,INV-8,2024-01-05,2024-02-04,10,USD",        # 8 duplicate document number ...
        "C2,INV-8,2024-01-06,2024-02-05,11,USD",        # 9 ... with row 8
        "C1,INV-10,2024-01-05,2024-02-04,10,XYZ",       # 10 unknown currency
        "C1,INV-11,2024-01-05,2024-02-04,10,EUR",       # 11 real ISO code but no FX rate: unknown
    ]) + "\n")
    report = validate(store, path, INVOICES)
    assert report.errors.to_dict("records") == [
        {"row_number": 2, "column_name": "cust", "value": None, "reason": "missing value"},
        {"row_number": 3, "column_name": "date", "value": "2024-13-45", "reason": "unparseable date (expected %Y-%m-%d)"},
        {"row_number": 4, "column_name": "amount", "value": "ten", "reason": "unparseable amount"},
        {"row_number": 5, "column_name": "amount", "value": "-5", "reason": "invoice amount is zero or negative"},
        {"row_number": 6, "column_name": "amount", "value": "0", "reason": "invoice amount is zero or negative"},
        {"row_number": 7, "column_name": "due", "value": "2024-02-01", "reason": "due date before the invoice date"},
        {"row_number": 8, "column_name": "doc", "value": "INV-8", "reason": "duplicate document number in the file"},
        {"row_number": 9, "column_name": "doc", "value": "INV-8", "reason": "duplicate document number in the file"},
        {"row_number": 10, "column_name": "ccy", "value": "XYZ",
         "reason": "unknown currency (not the reporting currency and no FX rate)"},
        {"row_number": 11, "column_name": "ccy", "value": "EUR",
         "reason": "unknown currency (not the reporting currency and no FX rate)"},
    ]
    assert report.by_reason().to_dict("records")[:3] == [
        {"reason": "duplicate document number in the file", "rows": 2, "first_rows": "8, 9"},
        {"reason": "invoice amount is zero or negative", "rows": 2, "first_rows": "5, 6"},
        {"reason": "unknown currency (not the reporting currency and no FX rate)", "rows": 2, "first_rows": "10, 11"},
    ]
    assert (report.rows_read, report.accepted_rows, report.rejected_rows) == (11, 1, 10)
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries") == 0  # validation writes nothing


def test_missing_required_columns_reject_the_file_and_write_no_rows(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "inv.csv", "cust,doc,date\nC1,INV-1,2024-01-05\n")
    result = run_import(store, path, INVOICES, SYSTEM)
    assert result.status == "rejected"
    assert result.report.missing_columns == [  # optional fields are never called required
        "column 'amount' (field amount, required)", "column 'due' (field due_date, optional, named by the mapping)",
        "column 'ccy' (field currency, optional, named by the mapping)"]
    assert store.scalar("SELECT COUNT(*) FROM ledger_entries") == 0
    runs = store.read("SELECT status, rows_read, rows_rejected, error FROM import_runs").to_dict("records")
    assert runs == [{"status": "rejected", "rows_read": 1, "rows_rejected": 1,
                     "error": "Nothing can be imported: the file lacks column 'amount' (field amount, required), "
                              "column 'due' (field due_date, optional, named by the mapping) and column 'ccy' "
                              "(field currency, optional, named by the mapping). The file's columns: cust, doc, "
                              "date."}]


def test_rejected_rows_go_to_quarantine_and_accepted_rows_are_committed(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "inv.csv", HEADER + "C1,INV-1,2024-01-05,2024-02-04,100.50,USD\n"
                                              "C1,INV-2,2024-01-05,2024-02-04,-3,USD\n")
    result = run_import(store, path, INVOICES, SYSTEM)
    assert (result.status, result.inserted, result.rejected, result.customers_created) == ("ok", 1, 1, ["C1"])
    rows = store.read("SELECT run_id, row_number, column_name, value, reason, raw FROM quarantine").to_dict("records")
    assert rows == [{"run_id": result.run_id, "row_number": 2, "column_name": "amount", "value": "-3",
                     "reason": "invoice amount is zero or negative",
                     "raw": json.dumps({"cust": "C1", "doc": "INV-2", "date": "2024-01-05", "due": "2024-02-04",
                                        "amount": "-3", "ccy": "USD", "__row": 2}, separators=(",", ":"))}]
    assert entries(store) == [{"customer_id": "C1", "entry_type": "invoice", "document_number": "INV-1",
                               "posting_date": date(2024, 1, 5), "due_date": date(2024, 2, 4), "amount": 100.5,
                               "currency": "USD"}]
    assert quarantine.quarantined_rows(store, result.run_id)["reason"].tolist() == ["invoice amount is zero or negative"]
    csv = quarantine.write_quarantine_file(result.report, tmp_path / "quarantine", result.run_id)
    assert pd.read_csv(csv, dtype=str).to_dict("records") == [
        {"row_number": "2", "column_name": "amount", "value": "-3", "reason": "invoice amount is zero or negative",
         "cust": "C1", "doc": "INV-2", "date": "2024-01-05", "due": "2024-02-04", "amount": "-3", "ccy": "USD"}]


def test_reimporting_the_same_file_changes_nothing(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "inv.csv", HEADER + "C1,INV-1,2024-01-05,2024-02-04,100.00,USD\n"
                                              "C2,INV-2,2024-01-06,,200.00,\n")
    first = run_import(store, path, INVOICES, SYSTEM)
    before = snapshot(store, ("customers", "ledger_entries", "allocations", "activities"))
    second = run_import(store, path, INVOICES, SYSTEM)
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (2, 0, 0, 2)
    assert snapshot(store, ("customers", "ledger_entries", "allocations", "activities")) == before
    # a blank due date defaults to posting date + the mapping's terms; a blank currency to its default
    assert entries(store)[1]["due_date"] == date(2024, 2, 5) and entries(store)[1]["currency"] == "USD"


def test_a_changed_row_updates_the_entry_and_is_audited(store: Store, tmp_path: Path) -> None:
    run_import(store, write(tmp_path, "a.csv", HEADER + "C1,INV-1,2024-01-05,2024-02-04,100.00,USD\n"), INVOICES, SYSTEM)
    entry_id = store.scalar("SELECT entry_id FROM ledger_entries")
    result = run_import(store, write(tmp_path, "b.csv", HEADER + "C1,INV-1,2024-01-05,2024-03-04,120.00,USD\n"
                                                              "C1,INV-2,2024-01-07,2024-02-06,5.00,USD\n"),
                        INVOICES, SYSTEM)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 0)
    assert store.read("SELECT entry_id, amount, due_date FROM ledger_entries WHERE document_number = 'INV-1'"
                      ).astype(str).to_dict("records") == [{"entry_id": str(entry_id), "amount": "120.0",
                                                            "due_date": "2024-03-04"}]
    line = store.read("SELECT actor, entity, entity_id, old_values, new_values FROM audit_log "
                      "WHERE action = 'import_update'").to_dict("records")
    assert len(line) == 1
    assert (line[0]["entity"], line[0]["entity_id"]) == ("ledger_entry", "invoice/INV-1")
    old, new = json.loads(line[0]["old_values"]), json.loads(line[0]["new_values"])
    assert (old["amount"], new["amount"], old["due_date"], new["due_date"]) == ("100.0", "120.0", "2024-02-04", "2024-03-04")
    assert old["customer_id"] == new["customer_id"] == "C1"


def test_a_crash_in_the_middle_leaves_the_store_exactly_as_before(store: Store, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run_import(store, write(tmp_path, "a.csv", HEADER + "C1,INV-1,2024-01-05,2024-02-04,100.00,USD\n"), INVOICES, SYSTEM)
    before = snapshot(store)
    runs_before = len(store.read("SELECT * FROM import_runs"))
    calls = []

    def crash(*args, **kwargs):  # runs after customers were created and entries inserted/updated
        calls.append(1)
        raise RuntimeError("power cut")

    monkeypatch.setattr("analytics.ingest.merges.entries.merge_allocations", crash)
    mapping = INVOICES.with_columns({"settled_date": "paid"})
    path = write(tmp_path, "b.csv", "cust,doc,date,due,amount,ccy,paid\n"
                                    "C1,INV-1,2024-01-05,2024-02-04,150.00,USD,2024-02-01\n"
                                    "C9,INV-2,2024-01-05,2024-02-04,10.00,USD,\n")
    with pytest.raises(RuntimeError, match="power cut"):
        run_import(store, path, mapping, SYSTEM)
    assert calls == [1]
    assert snapshot(store) == before
    runs = store.read("SELECT status, error FROM import_runs ORDER BY run_id").to_dict("records")
    assert len(runs) == runs_before + 1 and runs[-1] == {"status": "failed", "error": "RuntimeError: power cut"}


def test_strict_rejects_rows_of_unknown_customers(store: Store, tmp_path: Path) -> None:
    run_import(store, write(tmp_path, "a.csv", HEADER + "C1,INV-1,2024-01-05,2024-02-04,100.00,USD\n"), INVOICES, SYSTEM)
    path = write(tmp_path, "b.csv", HEADER + "C1,INV-2,2024-01-05,2024-02-04,1.00,USD\n"
                                             "NEW,INV-3,2024-01-05,2024-02-04,1.00,USD\n")
    assert validate(store, path, INVOICES).new_customers == ["NEW"]
    result = run_import(store, path, INVOICES, SYSTEM, strict=True)
    assert result.report.errors.to_dict("records") == [
        {"row_number": 2, "column_name": "cust", "value": "NEW", "reason": "unknown customer (--strict)"}]
    assert (result.inserted, result.customers_created) == (1, [])
    assert store.scalar("SELECT COUNT(*) FROM customers") == 1


def test_payments_are_stored_negative_and_allocations_never_exceed_what_is_open(store: Store, tmp_path: Path) -> None:
    run_import(store, write(tmp_path, "i.csv", HEADER + "C1,INV-1,2024-01-05,2024-02-04,100.00,USD\n"
                                                       "C2,INV-9,2024-01-05,2024-02-04,100.00,USD\n"), INVOICES, SYSTEM)
    payments = Mapping(dataset="payments", columns={"customer_id": "cust", "document_number": "doc",
                                                    "posting_date": "date", "amount": "amount"})
    run_import(store, write(tmp_path, "p.csv", "cust,doc,date,amount\nC1,PAY-1,2024-02-01,150.00\n"),
               payments, SYSTEM)
    assert store.scalar("SELECT amount FROM ledger_entries WHERE document_number = 'PAY-1'") == -150
    allocs = Mapping(dataset="allocations", columns={"from_document": "pay", "to_document": "inv",
                                                     "amount": "amt", "allocation_date": "on"})
    path = write(tmp_path, "a.csv", "pay,inv,amt,on\n"
                                    "PAY-1,INV-1,60.00,2024-02-01\n"     # fine: 100 open
                                    "PAY-1,INV-1,60.00,2024-02-02\n"     # duplicate pair in the file
                                    "PAY-1,INV-404,10.00,2024-02-01\n"   # unknown invoice
                                    "PAY-1,INV-9,10.00,2024-02-01\n")    # other customer's invoice
    result = run_import(store, path, allocs, SYSTEM)
    assert result.report.errors[["row_number", "reason"]].to_dict("records") == [
        {"row_number": 1, "reason": "duplicate allocation in the file"},
        {"row_number": 2, "reason": "duplicate allocation in the file"},
        {"row_number": 3, "reason": "unknown invoice or debit adjustment"},
        {"row_number": 4, "reason": "payment and invoice belong to different customers"},
    ]
    ok = write(tmp_path, "b.csv", "pay,inv,amt,on\nPAY-1,INV-1,60.00,2024-02-01\n")
    assert run_import(store, ok, allocs, SYSTEM).inserted == 1
    assert run_import(store, ok, allocs, SYSTEM).unchanged == 1  # re-import: not counted against itself
    run_import(store, write(tmp_path, "p2.csv", "cust,doc,date,amount\nC1,PAY-2,2024-02-03,80.00\n"), payments, SYSTEM)
    too_big = write(tmp_path, "c.csv", "pay,inv,amt,on\nPAY-2,INV-1,50.00,2024-02-03\n")
    result = run_import(store, too_big, allocs, SYSTEM)
    assert result.report.errors.to_dict("records") == [
        {"row_number": 1, "column_name": "amt", "value": "50.00", "reason": "allocation larger than what is open"}]
    assert store.read("SELECT amount FROM allocations").to_dict("records") == [{"amount": 60.0}]



def test_re_importing_allocations_of_an_invoice_paid_by_two_payments_changes_nothing(store: Store,
                                                                                    tmp_path: Path) -> None:
    """A pair already in the store counts once (as the file's row), not also as an earlier row of the file."""
    run_import(store, write(tmp_path, "i.csv", HEADER + "C1,INV-1,2024-01-05,2024-02-04,100.00,USD\n"
                                                       "C1,INV-2,2024-01-05,2024-02-04,50.00,USD\n"), INVOICES, SYSTEM)
    payments = Mapping(dataset="payments", columns={"customer_id": "cust", "document_number": "doc",
                                                    "posting_date": "date", "amount": "amount"})
    run_import(store, write(tmp_path, "p.csv", "cust,doc,date,amount\nC1,PAY-1,2024-02-01,60.00\n"
                                               "C1,PAY-2,2024-02-02,90.00\n"), payments, SYSTEM)
    allocs = Mapping(dataset="allocations", columns={"from_document": "pay", "to_document": "inv",
                                                     "amount": "amt", "allocation_date": "on"})
    # INV-1 (100) from PAY-1 60 + PAY-2 40; PAY-2 (90) also pays INV-2 50: both fully used
    path = write(tmp_path, "a.csv", "pay,inv,amt,on\nPAY-1,INV-1,60.00,2024-02-01\n"
                                    "PAY-2,INV-1,40.00,2024-02-02\nPAY-2,INV-2,50.00,2024-02-02\n")
    assert (run_import(store, path, allocs, SYSTEM).inserted, run_import(store, path, allocs, SYSTEM).unchanged) == (3, 3)
    assert run_import(store, path, allocs, SYSTEM).rejected == 0
    # still never more than open: the second pair raised by 0.01 over-pays INV-1
    more = write(tmp_path, "b.csv", "pay,inv,amt,on\nPAY-1,INV-1,60.00,2024-02-01\nPAY-2,INV-1,40.01,2024-02-02\n")
    assert run_import(store, more, allocs, SYSTEM).report.errors["row_number"].tolist() == [2]
    assert store.scalar("SELECT SUM(amount) FROM allocations") == 150


def test_customers_and_fx_rates_import_and_update(store: Store, tmp_path: Path) -> None:
    customers = Mapping(dataset="customers", columns={"customer_id": "id", "name": "name", "segment": "seg",
                                                      "payment_terms_days": "terms"})
    run_import(store, write(tmp_path, "c.csv", "id,name,seg,terms\nC1,Acme,Enterprise,45\nC2,Bolt,retail,30\n"),
               customers, SYSTEM)  # any segment text is a segment, kept as written
    assert store.read("SELECT customer_id, name, segment, payment_terms_days, currency FROM customers "
                      "ORDER BY customer_id").to_dict("records") == [
        {"customer_id": "C1", "name": "Acme", "segment": "Enterprise", "payment_terms_days": 45, "currency": "USD"},
        {"customer_id": "C2", "name": "Bolt", "segment": "retail", "payment_terms_days": 30, "currency": "USD"}]
    result = run_import(store, write(tmp_path, "d.csv", "id,name,seg,terms\nC1,Acme Ltd,Enterprise,45\n"),
                        customers, SYSTEM)
    assert (result.updated, store.scalar("SELECT name FROM customers WHERE customer_id = 'C1'")) == (1, "Acme Ltd")
    fx = Mapping(dataset="fx-rates", columns={"rate_date": "d", "currency": "c", "rate": "r"},
                 decimal_separator=",", thousands_separator=".")
    result = run_import(store, write(tmp_path, "f.csv", "d,c,r\n2024-01-31,EUR,\"1,0850\"\n2024-01-31,EUX,1\n"),
                        fx, SYSTEM)
    assert result.report.errors["reason"].tolist() == ["unknown currency (not an ISO 4217 code)"]
    assert float(store.scalar("SELECT rate FROM fx_rates WHERE currency = 'EUR'")) == 1.085
    # with a rate on file, EUR invoices are now accepted
    eur = write(tmp_path, "e.csv", HEADER + "C1,INV-E,2024-02-01,2024-03-01,10,eur\n")
    assert run_import(store, eur, INVOICES, SYSTEM).inserted == 1


def test_a_differently_named_export_maps_through_a_toml_file_and_column_overrides(store: Store, tmp_path: Path) -> None:
    mapping_file = write(tmp_path, "erp_de.toml", """
[mapping]
dataset = "invoices"
date_format = "%d.%m.%Y"
decimal_separator = ","
thousands_separator = "."
default_currency = "USD"
delimiter = ";"
[columns]
customer_id = "Debitor"
document_number = "Belegnummer"
posting_date = "Belegdatum"
due_date = "Faellig"
amount = "Betrag"
""")
    mapping = load_mapping(mapping_file).with_columns(parse_column_overrides(["reference=Text"]))
    path = write(tmp_path, "export.csv", "Debitor;Belegnummer;Belegdatum;Faellig;Betrag;Text\n"
                                         "D-1;000123;31.01.2024;01.03.2024;1.234,56;Wartung\n")
    assert run_import(store, path, mapping, SYSTEM).inserted == 1
    assert entries(store) == [{"customer_id": "D-1", "entry_type": "invoice", "document_number": "000123",
                               "posting_date": date(2024, 1, 31), "due_date": date(2024, 3, 1), "amount": 1234.56,
                               "currency": "USD"}]
    assert store.scalar("SELECT reference FROM ledger_entries") == "Wartung"
    # the same rows as Excel and as typed Parquet import to the same ledger (nothing changes)
    frame = pd.read_csv(path, sep=";", dtype=str)
    frame.to_excel(tmp_path / "export.xlsx", index=False)
    assert run_import(store, tmp_path / "export.xlsx", mapping, SYSTEM).unchanged == 1
    typed = pd.DataFrame({"Debitor": ["D-1"], "Belegnummer": ["000123"], "Belegdatum": [date(2024, 1, 31)],
                          "Faellig": [date(2024, 3, 1)], "Betrag": [1234.56], "Text": ["Wartung"]})
    typed.to_parquet(tmp_path / "export.parquet")
    assert run_import(store, tmp_path / "export.parquet", mapping, SYSTEM).unchanged == 1


def test_bad_mappings_are_explained() -> None:
    with pytest.raises(MappingError, match="fields that invoices do not have: colour"):
        Mapping(dataset="invoices", columns={"colour": "x"})
    with pytest.raises(MappingError, match="target=source"):
        parse_column_overrides(["amount"])
    with pytest.raises(MappingError, match="No mapping file"):
        load_mapping("no_such_mapping")


def test_only_admins_may_import(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", HEADER + "C1,INV-1,2024-01-05,2024-02-04,100.00,USD\n")
    with pytest.raises(PermissionDenied):
        run_import(store, path, INVOICES, Actor("cara", "collector"))
    assert store.scalar("SELECT COUNT(*) FROM import_runs") == 0


def test_progress_reports_rows_rate_and_time_left(store: Store, tmp_path: Path) -> None:
    seen: list[ImportProgress] = []
    path = write(tmp_path, "a.csv", HEADER + "".join(f"C1,INV-{i},2024-01-05,2024-02-04,1.00,USD\n" for i in range(50)))
    run_import(store, path, INVOICES, SYSTEM, progress=seen.append)
    assert seen[0].rows_done == 0 and seen[-1].step == "committed"
    assert (seen[-1].rows_done, seen[-1].rows_total, seen[-1].fraction) == (50, 50, 1.0)
    assert "50 of 50 rows" in str(seen[-1]) and seen[-1].rate > 0


@pytest.mark.skipif(not REAL_EXPORT.exists(), reason=f"the real export is not at {REAL_EXPORT} (shared/ beside the clone)")
def test_the_real_ibm_receivables_export_imports_with_no_rejected_rows(store: Store) -> None:
    mapping = load_mapping("ibm_ar_invoice_register")
    result = run_import(store, REAL_EXPORT, mapping, SYSTEM)
    assert (result.status, result.rows_read, result.rejected, result.inserted) == ("ok", 2466, 0, 2466)
    assert (len(result.customers_created), result.allocations, result.disputes) == (100, 2466, 561)
    totals = store.read("SELECT entry_type, COUNT(*) AS n, SUM(amount) AS total FROM ledger_entries "
                        "GROUP BY entry_type ORDER BY entry_type")
    assert totals["n"].tolist() == [2466, 2466]
    assert round(totals["total"].sum(), 2) == 0  # every invoice settled by a payment of the same amount
    first = store.read("SELECT document_number, posting_date, due_date, amount FROM ledger_entries "
                       "WHERE document_number = '0000611365'").astype(str).to_dict("records")
    assert first == [{"document_number": "0000611365", "posting_date": "2013-01-02",
                      "due_date": "2013-02-01", "amount": "55.94"}]  # zero padding kept, US dates read
    # settled by the end of the data: nothing open; on the day before its settlement, the first invoice was open
    assert float(portfolio_summary(store, date(2014, 12, 31)).iloc[0]["open_ar"]) == 0
    assert float(portfolio_summary(store, date(2013, 1, 14)).iloc[0]["open_ar"]) > 55.94
    before = snapshot(store, ("customers", "ledger_entries", "allocations", "activities"))
    again = run_import(store, REAL_EXPORT, mapping, SYSTEM)
    assert (again.inserted, again.updated, again.unchanged, again.allocations, again.disputes) == (0, 0, 2466, 0, 0)
    assert snapshot(store, ("customers", "ledger_entries", "allocations", "activities")) == before
