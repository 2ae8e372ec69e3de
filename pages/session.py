"""What every page needs: the shared store, the signed-in actor, and the page's role check."""

from __future__ import annotations

import streamlit as st
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from analytics.access.roles import PAGES, ROLE_LABELS, Actor, PageSpec, allowed_pages
from analytics.migrations import connect
from analytics.store.connection import Store, StoreError, StoreLocked

_served: Store | None = None  # the store the server opened at start (server.py), when served by it


def serve_store(store: Store | None) -> None:
    """Make `store` the process's store (the server's lifespan calls this once at start)."""
    global _served
    _served = store


@st.cache_resource(show_spinner=False)
def _open_store() -> Store:
    # One store per process when the app runs without server.py (AppTest): this process owns the file.
    return connect()


def get_store() -> Store:
    """The process-wide store; a locked or broken store stops the page with a plain message."""
    if _served is not None:
        return _served
    try:
        return _open_store()
    except (StoreLocked, StoreError) as exc:
        st.error(str(exc))
        st.stop()
        raise  # unreachable: st.stop() ends the run


def go_to(url: str) -> None:
    """Send the browser to `url` on this server (a full page load, e.g. an /auth/ route).

    The message `st.login` sends: the frontend sets `window.location`, so no script of ours runs
    in the page (the Content-Security-Policy allows none). It reaches the browser ahead of the
    rest of this run (script messages are queued in order, after this run's start cleared the
    queue); do not st.rerun() after it: a new run clears messages not sent yet.
    """
    ctx = get_script_run_ctx()
    if ctx is not None:
        msg = ForwardMsg()
        msg.auth_redirect.url = url
        ctx.enqueue(msg)


def current_actor() -> Actor | None:
    return st.session_state.get("actor")


def require_page(key: str) -> Actor:
    """Stop unless the signed-in user's role may open page `key`.

    Navigation lists only the role's pages, but every page has its URL for every role (app.py): a
    page the role may not open stops here, saying so in words (`refusal`), never drawing the page.
    """
    actor = current_actor()
    spec = next(p for p in PAGES if p.key == key)
    if actor is None:
        # A link opened before signing in: Streamlit ran this file without app.py (it also treats a
        # pages/ folder beside the main script as legacy pages). Hand over to the app shell; it
        # remembered the link on this session's first run and replays it after sign-in.
        st.session_state.setdefault("_entry_path", key)
        st.session_state.setdefault("_entry_query", {k: st.query_params.get_all(k) for k in st.query_params})
        st.switch_page("app.py")
    if actor is None or actor.role not in spec.roles:
        refuse(spec, actor)
    return actor


def refusal(spec: PageSpec, role: str | None) -> str:
    """What a page says to a role that may not open it: the role, the page, and the role's pages."""
    mine = ", ".join(p.title for p in allowed_pages(role)) or "none"
    return f"Your role ({ROLE_LABELS.get(role or '', role or 'none')}) may not open the {spec.title} page. Your pages: {mine}."


def refuse(spec: PageSpec, actor: Actor | None) -> None:
    """Say why the page is not shown, link the role's pages, and stop: nothing of the page is drawn."""
    role = actor.role if actor else None
    st.warning(refusal(spec, role))
    for page in allowed_pages(role):
        st.page_link(page.path, label=page.title, icon=page.icon)
    st.stop()
