"""Risk: the accounts whose risk band worsened this month, each input's contribution, every scored account."""

import pandas as pd
import streamlit as st

from analytics.access.roles import may
from analytics.risk.score import BAND_NAMES, BANDS
from analytics.risk.snapshots import risk_list, score_month
from pages.cached import cached
from pages.filters import dashboard, footer, nothing_matches
from pages.session import get_store, require_page
from pages.tables import show_table

actor = require_page("risk")
store = get_store()
view = dashboard(store, "Risk")

# -- scoring ----------------------------------------------------------------------------------------
st.caption("Score = 100 − points lost for paying late (0.6 × (100 − payment index)), credit-limit utilisation "
           "(0.15 × %), open disputes (0.15 × % of open AR) and broken promises in 90 days (2.5 each, at most 4). "
           "Bands: " + ", ".join(f"{name} from {low}" for name, low, _ in BANDS) + ". The payment index maps "
           "the dollar-weighted days beyond terms of the last 24 months to 0–100 (80 = on time, 50 = 30 days "
           "late); shown with 3 paid invoices or more.")
if may(actor, "score_risk"):
    if st.button(f"Score every customer as of {view.as_of:%d %b %Y}", key="risk_score"):
        result = score_month(store, actor, view.as_of)
        st.success(f"Scored {result['scored']} customers for {result['month']:%B %Y}; "
                   f"risk class changed for {result['risk_class_changes']}.")

scored = cached(risk_list, store, view.as_of, False, view.filters)
if scored.empty:
    if view.filters.is_empty:
        st.info(f"No risk scores for {view.as_of:%B %Y} yet: "
                + ("score the month above." if may(actor, "score_risk") else "an analyst scores the month."))
    else:
        nothing_matches(view, "scored customers")
    footer(store)
    st.stop()

# -- bands ------------------------------------------------------------------------------------------
counts = scored["band"].value_counts()
cols = st.columns(len(BAND_NAMES))
for col, band in zip(cols, BAND_NAMES, strict=True):
    col.metric(f"{band.capitalize()} (customers)", f"{int(counts.get(band, 0))}", border=True)

CONFIG = {
    "customer_id": "Customer", "customer_name": "Name", "band": "Band", "previous_band": "Band the month before",
    "score": st.column_config.NumberColumn("Score", format="%.1f"),
    "previous_score": st.column_config.NumberColumn("Score the month before", format="%.1f"),
    "payment_index": st.column_config.NumberColumn("Payment index", format="%.0f"),
    "index_trend": st.column_config.NumberColumn("Index change over 90 days", format="%+.1f"),
    "utilisation_pct": st.column_config.NumberColumn("Credit limit used (%)", format="%.0f"),
    "over_limit": st.column_config.CheckboxColumn("Over the limit"),
    "dispute_share_pct": st.column_config.NumberColumn("Disputed (% of open AR)", format="%.1f"),
    "broken_promises": st.column_config.NumberColumn("Broken promises (90 days)", format="%d"),
    "payment_points": st.column_config.NumberColumn("− paying late", format="%.1f"),
    "utilisation_points": st.column_config.NumberColumn("− utilisation", format="%.1f"),
    "dispute_points": st.column_config.NumberColumn("− disputes", format="%.1f"),
    "promise_points": st.column_config.NumberColumn("− broken promises", format="%.1f"),
    "suggested_limit": st.column_config.NumberColumn("Suggested credit limit", format="%,.0f"),
    "credit_limit": st.column_config.NumberColumn("Credit limit", format="%,.0f"),
}

# -- worsened this month ----------------------------------------------------------------------------
st.subheader(f"Band worsened in {view.as_of:%B %Y}")
worse = cached(risk_list, store, view.as_of, True, view.filters)
if worse.empty:
    st.info("No account's band worsened this month." if scored["previous_band"].notna().any()
            else "No scores for the month before to compare with.")
else:
    show_table(worse, f"risk_worsened_{view.as_of:%Y-%m}", "risk_worsened", column_config=CONFIG,
               what="accounts that worsened")

# -- every scored account ---------------------------------------------------------------------------
st.subheader("Every scored account, riskiest first")
scored_on = pd.Timestamp(scored["as_of"].iloc[0])
st.caption(f"Scored as of {scored_on:%d %b %Y}. The suggested credit limit is the last 12 months' average "
           "monthly credit sales × " + ", ".join(f"{months:g} ({name})" for name, _, months in BANDS) + ".")
show_table(scored, f"risk_{view.as_of:%Y-%m}", "risk_all", column_config=CONFIG, what="risk scores")

footer(store)
