"""Aging: buckets over time, the aging table, and the drill-down from a bucket or row to invoices."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from analytics.access.roles import allowed_pages
from analytics.kpis.aging import TOTAL, UNAPPLIED, aging_buckets, aging_trend, bucket_labels, open_invoices
from analytics.kpis.summary import kpi_comparison
from pages.cached import cached
from pages.charts import AGE_COLOURS, bar_chart, show
from pages.filters import dashboard, footer, nothing_matches, stop_when_nothing_matches
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import money_columns, show_table
from pages.tiles import compared_tile, money_tile

actor = require_page("aging")
store = get_store()
view = dashboard(store, "Aging")
currency = view.reporting_currency
labels = bucket_labels("due")
GROUPS = {"customer": "Customer", "segment": "Segment", "collector": "Collector"}
DRILL_FIELD = {"customer": "customer_id", "segment": "segment", "collector": "collector"}

# -- headline: the whole view as of the date --------------------------------------------------------
total = cached(aging_buckets, store, view.as_of, view.filters, "total").iloc[0]
# buckets past due are labelled "low-high" or "low+"; those starting after day 90 are "90+"
over_90 = sum(total[b] for b in labels[1:] if int(b.split("-")[0].rstrip("+")) >= 90)
cols = st.columns(4)
# the same figures as the Overview's tiles (open AR, overdue AR as of the date), with their comparisons
compared = cached(kpi_comparison, store, view.as_of, view.filters)
compared_tile(cols[0], compared, "open_ar", "Open AR", currency, "Open invoices on the as-of date.")
compared_tile(cols[1], compared, "overdue_ar", "Past due", currency, "Open invoices past their due date.")
money_tile(cols[2], "90+ days past due", over_90, currency, "Open invoices more than 90 days past due.")
money_tile(cols[3], "Unapplied cash", total[UNAPPLIED], currency,
           "Payments and credit notes not yet applied to an invoice; reported on their own line.")

# -- buckets at each month end ----------------------------------------------------------------------
trend = cached(aging_trend, store, view.start, view.end, view.filters)
wide = trend.pivot_table(index="month_end", columns="bucket", values="amount", aggfunc="sum", sort=False)
wide = wide.reindex(columns=labels, fill_value=0.0).reset_index()
if wide[labels].to_numpy().sum() == 0:
    nothing_matches(view, "open invoices")
else:
    show(bar_chart(wide, "month_end", {b: b for b in labels}, stacked=True, colours=AGE_COLOURS,
                   title="Open AR by days past due, at each month end", x_title="Month end",
                   y_title=f"Open AR ({currency})", unit=currency), key="aging_trend")

# -- the aging table --------------------------------------------------------------------------------
st.subheader(f"Aging as of {view.as_of:%d %b %Y}")
by = st.segmented_control("Group by", list(GROUPS), format_func=GROUPS.get, default="customer",
                          key="aging_by") or "customer"
table = cached(aging_buckets, store, view.as_of, view.filters, by)
if table.empty:
    stop_when_nothing_matches(store, view)

amounts = [*labels, TOTAL, UNAPPLIED, "Net balance"]
keys = ["customer_id", "customer_name"] if by == "customer" else [by]
totals = pd.DataFrame([{**{k: "" for k in keys}, keys[-1]: "All", **table[amounts].sum().round(2).to_dict()}])
shown = pd.concat([table[keys + amounts], totals], ignore_index=True)
shown[amounts] = shown[amounts].astype(float)
config = money_columns(amounts, currency) | {"customer_id": "Customer", "customer_name": "Name",
                                              by: GROUPS[by] if by != "customer" else "Name"}
st.caption("Select a row, or pick a bucket below, to see the invoices behind it. The last row is the total.")
selection = show_table(shown, f"aging_{by}_{view.as_of}", "aging_table", column_config=config,
                       selectable=True, height="auto" if len(shown) <= 10 else 390)

# -- drill-down: a bucket and/or a row -> its invoices ----------------------------------------------
st.subheader("Invoices behind the numbers")
bucket = st.selectbox("Bucket", ["All buckets", *labels, UNAPPLIED], key="aging_bucket")
rows = selection.selection.rows if selection is not None else []
row = shown.iloc[rows[0]] if rows else None
drill = view.filters
scope = view.describe()  # markdown: user values in it are escaped
if row is not None and rows[0] < len(table):  # the last row is the total: the whole view
    value = row[keys[0]]
    if pd.isna(value):
        st.info(f"The selected row has no {GROUPS[by].lower()}; pick a bucket to see its invoices.")
        row = None
    else:
        drill = replace(drill, **{DRILL_FIELD[by]: (str(value),)})
        scope = f"{GROUPS[by].lower()} {escape_markdown(row[keys[-1]])}"
if row is None and bucket == "All buckets":
    st.caption("Pick a bucket or select a row in the table above.")
else:
    invoices = cached(open_invoices, store, view.as_of, drill, None if bucket == "All buckets" else bucket)
    if invoices.empty:
        st.info(f"No open items in {bucket.lower()} for {scope} as of {view.as_of:%d %b %Y}.")
    else:
        st.markdown(f"**{len(invoices):,} items** in {bucket.lower()} for {scope}: "
                    f"{invoices['open_amount_reporting'].sum():,.0f} {currency}")
        columns = ["customer_name", "document_number", "entry_type", "posting_date", "due_date",
                   "days_past_due", "bucket", "currency", "amount", "open_amount", "open_amount_reporting",
                   "customer_id"]
        picked = show_table(
            invoices[columns], f"open_items_{view.as_of}", "aging_invoices", selectable=True,
            height="auto" if len(invoices) <= 10 else 390,
            column_config={
                "customer_name": "Customer", "document_number": "Document", "entry_type": "Type",
                "posting_date": "Posted", "due_date": "Due", "days_past_due": "Days past due",
                "bucket": "Bucket", "currency": "Currency",
                "amount": st.column_config.NumberColumn("Amount", format="%,.2f"),
                "open_amount": st.column_config.NumberColumn("Open", format="%,.2f"),
                "open_amount_reporting": st.column_config.NumberColumn(f"Open ({currency})", format="%,.0f"),
                "customer_id": "Customer id",
            },
        )
        # -- on to the customer ---------------------------------------------------------------------
        chosen = picked.selection.rows if picked is not None else []
        customer = invoices.iloc[chosen[0]] if chosen else (invoices.iloc[0] if by == "customer" and
                                                             row is not None else None)
        if customer is not None and any(p.key == "customer" for p in allowed_pages(actor.role)):
            st.page_link("pages/customer.py",
                         label=f"Open {escape_markdown(customer['customer_name'])} in Customer 360",
                         icon=":material/person:", query_params={"customer": str(customer["customer_id"])})
        elif customer is None:
            st.caption("Select an invoice to open its customer.")

footer(store)
