"""ERP export files for the import tests: invoice registers in the layout of IBM's receivables sample
(any size, with an independent pandas reading of what is open on a date), and bad .xlsx files."""

from __future__ import annotations

import struct
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

REGISTER_COLUMNS = ("countryCode", "customerID", "PaperlessDate", "invoiceNumber", "InvoiceDate", "DueDate",
                    "InvoiceAmount", "Disputed", "SettledDate", "PaperlessBill", "DaysToSettle", "DaysLate")


def _us_dates(days: pd.Series) -> pd.Series:
    """Dates as the IBM export writes them: month/day/year without zero padding (1/2/2013)."""
    return days.dt.month.astype(str) + "/" + days.dt.day.astype(str) + "/" + days.dt.year.astype(str)


def register_frame(rows: int, seed: int = 7, first_invoice: date = date(2024, 1, 1), invoice_days: int = 700,
                   last_settlement: date = date(2025, 12, 31)) -> pd.DataFrame:
    """An invoice register of `rows` invoices, every cell text as the ERP writes it.

    Invoices are dated over `invoice_days` from `first_invoice`, due 30 days later, and settled 0-120
    days after their date; a settlement after `last_settlement` is not in the export yet, and 3% of
    the invoices are never settled (blank SettledDate = open). Invoice numbers are zero-padded to 10
    digits, customers are like the sample's (`0379-NSVTD`), 10% of invoices are disputed.
    """
    rng = np.random.default_rng(seed)
    invoiced = pd.Series(pd.Timestamp(first_invoice) + pd.to_timedelta(rng.integers(0, invoice_days, rows), unit="D"))
    due = invoiced + pd.Timedelta(days=30)
    to_settle = pd.Series(rng.integers(0, 121, rows))
    settled = invoiced + pd.to_timedelta(to_settle, unit="D")
    is_settled = (settled <= pd.Timestamp(last_settlement)) & (rng.random(rows) >= 0.03)
    late = (settled - due).dt.days.clip(lower=0)
    cents = pd.Series(rng.integers(100, 2_500_000, rows))
    number = pd.Series(np.arange(rows))
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    customer = pd.Series(rng.integers(0, max(10, min(1_000, rows // 20)), rows))
    suffix = pd.Series(["".join(letters[(c * 7 + k * 3) % 26] for k in range(5)) for c in range(1_000)])
    return pd.DataFrame({
        "countryCode": np.where(rng.random(rows) < 0.5, "391", "406"),
        "customerID": customer.astype(str).str.zfill(4) + "-" + suffix[customer].to_numpy(),
        "PaperlessDate": "4/6/2013",
        "invoiceNumber": number.astype(str).str.zfill(10),
        "InvoiceDate": _us_dates(invoiced),
        "DueDate": _us_dates(due),
        "InvoiceAmount": (cents // 100).astype(str) + "." + (cents % 100).astype(str).str.zfill(2),
        "Disputed": np.where(rng.random(rows) < 0.1, "Yes", "No"),
        "SettledDate": _us_dates(settled).where(is_settled, ""),
        "PaperlessBill": np.where(rng.random(rows) < 0.5, "Paper", "Electronic"),
        "DaysToSettle": to_settle.astype(str).where(is_settled, "0"),
        "DaysLate": late.astype(str).where(is_settled, "0"),
    }, columns=list(REGISTER_COLUMNS))


def write_register(path: Path, rows: int, seed: int = 7) -> Path:
    """`register_frame(rows, seed)` as a CSV export."""
    register_frame(rows, seed).to_csv(path, index=False)
    return path


def open_ar_from_file(path: Path, as_of: date) -> tuple[float, int]:
    """(open amount, open invoices) as of D, read from the export with pandas alone (not the app's code).

    Open as of D: invoiced on or before D, and not settled (blank) or settled after D.
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    invoiced = pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y")
    settled = pd.to_datetime(frame["SettledDate"].replace("", None), format="%m/%d/%Y")
    d = pd.Timestamp(as_of)
    is_open = (invoiced <= d) & (settled.isna() | (settled > d))
    return round(float(frame["InvoiceAmount"].astype(float)[is_open].sum()), 2), int(is_open.sum())


# -- bad .xlsx files ------------------------------------------------------------------------------
def write_fake_xlsx(path: Path) -> Path:
    """A CSV saved under an .xlsx name: not a zip archive at all."""
    path.write_text("customer_id,document_number,posting_date,amount\nC1,INV-1,2024-01-02,10.00\n")
    return path


def write_truncated_xlsx(path: Path) -> Path:
    """A real .xlsx cut short (an interrupted download): it starts like a zip but has no directory."""
    whole = path.with_name(path.name + ".whole.xlsx")
    pd.DataFrame({"customer_id": ["C1"], "document_number": ["INV-1"]}).to_excel(whole, index=False)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


_WORKBOOK_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
        'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://'
        'schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        '</Relationships>'),
    "xl/worksheets/sheet1.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main"><dimension ref="A1:A2"/><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>0</v></c></row></sheetData></worksheet>'),
}


def _deflate(data: bytes, final: bool) -> bytes:
    # A raw deflate stream part that refers to nothing before it and ends on a byte boundary, so such
    # parts can be chained (and one repeated) into a single valid stream.
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    return squeeze.compress(data) + squeeze.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def write_xlsx_bomb(path: Path, unpacked_mb: int = 1024, lying: bool = False) -> Path:
    """A well-formed .xlsx of about 1 KB per unpacked MB: its one shared string is `unpacked_mb` MB of "A".

    Every reader of the workbook (openpyxl loads the shared strings first) would inflate it whole.
    The zip is written by hand so the stream is built from one compressed MB repeated (no GB is
    ever compressed here); sizes and CRCs are the true ones, unless `lying`: then the zip's
    directory declares the shared strings 1 KB long. Stays under 4 GiB (no ZIP64).
    """
    block = b"A" * 2**20
    head = b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/' \
           b'2006/main" count="2" uniqueCount="1"><si><t>'
    tail = b"</t></si></sst>"
    crc = zlib.crc32(head)
    for _ in range(unpacked_mb):
        crc = zlib.crc32(block, crc)
    strings = (_deflate(head, False) + _deflate(block, False) * unpacked_mb + _deflate(tail, True),
               zlib.crc32(tail, crc), 1024 if lying else len(head) + unpacked_mb * len(block) + len(tail))
    parts = {name: (_deflate(text.encode(), True), zlib.crc32(text.encode()), len(text.encode()))
             for name, text in _WORKBOOK_PARTS.items()}
    parts["xl/sharedStrings.xml"] = strings
    with path.open("wb") as out:
        central = b""
        for name, (data, crc32, size) in parts.items():
            encoded, offset = name.encode(), out.tell()
            fields = (crc32, len(data), size, len(encoded))
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, *fields, 0) + encoded + data)
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, *fields, 0, 0, 0, 0,
                                   0, offset) + encoded
        start = out.tell()
        out.write(central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(parts), len(parts), len(central),
                                        start, 0))
    return path
