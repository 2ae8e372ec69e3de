"""Dunning effectiveness: per configuration and stage, a funnel and recovery curves, two side by side,
each labelled with the population it covers, with a like-for-like option."""

import pandas as pd
import streamlit as st

from analytics.kpis.dunning_effectiveness import (
    EFFECTIVENESS_LABELS,
    MONEY_COLUMNS,
    comparison_warning,
    dunning_effectiveness,
    human_headers,
    like_for_like,
    populations,
    recovery_curve,
)
from pages.cached import cached
from pages.charts import compact, funnel, line_chart, show
from pages.filters import dashboard, footer, stop_when_nothing_matches
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import show_table
from pages.tiles import exact

STAGE_COLUMNS = ["stage_no", "stage_name", "channel", "invoices", "amount", "paid_7d_pct", "paid_14d_pct",
                 "paid_30d_pct", "recovered", "median_days_to_pay", "reached_final_pct"]


def column_config(currency: str) -> dict:
    """Every column under its human header, with what it counts and over which base as its help."""
    config = {}
    for column, (header, helptext) in EFFECTIVENESS_LABELS.items():
        if column in MONEY_COLUMNS:
            header = f"{header} ({currency})"
            config[header] = st.column_config.NumberColumn(header, help=helptext, format="%,.0f")
        elif column.endswith("_pct") or column == "median_days_to_pay":
            config[header] = st.column_config.NumberColumn(header, help=helptext, format="%.1f")
        else:
            config[header] = st.column_config.Column(header, help=helptext)
    return config


require_page("dunning")
store = get_store()
view = dashboard(store, "Dunning effectiveness")
currency = view.reporting_currency
stages = cached(dunning_effectiveness, store, view.start, view.end, view.filters)
if stages.empty:
    stop_when_nothing_matches(store, view, "dunning stages run in the period")
sides = cached(populations, store, view.start, view.end, view.filters)
st.caption("**Recovered** counts each payment or credit note once, at the last stage the invoice reached before "
           "it, so a configuration's stages add up. Every share is of the amount open **at that stage**.")

# -- pick two configurations to compare, and on what ground -----------------------------------------
configs = (stages[["config_id", "config_version", "config_name"]].drop_duplicates()
           .sort_values(["config_id", "config_version"]).itertuples(index=False))
labels = {(int(c.config_id), int(c.config_version)): f"{c.config_name} (v{int(c.config_version)})" for c in configs}
keys = list(labels)
left, right = st.columns(2)
chosen = [
    left.selectbox("Configuration", keys, format_func=labels.get, index=0, key="dunning_left"),
    right.selectbox("Compared with", keys, format_func=labels.get, index=min(1, len(keys) - 1), key="dunning_right"),
]
fair = st.toggle("Like-for-like: only the segments both sides dunned, over the period both ran in",
                 key="dunning_like_for_like")
compared, ground = stages, None
if fair and chosen[0] != chosen[1]:
    try:
        ground = like_for_like(sides[chosen[0]], sides[chosen[1]], view.filters)
    except ValueError as reason:
        st.warning(escape_markdown(reason), icon=":material/block:")
    else:
        st.info(escape_markdown(ground.describe()), icon=":material/balance:")
if ground is None:
    curves = cached(recovery_curve, store, view.start, view.end, view.filters)
else:
    on_ground = (store, ground.runs_from, view.end, ground.filters)
    compared = cached(dunning_effectiveness, *on_ground, runs_until=ground.runs_until)
    sides = cached(populations, *on_ground, runs_until=ground.runs_until)
    curves = cached(recovery_curve, *on_ground, runs_until=ground.runs_until)
if chosen[0] != chosen[1] and all(key in sides for key in chosen):
    if warning := comparison_warning(sides[chosen[0]], sides[chosen[1]]):
        st.warning(escape_markdown(warning), icon=":material/warning:")

# -- side by side: who it covers, headline, funnel, recovery curves, stage table ---------------------
for column, (config_id, version), side in zip((left, right), chosen, ("left", "right"), strict=True):
    mine = compared[(compared["config_id"] == config_id) & (compared["config_version"] == version)]
    mine = mine.sort_values("stage_no")
    with column:
        if mine.empty or (config_id, version) not in sides:
            st.info(f"{escape_markdown(labels[(config_id, version)])}: no stage runs on this ground.")
            continue
        st.caption(escape_markdown(f"{labels[(config_id, version)]}: {sides[(config_id, version)].describe()}"))
        first = mine.iloc[0]
        a, b, c = st.columns(3)
        a.metric("Invoices", f"{int(first['invoices']):,}", border=True,
                 help=f"Invoices that reached stage {int(first['stage_no'])} in the period.")
        b.metric("Paid ≤ 30 d (%)", "n/a" if pd.isna(first["paid_30d_pct"]) else f"{first['paid_30d_pct']:.1f}",
                 border=True, help=f"Share of the amount open at stage {int(first['stage_no'])} paid within "
                                   "30 days after it.")
        # the label stays short (a third of half the page): the currency is in the caption and the help
        c.metric("Recovered", compact(mine["recovered"].sum()), border=True,
                 help="Paid or credited after the stages up to the period end, each payment counted once (at "
                      f"the last stage before it).  \n**Exact:** {exact(mine['recovered'].sum(), 'money', currency)}")
        show(funnel(mine["stage_name"].tolist(), mine["invoices"].tolist(),
                    title=f"Invoices reaching each stage: {labels[(config_id, version)]}",
                    x_title="Invoices", y_title="Stage", unit="count"), key=f"dunning_funnel_{side}")
        curve = curves[(curves["config_id"] == config_id) & (curves["config_version"] == version)]
        names = dict(zip(mine["stage_no"], mine["stage_name"], strict=True))
        wide = curve.pivot_table(index="days", columns="stage_no", values="share_paid_pct").reset_index()
        wide.columns = [str(c) for c in wide.columns]
        series = {str(s): f"{s}. {names.get(s, s)}" for s in mine["stage_no"] if str(s) in wide.columns}
        if series:
            show(line_chart(wide, "days", series, title="Recovery: share paid N days after the stage",
                            x_title="Days after the stage", y_title="Paid, % of open at stage",
                            unit="%"), key=f"dunning_curve_{side}")
        show_table(human_headers(mine[STAGE_COLUMNS], currency), f"dunning_{config_id}_v{version}",
                   f"dunning_table_{side}", column_config=column_config(currency), what="stage table")

# -- every configuration and stage ------------------------------------------------------------------
st.subheader("All configurations and stages")
st.caption("Over the period and filters of the sidebar (not restricted by the like-for-like option).")
show_table(human_headers(stages, currency), f"dunning_effectiveness_{view.start:%Y-%m}_{view.end:%Y-%m}",
           "dunning_all", column_config=column_config(currency), what="all stages table")

footer(store)
