"""AR Desk: sign-in, role-based navigation and the shared sidebar.

Sign-in: the form's password is checked by `analytics.sign_in` (bcrypt against the store, a
lock-out persisted in `users`, every attempt audited). A success opens a session in the store
(`analytics.sessions`) and sends the browser through the server's `/auth/session` route, which
sets the HttpOnly session cookie (server.py); this Streamlit session is signed in at once. Every
run, reloads included, checks the session in the store (ended, idle and absolute limits, account
disabled, password reset since): the cookie is only a random token naming a server-side session,
so signing out, or out everywhere, ends it for every copy of the cookie.

Every page has one URL for every role (`/overview`, `/worklist`, `/customer?customer=ID`): a page
the role may not open is registered unlisted and says so in words, with links to the role's pages;
"/" shows each role its home page. A deep link is replayed once after sign-in.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlparse

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx

from analytics.access.roles import PAGES, ROLE_LABELS, Actor, allowed_pages, home_page
from analytics.access.sessions import check_session, open_session, session_for_token, sign_out
from analytics.access.sign_in import SignInRules, attempt_sign_in
from analytics.portal.links import PORTAL_COOKIE, portal_customer
from analytics.settings import load_settings
from pages.plain_text import escape_markdown
from pages.session import get_store, go_to


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
# An emoji icon is drawn from a data: URL; a :material/...: one would be fetched from Google's font
# server, which the Content-Security-Policy (server.py) refuses.
st.set_page_config(page_title="AR Desk", page_icon="🏦", layout="wide")
st.session_state.setdefault("_entry_path", urlparse(st.context.url or "").path.strip("/"))
st.session_state.setdefault("_entry_query", {k: st.query_params.get_all(k) for k in st.query_params})

settings = load_settings()
store = get_store()
rules = SignInRules.from_settings()
COOKIE = settings.section("auth")["cookie_name"]


def _signed_out_placeholder() -> None:
    """What a page shows before sign-in: nothing (the sign-in form is drawn by the shell)."""


def _not_in_the_portal() -> None:
    """A staff page's URL opened by a portal session: said in words, with the way back."""
    st.title("Not available in the portal")
    st.write("This page is not available in the portal.")
    st.page_link("pages/portal.py", label="Back to your account")


def _portal_ended() -> None:
    """/portal without a live portal session (ended, expired, revoked): no staff sign-in form here."""
    st.title("Customer portal")
    st.info("Your portal session has ended. Open the link from your latest email again, or ask us for a new one.")


def _entry_url() -> str:
    """The link this browser session opened (path and query), where sign-in sends it back to."""
    path = "/" + (st.session_state.get("_entry_path") or "")
    query = st.session_state.get("_entry_query") or {}
    return path + (f"?{urlencode(query, doseq=True)}" if query else "")


def _sign_out(session_id: str) -> None:
    """The Logout button: end the session in the store now, then let the server delete the cookie."""
    sign_out(store, session_id)
    st.session_state.pop("_session_id", None)
    st.session_state["_ended_session"] = session_id
    go_to("/auth/sign-out")


def _sign_in() -> None:
    """The Login button (a callback, so the same run draws the signed-in app): check the password,
    open a session, and send the browser for its cookie and back to the link it opened."""
    typed_password, st.session_state["sign_in_password"] = st.session_state.get("sign_in_password", ""), ""
    result = attempt_sign_in(store, st.session_state.get("sign_in_username", ""), typed_password, rules=rules)
    if not result.ok:
        st.session_state["_sign_in_message"] = ("error", result.message)
        return
    st.session_state.pop("_sign_in_message", None)
    ticket = open_session(store, result.username, rules=rules)
    st.session_state["_session_id"] = ticket.session_id
    go_to(f"/auth/session?ticket={ticket.ticket}&next={quote(_entry_url(), safe='')}")


# A refusal or sign-out reason stays on the form until the next attempt (any rerun, e.g. a
# keystroke's, would otherwise wipe a message shown once).
notice: str | None = None

# -- the session, checked against the store on every run --------------------------------------
actor: Actor | None = None
session_id = st.session_state.get("_session_id") or session_for_token(store, st.context.cookies.get(COOKIE))
if session_id and session_id != st.session_state.get("_ended_session"):
    check = check_session(store, session_id, rules=rules)
    if check.ok:
        st.session_state["_session_id"] = session_id
        actor = Actor(check.username, check.role, check.name)
        with st.sidebar:
            st.caption(f"Signed in as **{escape_markdown(check.name)}** ({ROLE_LABELS.get(check.role, check.role)})")
            st.button("Logout", key="logout_button", on_click=_sign_out, args=(session_id,))
    else:
        # The cookie may still name this session until the next sign-in replaces it: do not
        # check it again, so the reason shown stays the first one.
        st.session_state.pop("_session_id", None)
        st.session_state["_ended_session"] = session_id
        notice = check.message

# -- a customer's portal session (a portal link's cookie), when no staff session is signed in ---
portal = portal_customer(store, st.context.cookies.get(PORTAL_COOKIE)) if actor is None else None
portal_ended = actor is None and portal is None and (st.session_state.get("_entry_path") == "portal"
                                                     or st.session_state.get("_portal_seen", False))

# -- the sign-in form -------------------------------------------------------------------------
if portal_ended:
    _portal_ended()
elif actor is None and portal is None:
    st.session_state.pop("actor", None)
    st.title("AR Desk")
    if notice:
        st.session_state["_sign_in_message"] = ("warning", notice)
    with st.form("sign_in"):
        st.subheader("Sign in")
        st.text_input("Username", key="sign_in_username", autocomplete="username")
        st.text_input("Password", key="sign_in_password", type="password", autocomplete="current-password")
        st.form_submit_button("Login", on_click=_sign_in)
    kind, text = st.session_state.get("_sign_in_message", (None, None))
    if kind == "error":
        st.error(escape_markdown(text))  # a refusal may quote the username as typed
    elif kind == "warning":
        st.warning(escape_markdown(text))
elif actor is not None:
    st.session_state.pop("_sign_in_message", None)
    st.session_state["actor"] = actor

# -- navigation: every page at its one URL, the role's pages listed ------------------------------
if actor is not None:
    home = home_page(actor.role)
    allowed = allowed_pages(actor.role)
    pages = {}
    for spec in PAGES:
        # A page the role may not open is registered too, unlisted, so its URL is the same for every
        # role: it says in words that this role may not open it (pages.session.require_page).
        pages.setdefault(spec.section, []).append(st.Page(
            spec.path, title=spec.title, icon=spec.icon, url_path=spec.key,
            visibility="visible" if spec in allowed else "hidden"))
    # "/" shows the role's home page. Streamlit serves its default page at "/" only, so the home
    # page made the default would answer "page not found" at /worklist: "/" is an unlisted second
    # entry for the same file (not a redirect, whose extra run could swallow a first click).
    pages[home.section].append(st.Page(home.path, title=home.title, icon=home.icon, url_path="home",
                                       default=True, visibility="hidden"))
    nav = st.navigation(pages, expanded=True)  # every allowed page listed, none behind "View more"
    entry, st.session_state["_entry_path"] = st.session_state.get("_entry_path"), None
    query, st.session_state["_entry_query"] = st.session_state.get("_entry_query"), None
    target = next((p for group in pages.values() for p in group if entry and p.url_path == entry), None)
    if target is not None and target.url_path != nav.url_path:
        st.switch_page(target, query_params=query or None)  # the query string is the view (filters)
    if query and not st.query_params:
        st.query_params.from_dict(query)
elif portal is not None:
    # The portal's own navigation: its page at /portal (and "/"), every staff URL an unlisted page
    # saying it is not available here. No staff page file is registered, so none can run.
    st.session_state.pop("actor", None)
    st.session_state["_portal_seen"] = True  # leaving or expiring later says so, not the staff sign-in
    nav_pages = [st.Page("pages/portal.py", title="Your account", url_path="portal"),
                 st.Page("pages/portal.py", title="Your account", url_path="portal_home", default=True,
                         visibility="hidden"),
                 *(st.Page(_not_in_the_portal, title=spec.title, url_path=spec.key, visibility="hidden")
                   for spec in PAGES)]
    nav = st.navigation(nav_pages, position="hidden")
    entry, st.session_state["_entry_path"] = st.session_state.get("_entry_path"), None
    target = next((p for p in nav_pages if entry and p.url_path == entry), None)
    if target is not None and target.url_path != nav.url_path:
        st.switch_page(target)
else:
    # Every page's path is registered (hidden) so a link opened while signed out resolves: the
    # sign-in form above shows instead of Streamlit's "page not found", and the link is replayed
    # after sign-in. None of these placeholders draws anything.
    placeholders = [st.Page(_signed_out_placeholder, title=spec.title, url_path=spec.key) for spec in PAGES]
    nav = st.navigation([st.Page(_signed_out_placeholder, title="Sign in", url_path="login", default=True),
                         st.Page(_signed_out_placeholder, title="Customer portal", url_path="portal"),
                         *placeholders], position="hidden")
nav.run()
