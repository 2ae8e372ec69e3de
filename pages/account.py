"""My account: who you are signed in as, and changing your own password."""

import streamlit as st

from analytics.roles import ROLE_LABELS
from analytics.users import MIN_PASSWORD_LENGTH, UserError, change_own_password
from pages.plain_text import escape_markdown
from pages.session import get_store, require_page

actor = require_page("account")
store = get_store()

st.title("My account")
st.markdown(f"**{escape_markdown(actor.name or actor.username)}** · "
            f"username {escape_markdown(actor.username)} · "
            f"{ROLE_LABELS.get(actor.role, actor.role)}")

# -- change password ------------------------------------------------------------------------------
with st.form("change_password", clear_on_submit=True):
    st.subheader("Change your password")
    current = st.text_input("Current password", type="password", autocomplete="current-password")
    new = st.text_input(f"New password (at least {MIN_PASSWORD_LENGTH} characters)", type="password",
                        autocomplete="new-password")
    repeat = st.text_input("New password again", type="password", autocomplete="new-password")
    submitted = st.form_submit_button("Change password")
if submitted:
    if new != repeat:
        st.error("The two new passwords differ; nothing was changed.")
    else:
        try:
            change_own_password(store, actor, current, new)
        except UserError as exc:
            st.error(escape_markdown(exc))
        else:
            st.success("Password changed. Every session signed in with the old one ends, this one on the "
                       "next page load: sign in again with the new password.")
st.caption("An administrator can reset a forgotten password under Users and assignments, or with "
           "`ardesk users reset-password USERNAME`.")
