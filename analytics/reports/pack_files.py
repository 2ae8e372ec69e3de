"""The monthly pack as files: a PDF of a few landscape pages (`pack_pdf`, fpdf2) and a workbook with
every table (`pack_xlsx`, openpyxl), both under the dashboards' column headers (`kpis.columns`).

PDF pages: headline KPI tiles with their change against last month and the same month last year;
aging and DSO (charts, the aging at month end, the monthly DSO table); bad debt and roll rates;
dunning effectiveness; top overdue customers; collector KPIs; the cash forecast when the hook
(`monthly_pack.cash_forecast`) gives one. The PDF uses the built-in Helvetica (Latin-1 text only:
other characters print as "?"), like the statements.
"""

from __future__ import annotations

import io
import math

import pandas as pd

from analytics.kpis.columns import COLUMN_LABELS, column_header, column_kind
from analytics.reports import pack_charts
from analytics.reports.monthly_pack import SECTIONS, TILE_LABELS, Pack

UNIT_WORDS = {"pct": "pts", "days": "days"}  # a change's unit; money changes name the currency
# The PDF's narrower tables (the workbook has every column)
PDF_COLUMNS: dict[str, list[str]] = {
    "dso": ["month_end", "ar_end", "overdue_ar_end", "credit_sales", "collections", "dso_standard",
            "dso_countback", "bpdso", "add", "cei", "pct_over_90"],
    "bad_debt": ["month_end", "write_offs", "credit_sales", "bad_debt_pct", "write_offs_12m", "credit_sales_12m",
                 "bad_debt_pct_12m", "ar_90_plus"],
    "dunning": ["config_name", "config_version", "stage_no", "stage_name", "channel", "invoices", "amount",
                "paid_7d_pct", "paid_14d_pct", "paid_30d_pct", "recovered", "median_days_to_pay",
                "reached_final_pct"],
}
_PLAIN = str.maketrans({"≤": "<=", "≥": ">=", "−": "-", "–": "-", "—": "-", "→": "->", "…": "...",
                        "’": "'", "“": '"', "”": '"'})


def format_value(value: object, kind: str) -> str:
    """A cell as printed: money and counts with thousands separators, %, days and ratios with one
    decimal, dates as YYYY-MM-DD, "n/a" for a missing number."""
    if kind == "text":
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    if kind == "date":
        return "" if pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number):
        return "n/a"
    return format(float(number), ",.0f" if kind in ("money", "count") else ",.1f")


def _value_kind(column: str, frame: pd.DataFrame) -> str:
    kind = column_kind(column)
    if column in TILE_VALUES:  # a tile table row mixes money, shares and days: one decimal fits all
        return "ratio"
    if kind == "text" and column.endswith("(%)"):  # the wide roll-rate columns, "1-30 -> older (%)"
        return "pct"
    # the aging buckets ("Current", "1-30", "Total", ...) are money columns named by their labels
    return "money" if kind == "text" and pd.api.types.is_float_dtype(frame[column]) else kind


def _wide_aging(trend: pd.DataFrame) -> pd.DataFrame:
    """`aging_trend`'s long table as one row per month end and one column per bucket."""
    if trend.empty:
        return pd.DataFrame(columns=["month_end"])
    order = list(dict.fromkeys(trend["bucket"]))
    wide = trend.pivot(index="month_end", columns="bucket", values="amount")[order].reset_index()
    wide.columns.name = None
    return wide


def _wide_rolls(rates: pd.DataFrame) -> pd.DataFrame:
    """Roll rates (%) as one row per month end and one column per bucket rolling older."""
    if rates.empty:
        return pd.DataFrame(columns=["month_end"])
    order = list(dict.fromkeys(rates["from_bucket"]))
    wide = rates.pivot(index="month_end", columns="from_bucket", values="roll_rate")[order]
    wide.columns = [f"{b} -> older (%)" for b in wide.columns]
    return wide.reset_index()


TILE_VALUES = ("this_month", "last_month", "change_vs_last_month", "same_month_last_year", "change_vs_last_year")


def _tiles_frame(pack: Pack) -> pd.DataFrame:
    """The tiles as a table: the unit in words (a share's changes are in percentage points)."""
    units = {"money": pack.currency, "pct": "% (changes: points)", "days": "days"}
    return pack.tables["tiles"].drop(columns=["kpi"]).assign(unit=lambda f: f["unit"].map(units))


def sheet_tables(pack: Pack) -> dict[str, tuple[str, pd.DataFrame]]:
    """The workbook's sheets: sheet name -> (title, table with raw column names), `SECTIONS` order."""
    out: dict[str, tuple[str, pd.DataFrame]] = {}
    for name, (title, sheet) in SECTIONS.items():
        frame = pack.tables[name]
        if name == "tiles":
            frame = _tiles_frame(pack)
        elif name == "aging_trend":
            frame = _wide_aging(frame)
        elif name == "aging":
            frame = frame.drop(columns=["missing_fx"], errors="ignore")
        out[sheet] = (title, frame)
    if pack.cash_forecast is not None:
        out["Cash forecast"] = ("Cash forecast", pack.cash_forecast)
    return out


def _header(column: str, currency: str, kind: str) -> str:
    """The column's header; an aging bucket ("1-30", "Total") is money too, so it names the currency."""
    if column in TILE_LABELS:
        return TILE_LABELS[column]
    if column not in COLUMN_LABELS and kind == "money":
        return f"{column} ({currency})"
    return column_header(column, currency)


# -- the workbook ------------------------------------------------------------------------------------
EXCEL_FORMATS = {"money": "#,##0", "count": "#,##0", "pct": "0.0", "days": "0.0", "ratio": "#,##0.0",
                 "date": "yyyy-mm-dd"}


def pack_xlsx(pack: Pack) -> bytes:
    """The workbook: an "About" sheet (month, as-of date, period, filters, currency), then one sheet
    per table with the dashboards' headers, numbers kept as numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    about = book.active
    about.title = "About"
    about["A1"] = pack.title
    about["A1"].font = Font(bold=True, size=13)
    for row, (label, value) in enumerate((
        ("Month", f"{pack.month:%Y-%m}"), ("As of", pack.as_of.isoformat()),
        ("Trends from", pack.period_start.isoformat()), ("Customers", pack.describe_filters()),
        ("Reporting currency", pack.currency), ("Made at", pack.made_at.isoformat(sep=" ")),
        ("Ledger's last posting", pack.last_posting.isoformat() if pack.last_posting else ""),
    ), start=3):
        about.cell(row, 1, label).font = Font(bold=True)
        about.cell(row, 2, value)
    about.column_dimensions["A"].width = 22
    about.column_dimensions["B"].width = 50
    for sheet, (_, frame) in sheet_tables(pack).items():
        ws = book.create_sheet(sheet)
        kinds = [_value_kind(str(c), frame) for c in frame.columns]
        for col, column in enumerate(frame.columns, start=1):
            cell = ws.cell(1, col, _header(str(column), pack.currency, kinds[col - 1]))
            cell.font = Font(bold=True)
            ws.column_dimensions[get_column_letter(col)].width = max(12, min(40, len(str(cell.value)) + 2))
        for r, values in enumerate(frame.itertuples(index=False), start=2):
            for col, (value, kind) in enumerate(zip(values, kinds, strict=True), start=1):
                if kind == "date":
                    value = None if pd.isna(value) else pd.Timestamp(value).date()
                elif kind != "text":
                    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
                    value = None if pd.isna(number) else float(number)
                elif value is not None and not isinstance(value, str):
                    value = None if pd.isna(value) else str(value)
                cell = ws.cell(r, col, value)
                if kind in EXCEL_FORMATS:
                    cell.number_format = EXCEL_FORMATS[kind]
        ws.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# -- the PDF -----------------------------------------------------------------------------------------
def _latin(text: object) -> str:
    return str(text).translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def _heading(pdf, text: str) -> None:  # noqa: ANN001 - an FPDF
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, _latin(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)


def _note(pdf, text: str) -> None:  # noqa: ANN001
    pdf.set_font("Helvetica", "I", 7.5)
    pdf.multi_cell(0, 4, _latin(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)


def _table(pdf, frame: pd.DataFrame, currency: str, title: str | None = None, font_size: float = 7) -> None:  # noqa: ANN001
    """A table under its title, headings repeated on each page it runs over; "No rows." when empty."""
    if title:
        pdf.set_font("Helvetica", "B", 9.5)
        pdf.cell(0, 6, _latin(title), new_x="LMARGIN", new_y="NEXT")
    if frame.empty:
        _note(pdf, "No rows for this month and these customers.")
        pdf.ln(2)
        return
    kinds = [_value_kind(str(c), frame) for c in frame.columns]
    pdf.set_font("Helvetica", "", font_size)
    align = tuple("LEFT" if k == "text" else "RIGHT" for k in kinds)
    with pdf.table(text_align=align, line_height=font_size * 0.5, padding=0.8, first_row_as_headings=True,
                   headings_style=_heading_style(font_size)) as table:
        row = table.row()
        for column, kind in zip(frame.columns, kinds, strict=True):
            row.cell(_latin(_header(str(column), currency, kind)))
        for values in frame.itertuples(index=False):
            row = table.row()
            for value, kind in zip(values, kinds, strict=True):
                row.cell(_latin(format_value(value, kind)))
    pdf.ln(3)


def _heading_style(font_size: float):  # noqa: ANN202 - an fpdf FontFace
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", size_pt=font_size, fill_color=(230, 236, 244))


def _charts(pdf, images: list[bytes | None]) -> None:  # noqa: ANN001
    """Up to two charts side by side; a note instead when matplotlib is missing."""
    shown = [i for i in images if i is not None]
    if not shown:
        if not pack_charts.available():
            _note(pdf, "Charts are left out: matplotlib is not installed here (`make run` installs it).")
        return
    width = (pdf.w - pdf.l_margin - pdf.r_margin - 6) / 2
    height = width * pack_charts.SIZE_INCHES[1] / pack_charts.SIZE_INCHES[0]
    if pdf.get_y() + height > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y()
    for k, image in enumerate(shown):
        pdf.image(io.BytesIO(image), x=pdf.l_margin + k * (width + 6), y=top, w=width, h=height)
    pdf.set_y(top + height + 3)


def _change(value: float, unit: str, currency: str) -> str:
    if pd.isna(value):
        return "n/a"
    shown = ",.0f" if unit == "money" else ",.1f"
    text = format(float(format(float(value), shown.replace(",", ""))) + 0.0, "+" + shown)  # never "-0.0"
    return f"{text} {currency if unit == 'money' else UNIT_WORDS.get(unit, '')}".strip()


def _tile_grid(pdf, pack: Pack) -> None:  # noqa: ANN001
    """The headline tiles, five across: label, value, change vs last month and vs last year."""
    tiles = pack.tables["tiles"]
    across, gap, height = 5, 4, 30
    width = (pdf.w - pdf.l_margin - pdf.r_margin - gap * (across - 1)) / across
    top = pdf.get_y()
    for k, tile in enumerate(tiles.itertuples(index=False)):
        x = pdf.l_margin + (k % across) * (width + gap)
        y = top + (k // across) * (height + gap)
        pdf.set_draw_color(200, 205, 215)
        pdf.rect(x, y, width, height)
        label = f"{tile.label} ({pack.currency})" if tile.unit == "money" else tile.label
        lines = [("", 8, label), ("B", 15, format_value(tile.this_month, tile.unit)),
                 ("", 7, f"vs last month: {_change(tile.change_vs_last_month, tile.unit, pack.currency)}"),
                 ("", 7, f"vs same month last year: {_change(tile.change_vs_last_year, tile.unit, pack.currency)}")]
        pdf.set_xy(x + 2, y + 2)
        for style, size, text in lines:
            pdf.set_font("Helvetica", style, size)
            pdf.set_x(x + 2)
            pdf.cell(width - 4, size * 0.5 + 1.2, _latin(text), new_x="LEFT", new_y="NEXT")
    rows = math.ceil(len(tiles) / across)
    pdf.set_y(top + rows * (height + gap))


def pack_pdf(pack: Pack) -> bytes:
    """The pack as a PDF (see the module docstring for its pages)."""
    from fpdf import FPDF

    currency = pack.currency
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_margins(10, 10, 10)
    pdf.set_title(_latin(pack.title))
    pdf.set_author("AR Desk")
    pdf.alias_nb_pages()

    def footer() -> None:
        pdf.set_y(-9)
        pdf.set_font("Helvetica", "", 7)
        pdf.cell(0, 4, _latin(f"{pack.title} - {pack.describe_filters()} - page {pdf.page_no()} of {{nb}}"),
                 align="C")

    pdf.footer = footer  # type: ignore[method-assign] - fpdf2's hook for every page's footer
    tables = pack.tables

    pdf.add_page()
    _heading(pdf, pack.title)
    _note(pdf, f"As of {pack.as_of:%d %b %Y}; trends from {pack.period_start:%b %Y}. Customers: "
               f"{pack.describe_filters()}. Amounts in {currency}. Made {pack.made_at:%d %b %Y %H:%M}.")
    if pack.last_posting is not None and pack.last_posting < pack.as_of:
        _note(pdf, f"The ledger's last posting is on {pack.last_posting:%d %b %Y}: what was posted after it is not "
                   "in these figures yet.")
    pdf.ln(2)
    _tile_grid(pdf, pack)
    _note(pdf, "Each tile: the month's figure at its last day; changes are this month minus last month and "
               "minus the same month last year, in percentage points for shares and days for DSO figures.")
    _charts(pdf, [pack_charts.line_chart(tables["dso"], {"ar_end": "Open AR", "overdue_ar_end": "Overdue AR",
                                                         "over_90_ar_end": "90+ days past due"},
                                         "Open and overdue AR at each month end", f"Amount ({currency})")])

    pdf.add_page()
    _heading(pdf, "Aging and DSO")
    _charts(pdf, [pack_charts.aging_chart(tables["aging_trend"], currency),
                  pack_charts.line_chart(tables["dso"], {"dso_standard": "DSO", "bpdso": "Best Possible DSO"},
                                         "DSO against Best Possible DSO", "Days")])
    _table(pdf, tables["aging"].drop(columns=["missing_fx"], errors="ignore"), currency,
           f"Aging at {pack.as_of:%d %b %Y} (days past due)")
    _table(pdf, tables["dso"][PDF_COLUMNS["dso"]], currency, SECTIONS["dso"][0])

    pdf.add_page()
    _heading(pdf, "Bad debt and roll rates")
    _charts(pdf, [pack_charts.bad_debt_chart(tables["bad_debt"]), pack_charts.roll_rate_chart(tables["roll_rates"])])
    _table(pdf, tables["bad_debt"][PDF_COLUMNS["bad_debt"]], currency, SECTIONS["bad_debt"][0])
    _table(pdf, _wide_rolls(tables["roll_rates"]), currency, "Roll rates: share of each bucket one bucket older a "
                                                             "month later (%)")

    pdf.add_page()
    _heading(pdf, "Dunning effectiveness")
    _note(pdf, f"Stages first run from {pack.period_start:%d %b %Y} to {pack.as_of:%d %b %Y}; paid within 7, 14 and "
               "30 days as a share of what was open at the stage.")
    _table(pdf, tables["dunning"][PDF_COLUMNS["dunning"]], currency, font_size=6.5)

    pdf.add_page()
    _heading(pdf, "Top overdue customers")
    _table(pdf, tables["top_overdue"], currency, f"The {len(tables['top_overdue'])} customers with the most "
                                                 f"overdue AR at {pack.as_of:%d %b %Y}")
    _heading(pdf, "Collector KPIs")
    _table(pdf, tables["collectors"], currency, f"{pack.month:%B %Y}", font_size=6.5)

    if pack.cash_forecast is not None:
        pdf.add_page()
        _heading(pdf, "Cash forecast")
        _table(pdf, pack.cash_forecast, currency)
    return bytes(pdf.output())
