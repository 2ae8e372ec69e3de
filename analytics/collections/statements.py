"""A statement of open items for one customer: the invoices still owed on a date, as PDF or Excel.

Rows: every open debit item (invoice, debit adjustment) as of D with its open amount and days
overdue (D - due date, never below 0); total = the sum of those open amounts. Unapplied credits
are listed below the total, so the customer sees the same net balance as the ledger.

The PDF carries the letterhead (`collections.letterhead`: logo, company, address and sender at the
top; remit-to and bank details at the bottom). With `charges` (`charges.charges_summary`: interest
and fee shown, not booked) it adds the interest, the fee and the total with charges below the total.
"""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import sqlalchemy as sa

from analytics.collections.letterhead import Letterhead
from analytics.ledger.open_items import CUSTOMER_OPEN_ITEMS_SQL
from analytics.settings import load_settings
from analytics.store.connection import Store, read_df

STATEMENT_COLUMNS = ["document_number", "posting_date", "due_date", "amount", "open_amount", "days_overdue"]


def statement_items(source: Store | sa.Connection, customer_id: str, as_of: date) -> pd.DataFrame:
    """Open debit items of one customer as of D, oldest due date first."""
    sql = f"""
    WITH items AS ({CUSTOMER_OPEN_ITEMS_SQL})
    SELECT entry_id, document_number, posting_date, due_date, currency, amount, open_amount,
           CASE WHEN days_past_due > 0 THEN days_past_due ELSE 0 END AS days_overdue
    FROM items WHERE customer_id = :customer_id AND open_amount > 0
    ORDER BY due_date, document_number
    """  # noqa: S608 - composed from constants only
    params = {"as_of": as_of, "reporting": load_settings().reporting_currency, "customer_id": customer_id}
    frame = source.read(sql, params) if isinstance(source, Store) else read_df(source, sql, params)
    for col in ("posting_date", "due_date"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    frame["days_overdue"] = frame["days_overdue"].astype(int)
    return frame


def statement_pdf(customer_name: str, customer_id: str, currency: str, items: pd.DataFrame, as_of: date, *,
                  letterhead: Letterhead | None = None, charges: dict[str, float] | None = None,
                  letter: str | None = None) -> bytes:
    """The statement as a one-table PDF (fpdf2, built-in Helvetica: Latin-1 text only), under the
    letterhead (default: settings), with the interest and fee when `charges` is given; a dunning
    letter's text (`letter`) goes above the table."""
    from fpdf import FPDF

    def latin(text: object) -> str:
        return str(text).encode("latin-1", "replace").decode("latin-1")

    letterhead = letterhead or Letterhead.from_settings()
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    logo = letterhead.logo_path()
    if logo is not None:
        pdf.image(str(logo), x=pdf.l_margin, y=pdf.t_margin, h=15)
        pdf.set_y(pdf.t_margin + 17)
    pdf.set_font("Helvetica", "", 9)
    for line in [letterhead.company, *letterhead.address.splitlines(), letterhead.sender]:
        if line.strip():
            pdf.cell(0, 4.5, latin(line.strip()), new_x="LMARGIN", new_y="NEXT")
    if letterhead.company or letterhead.address or letterhead.sender:
        pdf.ln(3)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 9, latin(f"Statement of open items - {customer_name}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, latin(f"Customer {customer_id} - as of {as_of.isoformat()} - amounts in {currency}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    if letter:
        pdf.multi_cell(0, 5, latin(letter), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    widths = (40, 28, 28, 32, 32, 26)
    heads = ("Invoice", "Date", "Due", "Amount", "Open", "Days overdue")
    pdf.set_font("Helvetica", "B", 9)
    for w, h in zip(widths, heads, strict=True):
        pdf.cell(w, 7, h, border=1, align="C")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for row in items.itertuples(index=False):
        cells = (row.document_number, row.posting_date, row.due_date, f"{row.amount:,.2f}",
                 f"{row.open_amount:,.2f}", str(row.days_overdue))
        for i, (w, c) in enumerate(zip(widths, cells, strict=True)):
            pdf.cell(w, 6, latin(c), border=1, align="R" if i >= 3 else "L")
        pdf.ln()
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(sum(widths[:4]), 7, "Total open", border=1, align="R")
    pdf.cell(widths[4], 7, f"{items['open_amount'].sum():,.2f}", border=1, align="R")
    pdf.cell(widths[5], 7, "", border=1)
    pdf.ln()
    if charges is not None:
        pdf.set_font("Helvetica", "", 9)
        rate = f" ({charges.get('annual_rate', 0) * 100:.2f} % a year on the overdue invoices)"
        for label, value in ((f"Interest{rate}", charges["interest"]), ("Dunning fee", charges["fee"]),
                             ("Overdue with interest and fee", charges["total"])):
            pdf.cell(sum(widths[:4]), 7, latin(label), border=1, align="R")
            pdf.cell(widths[4], 7, f"{value:,.2f}", border=1, align="R")
            pdf.cell(widths[5], 7, "", border=1)
            pdf.ln()
    remit = [("Remit to: ", letterhead.remit_to), ("Bank details: ", letterhead.bank_details)]
    if any(value for _, value in remit):
        pdf.ln(4)
        pdf.set_font("Helvetica", "", 9)
        for label, value in remit:
            if value:
                pdf.multi_cell(0, 4.5, latin(label + " ".join(value.split())), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def statement_xlsx(customer_name: str, customer_id: str, currency: str, items: pd.DataFrame, as_of: date) -> bytes:
    """The statement as an Excel workbook: a title block, one row per open item, a total row."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Open items"
    ws.append([f"Statement of open items - {customer_name}"])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append([f"Customer {customer_id}", f"as of {as_of.isoformat()}", f"amounts in {currency}"])
    ws.append([])
    ws.append(["Invoice", "Date", "Due", "Amount", "Open", "Days overdue"])
    for cell in ws[4]:
        cell.font = Font(bold=True)
    for row in items.itertuples(index=False):
        ws.append([row.document_number, row.posting_date, row.due_date, float(row.amount),
                   float(row.open_amount), int(row.days_overdue)])
    ws.append(["Total open", None, None, None, float(items["open_amount"].sum()), None])
    ws.cell(ws.max_row, 1).font = Font(bold=True)
    for col, width in zip("ABCDEF", (18, 12, 12, 14, 14, 13), strict=True):
        ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
