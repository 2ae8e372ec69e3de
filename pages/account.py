"""My account: who you are signed in as, changing your own password, signing out everywhere."""

import streamlit as st

from analytics.access.roles import ROLE_LABELS
from analytics.access.sessions import end_all_sessions, open_sessions
from analytics.access.users import MIN_PASSWORD_LENGTH, UserError, change_own_password
from pages.plain_text import escape_markdown
from pages.session import get_store, go_to, require_page

actor = require_page("account")
store = get_store()

st.title("My account")
st.markdown(f"**{escape_markdown(actor.name or actor.username)}** · "
            f"username {escape_markdown(actor.username)} · "
            f"{ROLE_LABELS.get(actor.role, actor.role)}")

# -- sessions -------------------------------------------------------------------------------------
st.subheader("Where you are signed in")
count = open_sessions(store, actor.username)
st.write(f"{count} open session{'s' if count != 1 else ''} (one per sign-in, in any browser or device).")


def _sign_out_everywhere() -> None:
    end_all_sessions(store, actor, actor.username)
    go_to("/auth/sign-out")  # the server deletes this browser's cookie


st.button("Sign out everywhere", on_click=_sign_out_everywhere,
          help="Ends every session of your account, this one included.")

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
