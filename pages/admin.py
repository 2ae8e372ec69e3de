"""Users and assignments: who may sign in with which role, and which collector works which customer."""

from collections.abc import Callable

import pandas as pd
import streamlit as st

from analytics.access.roles import ROLE_LABELS, ROLES, PermissionDenied
from analytics.access.sessions import end_all_sessions
from analytics.access.users import (
    UserError,
    add_user,
    list_users,
    set_active,
    set_password,
    set_role,
    unlock_user,
)
from analytics.collections.assignments import (
    AssignmentError,
    assign_customers,
    assignment_choices,
    assignment_preview,
    collector_load,
    find_customers,
)
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page
from pages.tables import data_table

actor = require_page("admin")
store = get_store()

st.title("Users and assignments")
for message in st.session_state.pop("admin_done", []):
    st.success(message)


def _done(message: str) -> None:
    # Shown after the rerun that refreshes the tables below; markdown, so user text in it is escaped.
    st.session_state.setdefault("admin_done", []).append(message)
    st.rerun()


def _act(write: Callable[[], object], message: str) -> None:
    """Run one account write: refused in plain words, or done and the page refreshed."""
    try:
        write()
    except (UserError, PermissionDenied) as exc:
        st.error(escape_markdown(exc))
    else:
        _done(message)


users_tab, assign_tab = st.tabs(["Users", "Assign customers"])

# -- users: the list ----------------------------------------------------------------------------
with users_tab:
    accounts = list_users(store)
    data_table(
        accounts, hide_index=True, width="stretch",
        column_config={
            "active": st.column_config.CheckboxColumn("active"),
            "can_sign_in": st.column_config.CheckboxColumn("has password"),
            "failed_logins": st.column_config.NumberColumn("failed sign-ins"),
            "locked_until": st.column_config.DatetimeColumn("locked until", format="YYYY-MM-DD HH:mm"),
            "last_login_at": st.column_config.DatetimeColumn("last sign-in", format="YYYY-MM-DD HH:mm"),
            "created_at": None,
        },
    )

    # -- users: change one account ------------------------------------------------------------
    st.subheader("Change an account")
    names = accounts.username.tolist()
    chosen = st.selectbox("Account", names, index=None, placeholder="Choose an account", key="admin_user")
    if chosen:
        row = accounts[accounts.username == chosen].iloc[0]
        who = escape_markdown(chosen)  # messages are markdown
        left, middle, right = st.columns(3)
        with left:
            new_role = st.selectbox("Role", ROLES, index=ROLES.index(row.role),
                                    format_func=lambda r: ROLE_LABELS[r], key="admin_role")
            if st.button("Change role", disabled=new_role == row.role):
                _act(lambda: set_role(store, actor, chosen, new_role), f"{who} is now {ROLE_LABELS[new_role]}.")
        with middle:
            with st.form("admin_password", clear_on_submit=True):
                new_password = st.text_input("New password", type="password")
                if st.form_submit_button("Reset password"):
                    _act(lambda: set_password(store, actor, chosen, new_password),
                         f"Password of {who} reset; their open sessions end on their next page load.")
        with right:
            if bool(row.active):
                if st.button("Disable account", type="primary"):
                    _act(lambda: set_active(store, actor, chosen, False),
                         f"{who} is disabled and is signed out on their next page load.")
            elif st.button("Enable account"):
                _act(lambda: set_active(store, actor, chosen, True), f"{who} is enabled.")
            if int(row.failed_logins) or pd.notna(row.locked_until):
                if st.button("Clear lock-out"):
                    _act(lambda: unlock_user(store, actor, chosen), f"{who} may sign in again.")
            if st.button("Sign out everywhere", key="admin_sign_out_everywhere",
                         help="Ends every open session of this account, in any browser."):
                _act(lambda: end_all_sessions(store, actor, chosen), f"{who} is signed out everywhere.")

    # -- users: add one -----------------------------------------------------------------------
    st.subheader("Add an account")
    with st.form("admin_add_user", clear_on_submit=True):
        a, b = st.columns(2)
        username = a.text_input("Username", help="letters, digits, dots, dashes and underscores")
        full_name = b.text_input("Full name")
        email = a.text_input("Email")
        role = b.selectbox("Role", ROLES, format_func=lambda r: ROLE_LABELS[r])
        password = a.text_input("Password", type="password", help="at least 8 characters")
        team = b.text_input("Team", help="collections, sales, finance, legal, logistics, billing, credit")
        if st.form_submit_button("Add account"):
            _act(lambda: add_user(store, actor, username, full_name or username, role, email=email or None,
                                  password=password or None, team=team or None),
                 f"Added {escape_markdown(username.strip().lower())} ({ROLE_LABELS[role]}).")

# -- assignments: who works what now ------------------------------------------------------------
with assign_tab:
    load = collector_load(store)
    if load.empty:
        st.info("There is no active collector yet. Add an account with the Collector role first.")
        st.stop()
    data_table(load, hide_index=True, width="stretch")
    collector = st.selectbox("Assign to collector", load.collector.tolist(), key="assign_collector",
                             format_func=lambda u: f"{u} ({load.set_index('collector').name.get(u, '')})")

    # -- assignments: one by one --------------------------------------------------------------
    st.subheader("Chosen customers")
    search = st.text_input("Find customers by id or name", key="assign_search")
    if search.strip():
        found = find_customers(store, search)
        picked = st.multiselect(
            "Customers", found.customer_id.tolist(), key="assign_picked",
            format_func=lambda c: f"{c} · {found.set_index('customer_id').name.get(c, '')} "
                                  f"(now {found.set_index('customer_id').collector.get(c) or 'unassigned'})",
        )
        if st.button("Assign chosen customers", disabled=not picked):
            changed = assign_customers(store, actor, collector, customer_ids=picked)
            _done(f"{changed} customer(s) assigned to {escape_markdown(collector)}.")

    # -- assignments: in bulk -----------------------------------------------------------------
    st.subheader("In bulk, by segment or country")
    choices = assignment_choices(store)
    a, b = st.columns(2)
    segment = a.selectbox("Segment", choices["segment"], index=None, placeholder="any segment")
    country = b.selectbox("Country", choices["country"], index=None, placeholder="any country")
    if segment or country:
        preview = assignment_preview(store, segment=segment, country=country)
        total = int(preview.customers.sum())
        st.caption(f"{total:,} customers match; today they are with:")
        data_table(preview.fillna({"collector": "(unassigned)"}), hide_index=True)
        if st.button(f"Assign all {total:,} to {escape_markdown(collector)}", type="primary"):
            try:
                changed = assign_customers(store, actor, collector, segment=segment, country=country)
                _done(f"{changed:,} customer(s) assigned to {escape_markdown(collector)}; "
                      f"{total - changed:,} already were.")
            except AssignmentError as exc:
                st.error(escape_markdown(exc))
