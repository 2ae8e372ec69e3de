"""One look for every chart: fonts, colours, titles, axis labels with units, currency in hover.

Every figure is built here so a page only says what to plot. Each builder takes a title and the
axis titles (with their unit: the reporting currency, "%", "days") and refuses to draw without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

FONT = "Source Sans Pro, Helvetica Neue, Arial, sans-serif"
# Aging colours run from calm to alarm, so "older" always reads as "redder".
AGE_COLOURS = ("#4c9a6a", "#a3c46c", "#f2c14e", "#f08a4b", "#d9534f", "#8e1b1b", "#5a0f0f")
SERIES_COLOURS = ("#2a6f97", "#e07a2f", "#4c9a6a", "#8d5fb8", "#c44e52", "#7f7f7f", "#1b9aaa", "#b8860b")
GRID = "#e6e9ef"
TARGET_COLOURS = ("#262730", "#8e1b1b")  # targets: dark, never a series colour


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, *, legend: bool = True) -> go.Figure:
    if not (title and x_title and y_title):
        raise ValueError("every chart needs a title and both axis titles")
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        font={"family": FONT, "size": 13, "color": "#262730"},
        colorway=list(SERIES_COLOURS),
        plot_bgcolor="white",
        paper_bgcolor="white",
        margin={"l": 70, "r": 20, "t": 70, "b": 60},
        height=360,
        hovermode="x unified",
        showlegend=legend,
        # under the plot area, at the foot of the figure: never on the title or the axis title
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0, "xanchor": "left", "x": 0,
                "traceorder": "normal"},
        separators=".,",
    )
    if legend:  # room for two legend rows below the x axis title
        fig.update_layout(margin={"b": 110}, height=410)
    fig.update_xaxes(title_text=x_title, gridcolor=GRID, zeroline=False, automargin=True)
    fig.update_yaxes(title_text=y_title, gridcolor=GRID, zerolinecolor="#c8ccd4", automargin=True)
    return fig


def _hover(unit: str) -> str:
    """Hover text: the value with its unit ("1,234 USD", "12.3 %", "45.0 days")."""
    if unit == "%":
        return "%{y:,.1f} %"
    if unit == "days":
        return "%{y:,.1f} days"
    if unit == "count":
        return "%{y:,.0f}"
    return "%{y:,.0f} " + unit


def _x(values: pd.Series) -> list:
    """Month-end dates read as months ("Mar 2026") on a category axis; anything else as is."""
    if len(values) and hasattr(values.iloc[0], "strftime"):
        return [pd.Timestamp(v).strftime("%b %Y") for v in values]
    return values.tolist()


def line_chart(frame: pd.DataFrame, x: str, series: dict[str, str], *, title: str, x_title: str,
               y_title: str, unit: str, dashed: Sequence[str] = (),
               targets: Mapping[str, float] | None = None) -> go.Figure:
    """Lines over time: `series` maps a column to its legend label; `dashed` columns draw dashed;
    `targets` (legend label -> value) draw as flat dotted lines, named in the legend (no annotation
    that could sit on the title)."""
    fig = go.Figure()
    for i, (label, value) in enumerate((targets or {}).items()):
        fig.add_trace(go.Scatter(
            x=_x(frame[x]), y=[value] * len(frame), name=label, mode="lines",
            line={"dash": "dot", "width": 2, "color": TARGET_COLOURS[i % len(TARGET_COLOURS)]},
            hovertemplate=f"{label}: {_hover(unit)}<extra></extra>",
        ))
    for column, label in series.items():
        fig.add_trace(go.Scatter(
            x=_x(frame[x]), y=frame[column], name=label, mode="lines+markers",
            line={"dash": "dash" if column in dashed else "solid", "width": 2}, marker={"size": 5},
            hovertemplate=f"{label}: {_hover(unit)}<extra></extra>",
        ))
    return _layout(fig, title, x_title, y_title, legend=len(series) + len(targets or {}) > 1)


def bar_chart(frame: pd.DataFrame, x: str, series: dict[str, str], *, title: str, x_title: str,
              y_title: str, unit: str, stacked: bool = False, colours: Sequence[str] | None = None,
              horizontal: bool = False) -> go.Figure:
    """Bars: grouped by default, stacked on request; `colours` per series in order."""
    fig = go.Figure()
    for i, (column, label) in enumerate(series.items()):
        colour = colours[i % len(colours)] if colours else None
        hover = _hover(unit).replace("%{y", "%{x") if horizontal else _hover(unit)
        fig.add_trace(go.Bar(
            x=frame[column] if horizontal else _x(frame[x]), y=_x(frame[x]) if horizontal else frame[column],
            name=label, marker_color=colour, orientation="h" if horizontal else "v",
            hovertemplate=f"{label}: {hover}<extra></extra>",
        ))
    fig.update_layout(barmode="stack" if stacked else "group")
    fig = _layout(fig, title, x_title, y_title, legend=len(series) > 1)
    if horizontal:
        fig.update_layout(hovermode="y unified")
        fig.update_yaxes(autorange="reversed")
    return fig


def heatmap(matrix: pd.DataFrame, *, title: str, x_title: str, y_title: str, unit: str) -> go.Figure:
    """A matrix (index = rows, columns = columns) as a heatmap with each cell's value written in it."""
    fmt = ".1f" if unit == "%" else ",.0f"
    suffix = " %" if unit == "%" else f" {unit}"
    fig = go.Figure(go.Heatmap(
        z=matrix.to_numpy(dtype=float), x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index],
        colorscale="Oranges", texttemplate="%{z:" + fmt + "}", hoverongaps=False,
        hovertemplate=f"{y_title} %{{y}} → {x_title} %{{x}}: %{{z:{fmt}}}{suffix}<extra></extra>",
        colorbar={"title": {"text": unit}},
    ))
    fig = _layout(fig, title, x_title, y_title, legend=False)
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(autorange="reversed")
    return fig


def funnel(labels: Sequence[str], values: Sequence[float], *, title: str, x_title: str, y_title: str,
           unit: str) -> go.Figure:
    """A funnel of stages: how many items reached each one."""
    fig = go.Figure(go.Funnel(
        y=list(labels), x=list(values), textinfo="value+percent initial",
        hovertemplate="%{y}: %{x:,.0f} " + (unit if unit != "count" else "") + "<extra></extra>",
        marker={"color": SERIES_COLOURS[0]},
    ))
    fig = _layout(fig, title, x_title, y_title, legend=False)
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(title_standoff=25)
    return fig


def compact(amount: float) -> str:
    """An amount short enough for a narrow tile: 950, 14.5 k, 2.96 M."""
    if pd.isna(amount):
        return "n/a"
    for size, suffix in ((1e9, " bn"), (1e6, " M"), (1e3, " k")):
        if abs(amount) >= size:
            return f"{amount / size:,.{2 if abs(amount) < 10 * size else 1}f}{suffix}"
    return f"{amount:,.0f}"


def show(fig: go.Figure, key: str, *, selectable: bool = False):
    """Draw a figure with the one look; `selectable` makes a click rerun the page with the selection."""
    config = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
    if selectable:
        return st.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points", config=config,
                               theme=None)
    return st.plotly_chart(fig, key=key, config=config, theme=None)


def interval_chart(labels: Sequence[str], values: Sequence[float], lows: Sequence[float],
                   highs: Sequence[float], *, title: str, x_title: str, y_title: str, unit: str) -> go.Figure:
    """One marker per group with its 95% interval as error bars (an experiment's arms); the legend
    sits below the plot, never on the title."""
    fig = go.Figure()
    for i, (label, value, low, high) in enumerate(zip(labels, values, lows, highs, strict=True)):
        fig.add_trace(go.Scatter(
            x=[label], y=[value], name=label, mode="markers",
            marker={"size": 12, "color": SERIES_COLOURS[i % len(SERIES_COLOURS)]},
            error_y={"type": "data", "symmetric": False, "array": [high - value], "arrayminus": [value - low]},
            hovertemplate=_hover(unit) + "<extra>%{x}</extra>"))
    _layout(fig, title, x_title, y_title)
    fig.update_layout(hovermode="closest", margin={"b": 110},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.25, "xanchor": "left", "x": 0})
    return fig
