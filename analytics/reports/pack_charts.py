"""The pack's charts, for print: PNG images drawn with matplotlib's Agg backend (no display needed).

One look for every chart: the title above the plot, the legend below it (never over the title or
the lines), month ends on the x axis, thousands separators. matplotlib comes with `make run`'s lock;
when it is missing, `available()` is False and every chart is None, and the PDF prints the tables
without charts (a pack never fails for a missing package).
"""

from __future__ import annotations

import io
from importlib.util import find_spec

import pandas as pd

from analytics.kpis.aging import bucket_labels

PALETTE = ["#1f4e79", "#2e86c1", "#85c1e9", "#f5b041", "#e67e22", "#c0392b", "#7d3c98"]
SIZE_INCHES = (5.2, 2.9)  # two across a landscape A4 page
DPI = 120  # sharp enough at 136 mm wide; each extra dot costs drawing and PNG time


def available() -> bool:
    """Whether matplotlib can be imported here."""
    return find_spec("matplotlib") is not None


def axis_number(value: float) -> str:
    """An axis tick in print: 12.5M, 750k, 85, 2.5."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:,.0f}k"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _figure(title: str, y_title: str):  # noqa: ANN202 - matplotlib's (Figure, Axes)
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=SIZE_INCHES, dpi=DPI)
    ax.set_title(title, fontsize=9, loc="left", pad=6)
    ax.set_ylabel(y_title, fontsize=7)
    ax.tick_params(labelsize=6)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: axis_number(v)))
    ax.grid(axis="y", color="#dddddd", linewidth=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _png(fig, ax) -> bytes:  # noqa: ANN001 - matplotlib's Figure and Axes
    from matplotlib import pyplot as plt

    handles, labels = ax.get_legend_handles_labels()
    if handles:  # below the plot: never over the title or the data
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.24), ncol=len(labels) if len(labels) <= 4 else 3,
                  fontsize=6, frameon=False)
    # fixed margins (room for the rotated months and the legend under them): tight_layout would draw twice
    fig.subplots_adjust(left=0.13, right=0.98, top=0.9, bottom=0.36)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def _months(frame: pd.DataFrame) -> list[str]:
    return [f"{pd.Timestamp(d):%b %y}" for d in frame["month_end"]]


def line_chart(frame: pd.DataFrame, series: dict[str, str], title: str, y_title: str) -> bytes | None:
    """Lines of `series` (column -> legend label) over the frame's month ends; None without matplotlib."""
    if not available() or frame.empty:
        return None
    fig, ax = _figure(title, y_title)
    months = _months(frame)
    for (column, label), colour in zip(series.items(), PALETTE, strict=False):
        ax.plot(months, pd.to_numeric(frame[column], errors="coerce"), label=label, color=colour, linewidth=1.4,
                marker="o", markersize=2)
    ax.tick_params(axis="x", rotation=45)
    return _png(fig, ax)


def aging_chart(trend: pd.DataFrame, currency: str) -> bytes | None:
    """Stacked bars of the aging buckets at each month end (`aging_trend`'s long table)."""
    if not available() or trend.empty:
        return None
    wide = trend.pivot(index="month_end", columns="bucket", values="amount").reset_index()
    fig, ax = _figure("Aging at each month end", f"Amount ({currency})")
    months, bottom = _months(wide), pd.Series(0.0, index=wide.index)
    for label, colour in zip([b for b in bucket_labels("due") if b in wide.columns], PALETTE, strict=False):
        ax.bar(months, wide[label], bottom=bottom, label=label, color=colour, width=0.7)
        bottom = bottom + wide[label]
    ax.tick_params(axis="x", rotation=45)
    return _png(fig, ax)


def bad_debt_chart(monthly: pd.DataFrame) -> bytes | None:
    """Monthly bad debt % as bars, the rolling 12 months as a line."""
    if not available() or monthly.empty:
        return None
    fig, ax = _figure("Bad debt as % of credit sales", "%")
    months = _months(monthly)
    ax.bar(months, pd.to_numeric(monthly["bad_debt_pct"], errors="coerce"), label="Monthly", color=PALETTE[2],
           width=0.7)
    ax.plot(months, pd.to_numeric(monthly["bad_debt_pct_12m"], errors="coerce"), label="Rolling 12 months",
            color=PALETTE[5], linewidth=1.4)
    ax.tick_params(axis="x", rotation=45)
    return _png(fig, ax)


def roll_rate_chart(rates: pd.DataFrame) -> bytes | None:
    """One line per bucket: the share rolling one bucket older at each month end."""
    if not available() or rates.empty:
        return None
    wide = rates.pivot(index="month_end", columns="from_bucket", values="roll_rate").reset_index()
    series = {b: f"{b} → older" for b in bucket_labels("due") if b in wide.columns}
    return line_chart(wide, series, "Roll rates: share rolling one bucket older", "%")
