"""KPI tiles in a few characters: compact values (179.3 M), the exact figure in the help and exports.

A tile's value must fit a fifth of a 1440-pixel screen and a 390-pixel phone without "…", so money
is compact (`pages.charts.compact`) and its exact figure sits in the tile's help (hover) and in the
tiles' CSV/Excel download.
"""

from __future__ import annotations

import pandas as pd

from analytics.kpis.summary import KPI_TILES
from pages.charts import compact

DELTA_COLOUR = {"up": "normal", "down": "inverse", "": "off"}  # st.metric: is a rise good or bad?


def tile_label(label: str, unit: str, currency: str) -> str:
    """"Open AR (USD)", "Overdue share (%)", "DSO (days)"."""
    return f"{label} ({currency if unit == 'money' else unit})"


def tile_value(value: float, unit: str) -> str:
    """Money compact ("179.3 M"), shares and days with one decimal; "n/a" without a value."""
    if pd.isna(value):
        return "n/a"
    return compact(value) if unit == "money" else f"{value:.1f}"


def exact(value: float, unit: str, currency: str) -> str:
    """The exact figure: "179,331,234 USD", "12.34 %", "45.2 days"."""
    if pd.isna(value):
        return "n/a"
    return {"money": f"{value:,.0f} {currency}", "%": f"{value:.2f} %"}.get(unit, f"{value:.1f} days")


def tile_change(change: float, unit: str) -> str | None:
    """A signed change for st.metric's delta: "+1.2 M", "-0.8 pts", "+2.1 days"; None without one."""
    if pd.isna(change):
        return None
    if unit == "money":
        return ("+" if change >= 0 else "") + compact(change)
    return f"{round(change, 1) + 0.0:+.1f} " + ("pts" if unit == "%" else "days")  # + 0.0: never "-0.0"


def tile_help(rule: str, tile, unit: str, currency: str, previous: str, year_ago: str) -> str:
    """The tile's help: its rule, then the exact value, last month's and last year's."""
    return (f"{rule}  \n**Exact:** {exact(tile.value, unit, currency)}  \n"
            f"{previous}: {exact(tile.last_month, unit, currency)}  \n"
            f"{year_ago}: {exact(tile.last_year, unit, currency)}")


def money_tile(col, label: str, value: float, currency: str, help_text: str = "") -> None:
    """A money tile: compact value ("179.3 M"), the exact figure in its help (hover)."""
    col.metric(f"{label} ({currency})", tile_value(value, "money"), border=True,
               help=f"{help_text}  \n**Exact:** {exact(value, 'money', currency)}".strip())


def compared_tile(col, comparison: pd.DataFrame, kpi: str, label: str, currency: str, help_text: str,
                  value_text: str | None = None) -> None:
    """A point-in-time KPI tile with the Overview's comparisons (analytics.kpis.summary.kpi_comparison,
    one row per KPI): the change on last month as the delta, the change on the same month last year
    below, the exact figures in the help. `value_text`: the page's own rendering of the value."""

    tile = next(comparison[comparison["kpi"] == kpi].itertuples())
    _, unit, good, _ = KPI_TILES[kpi]
    previous, year_ago = f"{tile.last_month_as_of:%b %Y}", f"{tile.last_year_as_of:%b %Y}"
    col.metric(f"{label} ({currency if unit == 'money' else unit})", value_text or tile_value(tile.value, unit),
               tile_change(tile.change_month, unit), delta_color=DELTA_COLOUR[good], border=True,
               help=tile_help(help_text, tile, unit, currency, previous, year_ago))
    col.caption(f"{tile_change(tile.change_year, unit) or 'n/a'} on {year_ago}")
