"""The customer portal: one customer's invoices, statement, disputes, promises, payments and messages.

Reached at `/portal` after a portal link (server.py). The customer comes only from the portal
session cookie (`analytics.portal.links.portal_customer`), never from the URL or a form field; every
read and write goes through `analytics.portal.account`, which takes that customer first. This page
imports no staff page and links to none. Everything the customer or the collector typed is shown
as text.
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from analytics.portal import account
from analytics.portal.links import PORTAL_COOKIE, end_portal_session, portal_customer
from pages.plain_text import escape_markdown
from pages.session import get_store
from pages.tables import csv_bytes

if not st.session_state.get("_portal_seen"):
    # Run without app.py (a fresh server's first session treats pages/ as legacy pages, listing every
    # file): hand over to the shell, whose portal navigation lists this page alone.
    st.session_state.setdefault("_entry_path", "portal")
    st.switch_page("app.py")

store = get_store()
who = portal_customer(store, st.context.cookies.get(PORTAL_COOKIE))
if who is None or st.session_state.get("_portal_left"):
    st.title("Customer portal")
    st.info("Your portal session has ended. Open the link from your latest email again, or ask us for a new one.")
    st.stop()

st.title("Your account")
invoices = account.portal_invoices(store, who)
currency = str(invoices["currency"].iloc[0]) if len(invoices) else ""

# -- invoices -----------------------------------------------------------------------------------
st.subheader("Invoices")
open_items = invoices[invoices["status"] != "paid"]
st.caption(f"{len(open_items)} open invoice(s), {open_items['open_amount'].sum():,.2f} {escape_markdown(currency)} open")
HEADERS = {"document_number": "Invoice", "posting_date": "Invoice date", "due_date": "Due date", "amount": "Amount",
           "open_amount": "Open", "currency": "Currency", "days_overdue": "Days overdue", "status": "Status"}
listed = invoices[list(HEADERS)].rename(columns=HEADERS)
st.dataframe(listed, hide_index=True, column_config={
    "Amount": st.column_config.NumberColumn(format="%.2f"), "Open": st.column_config.NumberColumn(format="%.2f"),
    "Invoice date": st.column_config.DateColumn(), "Due date": st.column_config.DateColumn()})

# -- downloads ----------------------------------------------------------------------------------
st.subheader("Downloads")
left, middle, right = st.columns(3)
# Built only when clicked (a statement is a PDF to draw), and a click does not rerun the page.
left.download_button("Statement of open items (PDF)", partial(account.portal_statement_pdf, store, who),
                     file_name="statement.pdf", mime="application/pdf", key="portal_statement_pdf", on_click="ignore")
middle.download_button("Statement of open items (Excel)", partial(account.portal_statement_excel, store, who),
                       file_name="statement.xlsx", key="portal_statement_excel", on_click="ignore",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
right.download_button("Invoice list (CSV)", partial(csv_bytes, listed), file_name="invoices.csv", mime="text/csv",
                      key="portal_invoices_csv", on_click="ignore")


def _done(what: str, reference: int) -> None:
    st.session_state["_portal_notice"] = f"{what} (reference {reference}). Thank you."


def _tell(call, what: str, *args, **optional) -> None:  # noqa: ANN001, ANN003
    """Run one account write (`args` required, `optional` may be empty); its refusal (PortalError) is
    said on the page, in its own words."""
    if any(arg is None or arg == [] for arg in args):
        st.session_state["_portal_error"] = "Fill in every field (invoice, reason, date) before sending."
        return
    try:
        _done(what, call(store, who, *args, **optional))
    except account.PortalError as exc:
        st.session_state["_portal_error"] = str(exc)


notice, problem = st.session_state.pop("_portal_notice", None), st.session_state.pop("_portal_error", None)
if notice:
    st.success(escape_markdown(notice))
if problem:
    st.error(escape_markdown(problem))

open_numbers = [str(n) for n in open_items["document_number"]]

# -- dispute, promise, "I have paid" ------------------------------------------------------------
dispute_tab, promise_tab, paid_tab = st.tabs(["Dispute an invoice", "Promise to pay", "I have paid"])
with dispute_tab, st.form("portal_dispute", clear_on_submit=True):
    number = st.selectbox("Invoice", open_numbers, index=None, key="dispute_invoice")
    reason = st.selectbox("Reason", account.DISPUTE_REASONS, index=None, key="dispute_reason")
    amount = st.number_input("Amount in dispute", min_value=0.0, step=0.01, format="%.2f", key="dispute_amount",
                             help="Leave 0.00 to dispute the whole open amount of the invoice.")
    comment = st.text_area("Comment", key="dispute_comment", max_chars=2000)
    if st.form_submit_button("Send the dispute"):
        _tell(account.portal_dispute, "Your dispute was recorded", number, reason, amount=amount or None,
              comment=comment)
        st.rerun()
with promise_tab, st.form("portal_promise", clear_on_submit=True):
    numbers = st.multiselect("Invoices", open_numbers, key="promise_invoices")
    amount = st.number_input("Amount you will pay", min_value=0.0, step=0.01, format="%.2f", key="promise_amount")
    promised = st.date_input("Date you will pay", value=None, key="promise_date")
    if st.form_submit_button("Send the promise"):
        _tell(account.portal_promise, "Your promise to pay was recorded", numbers, amount, promised)
        st.rerun()
with paid_tab, st.form("portal_paid", clear_on_submit=True):
    numbers = st.multiselect("Invoices paid", open_numbers, key="paid_invoices")
    paid_on = st.date_input("Date paid", value=None, key="paid_on")
    amount = st.number_input("Amount paid", min_value=0.0, step=0.01, format="%.2f", key="paid_amount")
    reference = st.text_input("Payment reference", key="paid_reference", max_chars=200)
    if st.form_submit_button("Tell us you have paid"):
        _tell(account.portal_remittance, "Your payment was noted", numbers, paid_on, amount, reference)
        st.rerun()

# -- messages -----------------------------------------------------------------------------------
st.subheader("Messages")
thread = account.portal_thread(store, who)
if thread.empty:
    st.caption("No messages yet.")
for message in thread.itertuples(index=False):
    st.caption(escape_markdown(f"{message.at:%Y-%m-%d %H:%M} · {message.author}"))
    st.text(str(message.body))
with st.form("portal_message", clear_on_submit=True):
    body = st.text_area("Your message to our collections team", key="portal_message_body", max_chars=4000)
    if st.form_submit_button("Send the message"):
        _tell(account.portal_message, "Your message was sent", body)
        st.rerun()

st.divider()
if st.button("Leave the portal", key="portal_leave"):
    end_portal_session(store, st.context.cookies.get(PORTAL_COOKIE))
    st.session_state["_portal_left"] = True
    st.rerun()
