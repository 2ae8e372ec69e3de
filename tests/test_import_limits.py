"""Bad input that used to get through or crash: dates far in the future, text longer than its column,
an .xlsx that is not a zip, a zip bomb, files past the row and upload caps. Each is refused with a
plain reason; the command line does it in bounded memory (peak RSS of the process measured)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import psutil
import pytest

from analytics.access.roles import SYSTEM
from analytics.ingest.imports import run_import
from analytics.ingest.mapping import (
    AMOUNT_FIELDS,
    BOOLEAN_FIELDS,
    CHOICE_FIELDS,
    DATE_FIELDS,
    FIELDS,
    Mapping,
    load_mapping,
)
from analytics.ingest.reading import ImportFailed, ImportLimits, read_source
from analytics.ingest.staging import FIELD_LENGTHS
from analytics.ingest.validation import validate
from analytics.ledger.open_items import ledger_bounds
from analytics.store.connection import Store
from tests.export_files import register_frame, write_fake_xlsx, write_truncated_xlsx, write_xlsx_bomb

ROOT = Path(__file__).resolve().parent.parent
GiB = 2**30
INVOICES = Mapping(dataset="invoices", columns={"customer_id": "cust", "document_number": "doc",
                                                "posting_date": "date", "due_date": "due", "amount": "amount"})
NOT_TEXT = DATE_FIELDS | AMOUNT_FIELDS | BOOLEAN_FIELDS | CHOICE_FIELDS | {"payment_terms_days", "stage_order", "disputed"}


def _csv(tmp_path: Path, name: str, header: str, rows: list[str]) -> Path:
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _reasons(errors: pd.DataFrame) -> list[tuple[int, str, str]]:
    return [(r["row_number"], r["column_name"], r["reason"]) for r in errors.to_dict("records")]


# -- dates far in the future ----------------------------------------------------------------------
def test_posting_dates_more_than_max_future_days_ahead_are_rejected(store: Store, tmp_path: Path) -> None:
    today = date.today()
    limit = ImportLimits.from_settings().max_future_days
    assert limit == 31  # config/settings.toml [imports]
    latest = today + timedelta(days=limit)
    far_due = today + timedelta(days=400)  # due dates may lie far ahead: not checked
    path = _csv(tmp_path, "inv.csv", "cust,doc,date,due,amount", [
        f"C1,INV-1,{today},{far_due},10.00",
        f"C1,INV-2,{latest},{far_due},10.00",
        f"C1,INV-3,{latest + timedelta(days=1)},{far_due},10.00",
        "C1,INV-4,2099-01-15,2099-02-14,10.00",
    ])
    result = run_import(store, path, INVOICES, SYSTEM)
    reason = f"date more than {limit} days in the future (after {latest.isoformat()})"
    assert _reasons(result.report.errors) == [(3, "date", reason), (4, "date", reason)]
    assert (result.status, result.inserted, result.rejected) == ("ok", 2, 2)
    assert ledger_bounds(store)[1] == latest  # the reports' default as-of date stays where the data ends
    assert f"  2 row(s): {reason}; column 'date', field posting_date (rows 3, 4)" in result.summary_lines()


def test_future_settlement_and_allocation_dates_are_rejected_too(store: Store, tmp_path: Path) -> None:
    limits = ImportLimits(max_future_days=0)
    tomorrow = date.today() + timedelta(days=1)
    register = register_frame(3)
    register.loc[1, "SettledDate"] = f"{tomorrow.month}/{tomorrow.day}/{tomorrow.year}"
    path = tmp_path / "register.csv"
    register.to_csv(path, index=False)
    report = validate(store, path, load_mapping("ibm_ar_invoice_register"), limits=limits)
    reason = f"date more than 0 days in the future (after {date.today().isoformat()})"
    assert _reasons(report.errors) == [(2, "SettledDate", reason)]
    allocations = _csv(tmp_path, "alloc.csv", "from_document,to_document,amount,allocation_date",
                       [f"P-1,INV-1,5.00,{tomorrow}"])
    report = validate(store, allocations, Mapping(dataset="allocations"), limits=limits)
    assert (1, "allocation_date", reason) in _reasons(report.errors)


# -- text longer than its column ------------------------------------------------------------------
def test_every_text_field_has_the_length_of_its_store_column() -> None:
    text_fields = {f for required, optional in FIELDS.values() for f in required + optional} - NOT_TEXT
    assert text_fields == set(FIELD_LENGTHS)  # no field escapes the length rule


def test_text_longer_than_its_store_column_is_rejected(store: Store, tmp_path: Path) -> None:
    doc, cust = FIELD_LENGTHS["document_number"], FIELD_LENGTHS["customer_id"]
    huge = "9" * (2 * 2**20)  # a 2 MB document number
    path = _csv(tmp_path, "inv.csv", "cust,doc,date,due,amount,ref", [
        f"{'C' * cust},{'D' * doc},2024-01-02,2024-02-01,10.00,ok",  # exactly at the limits: fine
        f"C1,{huge},2024-01-02,2024-02-01,10.00,ok",
        f"{'C' * (cust + 1)},INV-3,2024-01-02,2024-02-01,10.00,ok",
        f"C1,INV-4,2024-01-02,2024-02-01,10.00,{'r' * (FIELD_LENGTHS['reference'] + 1)}",
    ])
    mapping = Mapping(dataset="invoices", columns={**INVOICES.columns, "reference": "ref"})
    result = run_import(store, path, mapping, SYSTEM)
    assert _reasons(result.report.errors) == [
        (2, "doc", f"longer than {doc} characters"),
        (3, "cust", f"longer than {cust} characters"),
        (4, "ref", f"longer than {FIELD_LENGTHS['reference']} characters"),
    ]
    assert result.report.errors["value"].str.len().tolist()[0] == len(huge)  # kept whole in the quarantine
    assert store.scalar("SELECT MAX(LENGTH(document_number)) FROM ledger_entries") == doc
    customers = _csv(tmp_path, "customers.csv", "customer_id,name,country", [
        f"K1,{'n' * (FIELD_LENGTHS['name'] + 1)},DE", "K2,Fine,USA"])
    report = validate(store, customers, Mapping(dataset="customers"))
    assert _reasons(report.errors) == [(1, "name", f"longer than {FIELD_LENGTHS['name']} characters"),
                                       (2, "country", f"longer than {FIELD_LENGTHS['country']} characters")]


def test_a_settled_invoice_leaves_room_for_its_settlement_payment_number(store: Store, tmp_path: Path) -> None:
    mapping = load_mapping("ibm_ar_invoice_register")
    most = FIELD_LENGTHS["document_number"] - len(mapping.settlement_prefix)
    register = register_frame(3)
    register.loc[:, "SettledDate"] = ["", "", "2/1/2025"]
    register.loc[:, "InvoiceDate"] = "1/2/2025"
    register.loc[:, "invoiceNumber"] = ["1" * FIELD_LENGTHS["document_number"], "2" * most, "3" * (most + 1)]
    path = tmp_path / "register.csv"
    register.to_csv(path, index=False)
    result = run_import(store, path, mapping, SYSTEM)
    assert _reasons(result.report.errors) == [
        (3, "invoiceNumber", f"longer than {most} characters (the settlement payment "
                             f"{mapping.settlement_prefix}<number> must fit in {FIELD_LENGTHS['document_number']})")]
    assert (result.inserted, result.allocations) == (2, 0)


# -- reading: not a zip, zip bombs, row and upload caps -------------------------------------------
def test_an_xlsx_that_is_not_a_zip_is_refused_with_a_reason(tmp_path: Path) -> None:
    fake = write_fake_xlsx(tmp_path / "export.xlsx")
    with pytest.raises(ImportFailed, match=r"export.xlsx is not an Excel workbook: an .xlsx file is a zip"):
        read_source(fake, INVOICES)
    with pytest.raises(ImportFailed, match=r"upload.xlsx is not an Excel workbook"):
        read_source(fake.read_bytes(), INVOICES, filename="upload.xlsx")
    cut = write_truncated_xlsx(tmp_path / "cut.xlsx")
    assert cut.read_bytes().startswith(b"PK")
    with pytest.raises(ImportFailed, match=r"cut.xlsx is not an Excel workbook: .* not a readable zip"):
        read_source(cut.read_bytes(), INVOICES, filename="cut.xlsx")


def test_an_xlsx_that_would_unpack_past_the_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = write_xlsx_bomb(tmp_path / "bomb.xlsx", unpacked_mb=64)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ImportFailed, match=r"bomb.xlsx would unpack to 64 MB, over the 16 MB limit for Excel files "
                                           r"\(\[imports\] max_xlsx_unpacked_mb\); nothing was read"):
        read_source(bomb, INVOICES, limits=ImportLimits(max_xlsx_unpacked_mb=16))
    table = read_source(bomb, INVOICES, limits=ImportLimits(max_xlsx_unpacked_mb=100))  # under the cap: read
    assert table.num_rows == 1 and len(table.column_names[0]) == 64 * 2**20


def test_files_over_the_row_cap_are_refused_and_at_the_cap_read(tmp_path: Path) -> None:
    limits = ImportLimits(max_rows=50)
    frame = pd.DataFrame({"cust": "C1", "doc": [f"INV-{i}" for i in range(51)], "amount": "1.00"})
    files = {"a.csv": lambda p, f: f.to_csv(p, index=False), "a.xlsx": lambda p, f: f.to_excel(p, index=False),
             "a.parquet": lambda p, f: f.to_parquet(p, index=False)}
    for name, write in files.items():
        over, at_cap = tmp_path / f"over-{name}", tmp_path / f"cap-{name}"
        write(over, frame)
        write(at_cap, frame.iloc[:50])
        size = "has more than 50 rows" if name.endswith(".csv") else "declares 51 rows"  # xlsx: its dimension
        with pytest.raises(ImportFailed, match=rf"over-{name} {size}, over the limit of 50 rows \(\[imports\] "
                                               r"max_rows\); nothing was read. Split it into smaller files."):
            read_source(over, INVOICES, limits=limits)
        assert read_source(at_cap, INVOICES, limits=limits).num_rows == 50


def test_an_upload_over_the_upload_cap_is_refused(tmp_path: Path) -> None:
    data = ("cust,doc,amount\n" + "C1,INV-1,1.00\n" * 100_000).encode()  # 1.3 MB
    with pytest.raises(ImportFailed, match=r"big.csv is 1.3 MB, over the 1 MB upload limit \(\[imports\] max_upload_mb\)"):
        read_source(data, INVOICES, filename="big.csv", limits=ImportLimits(max_upload_mb=1))
    assert read_source(data, INVOICES, filename="big.csv").num_rows == 100_000


# -- the command line, in a process whose peak memory is measured ---------------------------------
# `ardesk ARGS` in a fresh process that prints its peak RSS (VmHWM: this process image only; rusage
# would also count the pytest process it was forked from) on stderr as it exits.
_MEASURED_CLI = """import atexit, sys
def peak():
    status = open("/proc/self/status").read()
    print("PEAK_KIB", status.split("VmHWM:")[1].split()[0], file=sys.stderr)
atexit.register(peak)
from analytics.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def run_cli_measured(args: list[str], env: dict[str, str], timeout_s: float = 120,
                     kill_above: int = int(1.5 * GiB)) -> tuple[int, str, str, int]:
    """`ardesk ARGS` in its own process: (exit status, stdout, stderr, peak RSS in bytes).

    A process growing past `kill_above` or running past `timeout_s` is killed (it would have failed
    the memory bound anyway, and a regression cannot take the machine down with it); its peak is
    then reported as `kill_above`.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", _MEASURED_CLI, *args], stdout=out, stderr=err, cwd=ROOT,
                                env=env)
        child = psutil.Process(proc.pid)
        try:
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None:
                if child.memory_info().rss > kill_above or time.monotonic() > deadline:
                    proc.kill()
                time.sleep(0.05)
        except psutil.NoSuchProcess:
            pass
        status = proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    peak = [line.split()[1] for line in stderr.splitlines() if line.startswith("PEAK_KIB ")]
    return status, stdout, stderr, int(peak[0]) * 1024 if peak else kill_above


def _far_future_invoice(path: Path) -> None:
    path.write_text("cust,doc,date,due,amount\nC1,INV-1,2024-01-02,2024-02-01,10.00\n"
                    "C1,INV-2099,2099-01-15,2099-02-14,10.00\n")


def _long_document_number(path: Path) -> None:
    path.write_text("cust,doc,date,due,amount\nC1,INV-1,2024-01-02,2024-02-01,10.00\n"
                    f"C1,{'9' * 2 * 2**20},2024-01-02,2024-02-01,10.00\n")


BAD_FILES = {  # name: (file name, writer, what the command prints)
    "2099 invoice": ("inv.csv", _far_future_invoice, "1 row(s): date more than 31 days in the future"),
    "2 MB document number": ("inv.csv", _long_document_number,
                             f"1 row(s): longer than {FIELD_LENGTHS['document_number']} characters; "
                             "column 'doc', field document_number (rows 2)"),
    "not a zip": ("inv.xlsx", write_fake_xlsx, "inv.xlsx is not an Excel workbook: an .xlsx file is a zip archive"),
    "cut-short xlsx": ("inv.xlsx", write_truncated_xlsx, "inv.xlsx is not an Excel workbook"),
    "zip bomb": ("inv.xlsx", write_xlsx_bomb, "inv.xlsx would unpack to 1,024 MB, over the 256 MB limit"),
    "zip bomb declaring small sizes": ("inv.xlsx", lambda p: write_xlsx_bomb(p, lying=True),
                                       "inv.xlsx is a damaged Excel workbook (Bad CRC-32 for file "
                                       "'xl/sharedStrings.xml'); nothing was read."),
}


@pytest.mark.slow
@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_the_cli_refuses_bad_files_with_the_reason_in_bounded_memory(tmp_path: Path, bad: str) -> None:
    name, write, reason = BAD_FILES[bad]
    path = tmp_path / name
    write(path)
    env = {k: v for k, v in os.environ.items() if k not in {"ARDESK_DB", "ARDESK_INBOX"}}
    status, out, err, peak = run_cli_measured(
        ["--db", str(tmp_path / "ardesk.duckdb"), "import", "invoices", str(path), "--column", "customer_id=cust", "--column", "document_number=doc", "--column", "posting_date=date",
         "--column", "due_date=due"], env)
    assert reason in out + err, (status, out, err[-2000:])
    assert "Traceback" not in err
    assert status in (1, 2)  # 1: rows rejected (in the quarantine), 2: the file could not be read
    assert peak < GiB, f"peak RSS {peak / 2**20:,.0f} MiB"
