"""Overview: the portfolio in ten seconds. KPI tiles against last month and last year, trends, who owes most."""

import streamlit as st

from analytics.access.roles import allowed_pages
from analytics.collections.targets import METRICS, dashboard_targets
from analytics.kpis.columns import with_headers
from analytics.kpis.dso import dso_monthly
from analytics.kpis.summary import KPI_TILES, kpi_comparison, kpi_summary, top_overdue_customers
from analytics.reports import monthly_pack as pack_engine
from analytics.reports.pack_files import pack_pdf, pack_xlsx
from pages.cached import cached
from pages.charts import line_chart, show
from pages.filters import dashboard, footer, nothing_matches
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import downloads, money_columns, show_table
from pages.tiles import DELTA_COLOUR, exact, tile_change, tile_help, tile_label, tile_value
from pages.what_if_section import what_if_section

actor = require_page("overview")
store = get_store()
view = dashboard(store, "Overview")
currency = view.reporting_currency

# -- KPI tiles: this month against last month and the same month last year -------------------------
tiles = cached(kpi_comparison, store, view.as_of, view.filters)
targets = cached(dashboard_targets, store, view.collector or None)
TILE_TARGET = {"overdue_ar": "overdue_balance", "share_90_plus": "share_90_plus"}  # tile -> target metric
summary = cached(kpi_summary, store, view.as_of, view.filters)
now, before = summary.iloc[0], summary.iloc[1]
if not now["open_ar"] and not before["open_ar"] and not now["credit_sales"]:
    nothing_matches(view, "customers")
previous = f"{before['as_of']:%b %Y}"
year_ago = f"{tiles.iloc[0]['last_year_as_of']:%b %Y}"
for row in (tiles.iloc[:5], tiles.iloc[5:]):
    for col, tile in zip(st.columns(5), row.itertuples(), strict=False):
        _, unit, good, rule = KPI_TILES[tile.kpi]
        col.metric(tile_label(tile.label, unit, currency), tile_value(tile.value, unit),
                   tile_change(tile.change_month, unit), delta_color=DELTA_COLOUR[good], border=True,
                   help=tile_help(rule, tile, unit, currency, previous, year_ago)
                   + (f"  \nMonthly target: at most {exact(targets[TILE_TARGET[tile.kpi]], unit, currency)}"
                      if TILE_TARGET.get(tile.kpi) in targets else ""))
        col.caption(f"{tile_change(tile.change_year, unit) or 'n/a'} on {year_ago}")
st.caption(f"Tiles: the month of the as-of date up to {view.as_of:%d %b %Y}; the arrow is the change on "
           f"{previous}, the line below the change on {year_ago}. Hover a tile for the exact figures.")
downloads(with_headers(tiles.drop(columns=["unit"]), currency), f"kpis_{view.as_of}", "overview_tiles",
          "the KPI tiles")

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
                    y_title=f"Amount ({currency})", unit=currency,
                    targets={"Overdue AR target": targets["overdue_balance"]} if "overdue_balance" in targets
                    else None), key="overview_ar")
if targets:
    st.caption("Targets: the collectors' monthly targets for the accounts in view "
               + " · ".join(f"{METRICS[m][0].lower()} {METRICS[m][1]} {v:,.{0 if m == 'overdue_balance' else 1}f}"
                            f"{' ' + currency if m == 'overdue_balance' else ' %'}" for m, v in targets.items())
               + " (set on the Team page).")

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
