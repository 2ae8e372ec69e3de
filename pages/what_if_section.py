"""The Overview's what-if section (the ROI calculator) for the current filters and period: one call."""

from __future__ import annotations

import streamlit as st

from analytics.kpis.what_if import what_if
from analytics.store.connection import Store
from pages.cached import cached
from pages.filters import View


def what_if_section(store: Store, view: View) -> None:
    """Draw the section: the three assumptions, then what they are worth (the formulas in `analytics.kpis.what_if`)."""
    currency = view.reporting_currency
    st.subheader("What if")
    cols = st.columns(3)
    days_cut = cols[0].number_input("DSO cut (days)", min_value=0.0, max_value=120.0, value=5.0, step=1.0,
                                    key="what_if_days")
    rate = cols[1].number_input("Cost of capital (% a year)", min_value=0.0, max_value=100.0, value=8.0, step=0.5,
                                key="what_if_rate")
    better = cols[2].number_input("Roll-rate improvement (%)", min_value=0.0, max_value=100.0, value=10.0,
                                  step=1.0, key="what_if_rolls")
    result = cached(what_if, store, view.start, min(view.end, view.as_of), float(days_cut), float(rate),
                    float(better), view.filters)
    cols = st.columns(3)
    cols[0].metric(f"Cash released ({currency})", f"{result.cash_released:,.0f}", border=True,
                   help=f"{days_cut:g} days × average daily credit sales of {result.average_daily_sales:,.2f} "
                        f"({result.credit_sales:,.0f} over {result.days} days).")
    cols[1].metric(f"Financing value a year ({currency})", f"{result.financing_value:,.0f}", border=True,
                   help=f"Cash released × {rate:g} % cost of capital.")
    cols[2].metric(f"Bad debt avoided a year ({currency})", f"{result.bad_debt_avoided:,.0f}", border=True,
                   help=f"Write-offs a year ({result.annual_write_offs:,.0f}) × (1 − (1 − {better:g} %) ^ "
                        f"{result.rolls} roll rates): every write-off has rolled through each bucket.")
    st.caption(f"For the filters and the period {view.start:%b %Y} – {min(view.end, view.as_of):%b %Y}.")
