"""Experiments: champion/challenger tests of dunning policies on a segment. Start one (seeing the segment's
customers, the smallest detectable effect at the chosen split and the expected duration before starting),
read each experiment's result (arms with 95% intervals, difference and lift, the sample-ratio check, the
sequential plan's look and boundary, the verdict), stop it or promote the winner. Analysts and admins
write; the CFO reads."""

import pandas as pd
import streamlit as st

from analytics.access.roles import PermissionDenied, may
from analytics.collections.assignments import assignment_choices
from analytics.collections.segmentation import policies
from analytics.collections.worklist import default_as_of
from analytics.experiments.design import plan
from analytics.experiments.lifecycle import (
    MAX_HOLDOUT_PCT,
    ExperimentError,
    experiments,
    promote_winner,
    segment_policy,
    start_experiment,
    stop_experiment,
)
from analytics.experiments.results import experiment_result
from analytics.settings import load_settings
from pages.charts import interval_chart, show
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import show_table

actor = require_page("experiments")
store = get_store()
writer = may(actor, "run_experiments")
as_of = default_as_of(store)

st.title("Experiments")
st.caption("Champion/challenger: a segment's customers are split at random (hash of the experiment and the "
           "customer, stored once) between the current policy and a new one; dunning follows each customer's "
           "arm. The result says which collects more, by how much, and how sure we are. "
           "`ardesk experiments` does the same from the command line.")
if flash := st.session_state.pop("experiments_flash", None):
    st.success(flash)

known = policies(store)
active = known[known["active"]]
names = {int(r.config_id): str(r.name) for r in known.itertuples(index=False)}
segments = assignment_choices(store)["segment"]  # the segments customers have


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value * 100:.{digits}f} %"


# -- start an experiment -----------------------------------------------------------------------------------
if writer:
    with st.expander("Start an experiment", expanded=False):
        if len(active) < 2 or not segments:
            st.info("An experiment needs two active dunning policies and a segment with customers.")
        else:
            policy_ids = [int(c) for c in active["config_id"]]
            left, right = st.columns(2)
            segment = left.selectbox("Segment", segments, key="exp_segment")
            name = right.text_input("Name", key="exp_name", max_chars=100)
            current = segment_policy(store, segment)
            first = policy_ids.index(current) if current in policy_ids else 0
            champion = left.selectbox("Champion (current policy)", policy_ids, index=first, format_func=names.get,
                                      key=f"exp_champion_{segment}",
                                      help="by default the policy most of the segment's customers follow today")
            challenger = right.selectbox("Challenger (new policy)", policy_ids, index=0 if first else 1,
                                         format_func=names.get, key=f"exp_challenger_{segment}")
            split = left.radio("Split champion / challenger", ["50/50", "90/10 (safe)"], horizontal=True,
                               key="exp_split")
            holdout = right.number_input("No-contact holdout (%)", 0, MAX_HOLDOUT_PCT, 0, key="exp_holdout",
                                         help="customers in it get no dunning at all: measures what dunning adds")
            planned_days = left.number_input("Planned days", 30, 365, 90, key="exp_days")
            looks = right.number_input("Planned looks (O'Brien-Fleming)", 1, 10, 5, key="exp_looks")
            why = st.text_input("Why (kept with the experiment)", key="exp_why")
            challenger_pct = 50 if split == "50/50" else 10
            design = plan(store, segment, challenger_pct, int(holdout), as_of)
            a, b, c, d = st.columns(4)
            a.metric("Customers in the segment", f"{design['customers']:,}")
            b.metric("Overdue now (measurable)", f"{design['overdue_customers']:,}")
            mde = design["minimum_detectable_effect"]
            c.metric("Detectable effect at this split", "n/a" if mde is None else f"{mde * 100:.1f} points",
                     help="the smallest rise of the collected share this split can detect (α 0.05, 80% power)")
            days = design["expected_days"]
            d.metric("Expected duration for +5 points", "never at this pace" if days is None or days == float("inf")
                     else f"{days:,.0f} days")
            st.caption(
                f"Baseline {_pct(design['baseline_used'])} of the overdue balance collected within 30 days"
                f"{'' if design['baseline'] is not None else ' (assumed: the segment has no history yet)'}; "
                f"arms now {design['champion_customers']:,} champion / {design['challenger_customers']:,} "
                f"challenger; α = 0.05 two-sided, 80% power. Detecting +5 points needs "
                f"{design['customers_needed'] or 0:,} customers in all; the segment gains "
                f"{design['arrivals_per_day']:.2f} new customers a day.")
            if st.button("Start experiment", type="primary", key="exp_start"):
                try:
                    started = start_experiment(store, actor, name, segment, champion, challenger,
                                               challenger_pct=challenger_pct, holdout_pct=int(holdout),
                                               looks=int(looks), planned_days=int(planned_days), why=why,
                                               as_of=as_of)
                except (ExperimentError, PermissionDenied) as exc:
                    st.error(escape_markdown(str(exc)))
                else:
                    st.session_state["experiments_flash"] = escape_markdown(
                        f"Started “{name}”: {started['customers']:,} customers assigned.")
                    st.rerun()

# -- the experiments -----------------------------------------------------------------------------------------
listed = experiments(store)
if listed.empty:
    st.info("No experiment yet." + (" Start one above." if writer else ""))
    st.stop()
table = listed[["name", "segment", "champion", "challenger", "challenger_pct", "holdout_pct", "customers",
                "started_on", "status", "ended_on"]].rename(columns={
    "name": "Experiment", "segment": "Segment", "champion": "Champion", "challenger": "Challenger",
    "challenger_pct": "Challenger share (%)", "holdout_pct": "Holdout (%)", "customers": "Customers",
    "started_on": "Started", "status": "Status", "ended_on": "Ended"})
for column in ("Started", "Ended"):
    table[column] = pd.to_datetime(table[column]).dt.date
show_table(table, "experiments", "exp_list", what="experiments list")

chosen = st.selectbox("Result of", listed["name"].tolist(), key="exp_chosen")
row = listed[listed["name"] == chosen].iloc[0].to_dict()
result = experiment_result(store, row, as_of)
currency = load_settings().reporting_currency

st.subheader(escape_markdown(f"{row['name']}: {row['champion']} vs {row['challenger']} on {row['segment']}"))
started_line = (f"{result['metric_label']}, as of {as_of}. Started {pd.Timestamp(row['started_on']):%Y-%m-%d} by "
                f"{row['started_by']}" + (f": {row['why']}" if row.get("why") else ""))
st.caption(escape_markdown(started_line if started_line.endswith((".", "?", "!")) else started_line + "."))
arms = pd.DataFrame(result["arms"])
arms[arms.columns.drop("arm")] = arms[arms.columns.drop("arm")].apply(pd.to_numeric)  # None (not measured): NaN
shown = pd.DataFrame({
    "Arm": arms["arm"].str.capitalize(), "Customers assigned": arms["assigned"],
    "Customers measured": arms["customers"], f"Overdue at entry ({currency})": arms["overdue"].round(2),
    f"Collected in 30 days ({currency})": arms["collected"].round(2),
    "Collected share (%)": (arms["ratio"] * 100).round(2), "95% CI low (%)": (arms["low"] * 100).round(2),
    "95% CI high (%)": (arms["high"] * 100).round(2),
    "Paid in full (%)": (arms["paid_in_full_share"] * 100).round(1),
    "Median days to pay": arms["median_days_to_pay"],
    "Disputes per customer": arms["disputes_per_customer"].round(3),
    "Escalations per customer": arms["escalations_per_customer"].round(3)})
show_table(shown, f"experiment-{row['experiment_id']}-arms", "exp_arms", what="arms table")

comparison = result["comparison"]
left, right = st.columns(2)
if comparison["difference"] is None:
    left.metric("Difference (challenger − champion)", "n/a")
else:
    left.metric("Difference (challenger − champion)", f"{comparison['difference'] * 100:+.2f} points")
    left.caption(f"95% CI {comparison['difference_low'] * 100:+.2f} to {comparison['difference_high'] * 100:+.2f} "
                 "points (delta method, arms independent)")
if comparison["lift"] is None:
    right.metric("Relative lift", "n/a")
else:
    right.metric("Relative lift", f"{comparison['lift'] * 100:+.1f} %")
    right.caption(f"95% CI {comparison['lift_low'] * 100:+.1f} % to {comparison['lift_high'] * 100:+.1f} % "
                  "(delta method on the ratio of the arms' shares)")
srm = result["srm"]
planned = ", ".join(f"{arm} {share * 100:.1f} %" for arm, share in srm["planned"].items() if share > 0)
observed = ", ".join(f"{arm} {n:,}" for arm, n in sorted(srm["observed"].items()))
st.write(f"Sample ratio check: assigned {observed} against the planned {planned}: χ² = {srm['chi2']:.2f} "
         f"({srm['df']} df), p = {srm['p']:.3g}" + (" — **blocks the verdict**" if srm["blocked"] else " — fine"))
seq = result["sequential"]
boundary = seq["boundary"]
st.write(f"Sequential method: {seq['method']}, {seq['looks']} looks over {seq['planned_days']} days; "
         f"day {seq['days_elapsed']}, look {seq['look']} of {seq['looks']}"
         + (f", boundary |z| ≥ {boundary:.2f}" if boundary is not None else "")
         + (f", |z| now {abs(comparison['z']):.2f}" if comparison["z"] is not None else "") + ".")
verdict = result["verdict"]
{"challenger_wins": st.success, "champion_wins": st.warning, "blocked": st.error}.get(
    verdict["decision"], st.info)(escape_markdown(f"Verdict: {verdict['reason']}"))

measured = arms.dropna(subset=["ratio", "low", "high"])
if not measured.empty:
    show(interval_chart(measured["arm"].str.capitalize().tolist(), (measured["ratio"] * 100).tolist(),
                        (measured["low"] * 100).tolist(), (measured["high"] * 100).tolist(),
                        title="Collected within 30 days, per arm, with 95% intervals", x_title="Arm",
                        y_title="Share of the overdue balance at entry (%)", unit="%"), key="exp_chart")

if writer and row["status"] == "running":
    reason = st.text_input("Reason (kept in the audit log)", key="exp_reason")
    stop_col, promote_col, _ = st.columns([1, 2, 3])
    try:
        if stop_col.button("Stop", key="exp_stop"):
            stop_experiment(store, actor, int(row["experiment_id"]), reason, as_of)
            st.session_state["experiments_flash"] = escape_markdown(f"Stopped “{row['name']}”.")
            st.rerun()
        winner = "champion" if verdict["decision"] == "champion_wins" else "challenger"
        if promote_col.button(f"Promote the {winner} ({names.get(int(row[f'{winner}_config_id']), '')})",
                              key="exp_promote"):
            done = promote_winner(store, actor, int(row["experiment_id"]), winner, reason, as_of)
            st.session_state["experiments_flash"] = escape_markdown(
                f"Promoted the {winner}: {done['customers_changed']:,} customers changed policy.")
            st.rerun()
    except (ExperimentError, PermissionDenied) as exc:
        st.error(escape_markdown(str(exc)))
