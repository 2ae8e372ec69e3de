"""Every table on a dashboard: shown with formatted columns and downloadable as CSV and Excel."""

from __future__ import annotations

import io
from functools import partial

import pandas as pd
import streamlit as st


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV (with a BOM so Excel opens accented names correctly)."""
    return frame.to_csv(index=False).encode("utf-8-sig")


def excel_bytes(frame: pd.DataFrame, sheet: str = "data") -> bytes:
    """The table as an .xlsx workbook with one sheet (openpyxl)."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name=sheet[:31])
    return buffer.getvalue()


def downloads(frame: pd.DataFrame, name: str, key: str, what: str | None = None) -> None:
    """CSV and Excel buttons ("Download `what` (CSV)" when `what` names the table); the files are built
    only when clicked (no cost on every rerun)."""
    left, right, _ = st.columns([1, 1, 6] if what is None else [3, 3, 2])
    left.download_button("CSV" if what is None else f"Download {what} (CSV)", partial(csv_bytes, frame), file_name=f"{name}.csv", mime="text/csv",
                         key=f"{key}_csv", icon=":material/download:", on_click="ignore")
    right.download_button(
        "Excel" if what is None else f"Download {what} (Excel)", partial(excel_bytes, frame, name), file_name=f"{name}.xlsx", key=f"{key}_xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/download:", on_click="ignore",
    )


def money_columns(columns: list[str], currency: str) -> dict[str, st.column_config.NumberColumn]:
    """Column formats for amounts, labelled with their currency."""
    return {c: st.column_config.NumberColumn(f"{c} ({currency})", format="%,.0f") for c in columns}


def show_table(frame: pd.DataFrame, name: str, key: str, *, column_config: dict | None = None,
               selectable: bool = False, height: int | str = "auto", what: str | None = None):
    """A table with its download buttons (labelled with `what`, e.g. "stage table"); `selectable` lets
    one row be picked (reruns the page)."""
    kwargs = {"hide_index": True, "column_config": column_config or {}, "key": key, "height": height}
    if selectable:
        state = st.dataframe(frame, on_select="rerun", selection_mode="single-row", **kwargs)
    else:
        state = st.dataframe(frame, **kwargs)
    downloads(frame, name, key, what)
    return state
