"""Overview: the portfolio in ten seconds."""

import streamlit as st

from analytics.ledger import ledger_bounds, portfolio_summary
from analytics.settings import load_settings
from pages.session import get_store, require_page

require_page("overview")
store = get_store()
currency = load_settings().reporting_currency

st.title("Overview")

# -- as-of date -------------------------------------------------------------------------------
first, last = ledger_bounds(store)
if last is None:
    st.info("The ledger is empty. Import an ERP export or run `ardesk demo` to see the portfolio.")
    st.stop()
as_of = st.date_input("As of", value=last, min_value=first, key="overview_as_of")

# -- headline numbers -------------------------------------------------------------------------
summary = portfolio_summary(store, as_of).iloc[0]
open_ar, overdue = float(summary.open_ar), float(summary.overdue_ar)
cols = st.columns(4)
cols[0].metric(f"Open AR ({currency})", f"{open_ar:,.0f}")
cols[1].metric(f"Overdue AR ({currency})", f"{overdue:,.0f}",
               help="Open invoice amounts past their due date on the as-of date.")
cols[2].metric("Overdue share", f"{overdue / open_ar:.1%}" if open_ar else "n/a")
cols[3].metric("Customers with a balance", f"{int(summary.customers_with_balance):,}",
               help=f"of {int(summary.customers):,} customers")
if float(summary.unapplied_credits):
    st.caption(f"Unapplied cash and open credit notes: {float(summary.unapplied_credits):,.0f} {currency} "
               f"(net balance {float(summary.net_balance):,.0f} {currency}).")
if int(summary.missing_fx):
    st.warning(f"{int(summary.missing_fx)} open items have no FX rate on or before {as_of} and are left out.")
