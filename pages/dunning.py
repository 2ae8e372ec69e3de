"""Dunning effectiveness: per configuration and stage, a funnel and recovery curves, two side by side."""

import pandas as pd
import streamlit as st

from analytics.kpis.dunning_effectiveness import dunning_effectiveness, recovery_curve
from pages.cached import cached
from pages.charts import compact, funnel, line_chart, show
from pages.filters import dashboard, footer, stop_when_nothing_matches
from pages.session import get_store, require_page
from pages.tables import money_columns, show_table

require_page("dunning")
store = get_store()
view = dashboard(store, "Dunning effectiveness")
currency = view.reporting_currency
stages = cached(dunning_effectiveness, store, view.start, view.end, view.filters)
if stages.empty:
    stop_when_nothing_matches(store, view, "dunning stages run in the period")
curves = cached(recovery_curve, store, view.start, view.end, view.filters)

# -- pick two configurations to compare --------------------------------------------------------------
configs = (stages[["config_id", "config_version", "config_name"]].drop_duplicates()
           .sort_values(["config_id", "config_version"]).itertuples(index=False))
labels = {(int(c.config_id), int(c.config_version)): f"{c.config_name} (v{int(c.config_version)})" for c in configs}
keys = list(labels)
st.caption("Two configurations over the same period and filters. Shares are of the open amount at the stage.")
left, right = st.columns(2)
chosen = [
    left.selectbox("Configuration", keys, format_func=labels.get, index=0, key="dunning_left"),
    right.selectbox("Compared with", keys, format_func=labels.get, index=min(1, len(keys) - 1), key="dunning_right"),
]

# -- side by side: headline, funnel, recovery curves, stage table ----------------------------------
for column, (config_id, version), side in zip((left, right), chosen, ("left", "right"), strict=True):
    mine = stages[(stages["config_id"] == config_id) & (stages["config_version"] == version)].sort_values("stage_no")
    with column:
        first = mine.iloc[0]
        a, b, c = st.columns(3)
        a.metric("Invoices", f"{int(first['invoices']):,}", border=True,
                 help="Invoices that reached the first stage in the period.")
        b.metric("Paid ≤ 30 d (%)", "n/a" if pd.isna(first["paid_30d_pct"]) else f"{first['paid_30d_pct']:.1f}",
                 border=True, help="Share of the amount at stage 1 paid within 30 days after it.")
        c.metric(f"Recovered ({currency})", compact(mine["recovered"].sum()), border=True,
                 help="Paid or credited after a stage, up to the period end (all stages).")
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
                            x_title="Days after the stage", y_title="Share of the amount paid (%)", unit="%"),
                 key=f"dunning_curve_{side}")
        show_table(mine[["stage_no", "stage_name", "channel", "invoices", "amount", "paid_7d_pct", "paid_14d_pct",
                         "paid_30d_pct", "recovered", "median_days_to_pay", "reached_final_pct"]],
                   f"dunning_{config_id}_v{version}", f"dunning_table_{side}",
                   column_config=money_columns(["amount", "recovered"], currency) | {
                       c: st.column_config.NumberColumn(c, format="%.1f")
                       for c in ("paid_7d_pct", "paid_14d_pct", "paid_30d_pct", "reached_final_pct")})

# -- every configuration and stage ------------------------------------------------------------------
st.subheader("All configurations and stages")
show_table(stages, f"dunning_effectiveness_{view.start:%Y-%m}_{view.end:%Y-%m}", "dunning_all",
           column_config=money_columns(["amount", "recovered"], currency))

footer(store)
