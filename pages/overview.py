"""Overview: the portfolio in ten seconds. KPI tiles against last month, trends, who owes most."""

import pandas as pd
import streamlit as st

from analytics.access.roles import allowed_pages
from analytics.kpis.dso import dso_monthly
from analytics.kpis.summary import kpi_summary, top_overdue_customers
from analytics.reports import monthly_pack as pack_engine
from analytics.reports.pack_files import pack_pdf, pack_xlsx
from pages.cached import cached
from pages.charts import line_chart, show
from pages.filters import dashboard, footer, nothing_matches
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import money_columns, show_table
from pages.what_if_section import what_if_section

actor = require_page("overview")
store = get_store()
view = dashboard(store, "Overview")
currency = view.reporting_currency

# -- KPI tiles: this month against last month -------------------------------------------------------
summary = cached(kpi_summary, store, view.as_of, view.filters)
now, before = summary.iloc[0], summary.iloc[1]
if not now["open_ar"] and not before["open_ar"] and not now["credit_sales"]:
    nothing_matches(view, "customers")


def _value(value: float | None, fmt: str) -> str:
    return "n/a" if pd.isna(value) else format(float(value), fmt)


def _delta(key: str, unit: str, fmt: str) -> str | None:
    if pd.isna(now[key]) or pd.isna(before[key]):
        return None
    return f"{format(float(now[key]) - float(before[key]), '+' + fmt)} {unit}"


previous = f"against {before['as_of']:%b %Y}"
TILES = [  # label, column, value format, delta unit, delta colour (inverse: up is bad), help
    (f"Open AR ({currency})", "open_ar", ",.0f", currency, "off", "Open invoices on the as-of date."),
    (f"Overdue AR ({currency})", "overdue_ar", ",.0f", currency, "inverse", "Open invoices past their due date."),
    ("Overdue share (%)", "overdue_pct", ".1f", "pts", "inverse", "Overdue AR / open AR."),
    ("90+ share (%)", "share_90_plus", ".1f", "pts", "inverse", "AR more than 90 days past due / open AR."),
    ("Bad debt, 12 m (%)", "bad_debt_pct", ".2f", "pts", "inverse",
     "Bad debt as % of sales: write-offs / credit sales over the 12 months ending on the date."),
    ("DSO (days)", "dso", ".1f", "days", "inverse", "Standard DSO: AR at period end / credit sales × days."),
    ("BPDSO (days)", "bpdso", ".1f", "days", "inverse", "Best Possible DSO: current (not yet due) AR / credit sales × days."),
    ("ADD (days)", "add", ".1f", "days", "inverse", "Average days delinquent: DSO − BPDSO."),
    ("CEI (%)", "cei", ".1f", "pts", "normal",
     "Collection effectiveness: (AR start + sales − AR end) / (AR start + sales − current AR end)."),
]
for row in (TILES[:5], TILES[5:]):
    for col, (label, key, fmt, unit, colour, help_text) in zip(st.columns(5), row, strict=False):
        col.metric(label, _value(now[key], fmt), _delta(key, unit, ",.0f" if fmt == ",.0f" else ".1f"),
                   delta_color=colour, help=f"{help_text} Change {previous}.", border=True)
st.caption(f"Tiles: the month of the as-of date up to {view.as_of:%d %b %Y}; changes {previous}.")

# -- trends over the period -------------------------------------------------------------------------
monthly = cached(dso_monthly, store, view.start, view.end, view.filters)
left, right = st.columns(2)
with left:
    show(line_chart(monthly, "month_end", {"dso_standard": "DSO", "bpdso": "Best Possible DSO"},
                    title="DSO against Best Possible DSO", x_title="Month end", y_title="Days", unit="days",
                    dashed=["bpdso"]), key="overview_dso")
with right:
    show(line_chart(monthly, "month_end", {"ar_end": "Open AR", "overdue_ar_end": "Overdue AR",
                                           "over_90_ar_end": "90+ days past due"},
                    title="Open and overdue AR at each month end", x_title="Month end",
                    y_title=f"Amount ({currency})", unit=currency), key="overview_ar")

# -- top overdue customers --------------------------------------------------------------------------
st.subheader("Top overdue customers")
top = cached(top_overdue_customers, store, view.as_of, view.filters, 10)
if top.empty:
    nothing_matches(view, "overdue customers")
else:
    config = money_columns(["open_ar", "overdue_ar", "over_90_ar", "unapplied"], currency) | {
        "customer_id": "Customer", "customer_name": "Name", "segment": "Segment", "collector": "Collector",
        "oldest_days_past_due": st.column_config.NumberColumn("Oldest (days past due)", format="%d"),
    }
    picked = show_table(top, f"top_overdue_{view.as_of}", "overview_top", column_config=config, selectable=True)
    rows = picked.selection.rows if picked is not None else []
    if rows and any(p.key == "customer" for p in allowed_pages(actor.role)):
        customer = top.iloc[rows[0]]
        st.page_link("pages/customer.py",
                     label=f"Open {escape_markdown(customer['customer_name'])} in Customer 360",
                     icon=":material/person:", query_params={"customer": str(customer["customer_id"])})
    elif any(p.key == "customer" for p in allowed_pages(actor.role)):
        st.caption("Select a customer to open it in Customer 360.")

what_if_section(store, view)
# -- the monthly pack of the last month ended by the as-of date: built only when a button is clicked ----
if pack_engine.may_have_pack(actor):
    pack_month = pack_engine.closed_month(view.as_of)
    st.subheader(f"Monthly pack, {pack_month:%B %Y}")
    if problem := pack_engine.month_problem(store, pack_month):
        st.caption(problem)
    else:
        kinds = (("PDF", "pdf", pack_pdf, "application/pdf"),
                 ("Excel", "xlsx", pack_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
        for col, (label, kind, build, mime) in zip(st.columns([3, 3, 2]), kinds, strict=False):
            col.download_button(
                f"Download the monthly pack ({label})",
                lambda build=build: build(pack_engine.monthly_pack(store, actor, pack_month, view.filters)),
                file_name=f"ardesk-pack-{pack_month:%Y-%m}.{kind}", mime=mime, key=f"overview_pack_{kind}",
                icon=":material/download:", on_click="ignore",
                help="The last month ended by the as-of date, for the customers filtered: KPI tiles with their "
                     "changes, aging, DSO, bad debt, roll rates, dunning, top overdue customers, collectors.")

footer(store)
