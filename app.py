"""AR Desk: sign-in, role-based navigation and the shared sidebar.

Sign-in: the form's password is checked by `analytics.sign_in` (bcrypt against the store, a
lock-out persisted in `users`, every attempt audited); streamlit-authenticator then records the
session and sets its signed cookie. Every page load re-checks the session against the store
(disabled account, password reset since the cookie was issued, idle and absolute limits), because
the JWT cookie itself cannot be revoked.

Traps handled here (see the stack findings): the credentials dict lives in st.cache_resource,
keyed on the users version so account changes take effect on the next load; the cookie is written
by a script on the page (`pages/sign_in_cookie.py`), not by the library's CookieManager component,
whose value sent back on every mount started reruns that lost cookies and undid first clicks; a
deep link is replayed once after sign-in, only to a page the role may open.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from urllib.parse import urlparse

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx

from analytics.roles import PAGES, ROLE_LABELS, Actor, allowed_pages, home_page
from analytics.settings import load_settings
from analytics.sign_in import SignInRules, attempt_sign_in, record_sign_out, session_check
from analytics.users import credentials, users_version
from pages.session import get_store
from pages.sign_in_cookie import use_browser_cookies, write_pending_cookie


def _draw_under_the_main_script() -> None:
    """Give this script's elements the ids they get in a normal run, also in a legacy-pages run.

    A `pages/` folder beside the main script makes Streamlit run it as a legacy (v1) multipage app
    until some run calls `st.navigation`: on a fresh server that is the first session's first run
    (and every AppTest run). This file then runs as the v1 main page, under another page hash than
    in later runs; element ids include that hash, so the sign-in form drawn then had other ids than
    the run its submission started, and the first submission was dropped. Only ids change here.
    """
    ctx = get_script_run_ctx()
    if ctx is not None and ThreadState.get().active_script_hash != ctx.pages_manager.main_script_hash:
        ThreadState.update(active_script_hash=ctx.pages_manager.main_script_hash)


_draw_under_the_main_script()
st.set_page_config(page_title="AR Desk", page_icon=":material/account_balance:", layout="wide")
st.session_state.setdefault("_entry_path", urlparse(st.context.url or "").path.strip("/"))
st.session_state.setdefault("_entry_query", {k: st.query_params.get_all(k) for k in st.query_params})

settings = load_settings()
auth = settings.section("auth")
store = get_store()
rules = SignInRules.from_settings()
cookie_days = float(auth["cookie_expiry_days"])


@st.cache_resource(show_spinner=False, max_entries=2)
def _credentials(store_url: str, version: int) -> dict:
    # One mutable dict per process and users version: a new version (user added, disabled,
    # re-roled, password reset) builds a fresh one. Lock-outs live in the store, not in it.
    return credentials(store)


@st.cache_resource(show_spinner=False)
def _last_seen() -> dict[tuple[str, datetime], datetime]:
    # Last page load per (user, session start), process-wide, so a reload does not reset idling.
    return {}


@st.cache_resource(show_spinner=False)
def _inbox_watcher(store_url: str) -> object:
    # Once per process: ingest files queued by `ardesk import`/`ardesk sync` while the app owns the store.
    from analytics.inbox import start_inbox_watcher

    return start_inbox_watcher(store)


_inbox_watcher(store.url)


def _signed_out_placeholder() -> None:
    """What a page shows before sign-in: nothing (the sign-in form is drawn by the shell)."""


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


def _cookie_issued_at() -> datetime:
    """When the browser's sign-in cookie was issued: its expiry minus the cookie lifetime.

    An unreadable cookie counts as issued long ago, so the session checks refuse it.
    """
    try:
        token = st.context.cookies[auth["cookie_name"]]
        payload = jwt.decode(token, _cookie_key(), algorithms=["HS256"])
        issued = datetime.fromtimestamp(float(payload["exp_date"])) - timedelta(days=cookie_days)
        return issued
    except Exception:  # noqa: BLE001 (any unreadable cookie is simply not trusted)
        return datetime(1970, 1, 1)


use_browser_cookies()
authenticator = stauth.Authenticate(
    _credentials(store.url, users_version(store)), auth["cookie_name"], _cookie_key(), cookie_days,
    auto_hash=False, login_sleep_time=float(os.environ.get("ARDESK_LOGIN_SLEEP", "0")),
)
# A refusal or sign-out reason stays on the form until the next attempt (any rerun, e.g. a
# keystroke's, would otherwise wipe a message shown once).
notice: str | None = None

# -- re-sign-in from the cookie ---------------------------------------------------------------
if not st.session_state.get("authentication_status"):
    try:
        authenticator.login(location="unrendered")  # only the cookie path; our form is below
    except stauth.LoginError:  # a cookie for an account that can no longer sign in
        authenticator.cookie_controller.delete_cookie()
        st.session_state["logout"] = True  # stop trying this session's cookie on every rerun
        notice = "Your account can no longer sign in. Ask an administrator."
    if st.session_state.get("authentication_status"):
        st.session_state["_issued_at"] = _cookie_issued_at()

# -- the session, re-checked against the store on every load ----------------------------------
actor: Actor | None = None
if st.session_state.get("authentication_status"):
    username = st.session_state["username"]
    issued_at = st.session_state.setdefault("_issued_at", datetime.now())
    seen, now = _last_seen(), datetime.now()
    check = session_check(store, username, issued_at, seen.get((username, issued_at)), now, rules)
    if not check.ok:
        seen.pop((username, issued_at), None)
        authenticator.logout(location="unrendered")  # clears the session and deletes the cookie
        st.session_state.pop("_issued_at", None)
        notice = check.message
    else:
        seen[(username, issued_at)] = now
        if len(seen) > 5000:  # forget sessions idle past any limit, so the map stays small
            for key in [k for k, t in seen.items() if now - t > (rules.idle or timedelta(days=cookie_days))]:
                seen.pop(key, None)
        with st.sidebar:
            st.caption(f"Signed in as **{check.name}** ({ROLE_LABELS.get(check.role, check.role)})")
            authenticator.logout(location="sidebar", key="logout_button",
                                 callback=lambda _: record_sign_out(store, username))
        if st.session_state.get("authentication_status"):
            actor = Actor(username, check.role, check.name)
        else:
            seen.pop((username, issued_at), None)
            st.session_state.pop("_issued_at", None)

# -- the sign-in form -------------------------------------------------------------------------
if actor is None:
    st.session_state.pop("actor", None)
    st.title("AR Desk")
    if notice:
        st.session_state["_sign_in_message"] = ("warning", notice)
    with st.form("sign_in"):
        st.subheader("Sign in")
        typed_username = st.text_input("Username", autocomplete="username")
        typed_password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Login")
    if submitted:
        st.session_state.pop("_sign_in_message", None)
        result = attempt_sign_in(store, typed_username, typed_password, rules=rules)
        if result.ok:
            try:  # the password is checked: the library only records the session (its token path)
                authenticator.authentication_controller.login(token={"username": result.username})
            except stauth.LoginError as exc:
                st.session_state["_sign_in_message"] = ("error", str(exc))
        if st.session_state.get("authentication_status"):
            st.session_state["_issued_at"] = datetime.now()
            authenticator.cookie_controller.set_cookie()  # written by the next run (below)
            st.rerun()  # draw the signed-in app; nothing else reruns it now
        elif not result.ok:
            st.session_state["_sign_in_message"] = ("error", result.message)
    kind, text = st.session_state.get("_sign_in_message", (None, None))
    if kind == "error":
        st.error(text)
    elif kind == "warning":
        st.warning(text)
else:
    st.session_state.pop("_sign_in_message", None)
    st.session_state["actor"] = actor

# -- navigation: only the pages the role may open ---------------------------------------------
if actor is not None:
    home = home_page(actor.role)
    pages = {}
    for spec in allowed_pages(actor.role):
        pages.setdefault(spec.section, []).append(
            st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.key, default=spec is home)
        )
    nav = st.navigation(pages, expanded=True)  # every allowed page listed, none behind "View more"
    entry, st.session_state["_entry_path"] = st.session_state.get("_entry_path"), None
    query, st.session_state["_entry_query"] = st.session_state.get("_entry_query"), None
    target = next((p for group in pages.values() for p in group if entry and p.url_path == entry), None)
    if target is not None and target.url_path != nav.url_path:
        st.switch_page(target, query_params=query or None)  # the query string is the view (filters)
    if query and not st.query_params:
        st.query_params.from_dict(query)
else:
    # Every page's path is registered (hidden) so a link opened while signed out resolves: the
    # sign-in form above shows instead of Streamlit's "page not found", and the link is replayed
    # after sign-in. None of these placeholders draws anything.
    placeholders = [st.Page(_signed_out_placeholder, title=spec.title, url_path=spec.key) for spec in PAGES]
    nav = st.navigation([st.Page(_signed_out_placeholder, title="Sign in", url_path="login", default=True),
                         *placeholders], position="hidden")
write_pending_cookie()  # every run until the page has it: a run cut short cannot lose it
nav.run()
