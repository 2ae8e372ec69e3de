"""Every table on a dashboard: shown with human headers and number formats (one dictionary,
analytics.kpis.columns) and downloadable as CSV and Excel."""

from __future__ import annotations

import io
from functools import partial

import pandas as pd
import streamlit as st

from analytics.kpis.columns import DATE, FORMATS, MONEY, column_header, column_kind, with_headers
from analytics.settings import load_settings


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV (with a BOM so Excel opens accented names correctly)."""
    return frame.to_csv(index=False).encode("utf-8-sig")


def excel_bytes(frame: pd.DataFrame, sheet: str = "data") -> bytes:
    """The table as an .xlsx workbook with one sheet (openpyxl)."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name=sheet[:31])
    return buffer.getvalue()


def downloads(frame: pd.DataFrame, name: str, key: str, what: str | None = None, currency: str | None = None) -> None:
    """CSV and Excel buttons, always labelled ("Download CSV", or "Download `what` (CSV)" when `what`
    names the table); the files carry the table's human headers (the one column-label dictionary,
    money headers with the reporting currency) and are built only when clicked (no cost on every rerun)."""
    frame = with_headers(frame, currency or load_settings().reporting_currency)
    left, right, _ = st.columns([2, 2, 5] if what is None else [3, 3, 2])
    left.download_button("Download CSV" if what is None else f"Download {what} (CSV)", partial(csv_bytes, frame), file_name=f"{name}.csv", mime="text/csv",
                         key=f"{key}_csv", icon=":material/download:", on_click="ignore")
    right.download_button(
        "Download Excel" if what is None else f"Download {what} (Excel)", partial(excel_bytes, frame, name), file_name=f"{name}.xlsx", key=f"{key}_xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/download:", on_click="ignore",
    )


def money_columns(columns: list[str], currency: str) -> dict[str, st.column_config.NumberColumn]:
    """Column formats for amounts, labelled with their currency."""
    return {c: st.column_config.NumberColumn(column_header(c, currency), format=FORMATS[MONEY]) for c in columns}


def labelled_columns(frame: pd.DataFrame, given: dict | None = None, currency: str | None = None) -> dict:
    """A column config for every column of `frame`: the given ones as they are, the others with their
    header and number format from the one column-label dictionary (analytics.kpis.columns)."""
    currency = currency or load_settings().reporting_currency
    config: dict = {}
    for column in frame.columns:
        kind, header = column_kind(str(column)), column_header(str(column), currency)
        if kind in FORMATS and pd.api.types.is_numeric_dtype(frame[column]):
            config[column] = st.column_config.NumberColumn(header, format=FORMATS[kind])
        elif kind == DATE and pd.api.types.is_datetime64_any_dtype(frame[column]):
            config[column] = st.column_config.DateColumn(header, format="YYYY-MM-DD")
        else:
            config[column] = header
    return config | (given or {})


def show_table(frame: pd.DataFrame, name: str, key: str, *, column_config: dict | None = None,
               selectable: bool = False, height: int | str = "auto", what: str | None = None):
    """A table with its download buttons (labelled with `what`, e.g. "stage table"); `selectable` lets
    one row be picked (reruns the page)."""
    kwargs = {"hide_index": True, "column_config": labelled_columns(frame, column_config), "key": key,
              "height": height, "width": "stretch"}
    if selectable:
        state = st.dataframe(frame, on_select="rerun", selection_mode="single-row", **kwargs)
    else:
        state = st.dataframe(frame, **kwargs)
    downloads(frame, name, key, what)
    return state


def data_table(frame: pd.DataFrame, *, column_config: dict | None = None, **kwargs):
    """st.dataframe with the headers and number formats of the one column-label dictionary."""
    return st.dataframe(frame, column_config=labelled_columns(frame, column_config), **kwargs)
