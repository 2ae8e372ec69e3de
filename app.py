"""AR Desk: sign-in, role-based navigation and the shared sidebar.

Traps handled here (see the stack findings): the credentials dict lives in st.cache_resource so
the failed-login counter survives reruns; no st.rerun() after login or logout (it would drop the
cookie component); a deep link is replayed once after sign-in, only to a page the role may open.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import streamlit as st
import streamlit_authenticator as stauth

from analytics.roles import ROLE_LABELS, Actor, allowed_pages
from analytics.settings import load_settings
from analytics.users import credentials
from pages.session import get_store

st.set_page_config(page_title="AR Desk", page_icon=":material/account_balance:", layout="wide")
st.session_state.setdefault("_entry_path", urlparse(st.context.url or "").path.strip("/"))

settings = load_settings()
auth = settings.section("auth")
store = get_store()


@st.cache_resource(show_spinner=False)
def _inbox_watcher(store_url: str) -> object:
    # Once per process: ingest files queued by `ardesk import`/`ardesk sync` while the app owns the store.
    from analytics.inbox import start_inbox_watcher

    return start_inbox_watcher(store)


_inbox_watcher(store.url)


@st.cache_resource(show_spinner=False)
def _credentials() -> dict:
    return credentials(store)


def _cookie_key() -> str:
    key = os.environ.get("ARDESK_COOKIE_KEY")
    if key:
        return key
    path = settings.path("store", "path").parent / ".cookie_key"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


authenticator = stauth.Authenticate(
    _credentials(), auth["cookie_name"], _cookie_key(), float(auth["cookie_expiry_days"]),
    auto_hash=False, login_sleep_time=float(os.environ.get("ARDESK_LOGIN_SLEEP", "0")),
)

if st.session_state.get("authentication_status"):
    username = st.session_state["username"]
    role = (st.session_state.get("roles") or ["viewer"])[0]
    st.session_state["actor"] = Actor(username, role, st.session_state.get("name") or username)
    with st.sidebar:
        st.caption(f"Signed in as **{st.session_state['name']}** ({ROLE_LABELS.get(role, role)})")
        authenticator.logout(location="sidebar", key="logout_button")
else:
    st.session_state.pop("actor", None)
    st.title("AR Desk")
    try:
        authenticator.login(location="main", max_login_attempts=int(auth["max_failed_logins"]))
    except stauth.LoginError as exc:
        st.error(str(exc))
    if st.session_state.get("authentication_status"):
        st.stop()  # the cookie component triggers the next run; st.rerun() would lose the cookie
    elif st.session_state.get("authentication_status") is False:
        st.error("Username or password is incorrect.")

actor: Actor | None = st.session_state.get("actor")
if actor is not None:
    specs = allowed_pages(actor.role)
    pages = {}
    for spec in specs:
        pages.setdefault(spec.section, []).append(
            st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.key, default=spec is specs[0])
        )
    nav = st.navigation(pages)
    entry, st.session_state["_entry_path"] = st.session_state.get("_entry_path"), None
    target = next((p for group in pages.values() for p in group if entry and p.url_path == entry), None)
    if target is not None and target.url_path != nav.url_path:
        st.switch_page(target)
else:
    nav = st.navigation([st.Page(lambda: None, title="Sign in", url_path="login")], position="hidden")
nav.run()
