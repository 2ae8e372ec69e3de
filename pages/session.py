"""What every page needs: the shared store, the signed-in actor, and the page's role check."""

from __future__ import annotations

import streamlit as st

from analytics.roles import PAGES, Actor
from analytics.store import Store, StoreError, StoreLocked, connect


@st.cache_resource(show_spinner=False)
def _open_store() -> Store:
    # One store per server process: this process owns the DuckDB file.
    return connect()


def get_store() -> Store:
    """The process-wide store; a locked or broken store stops the page with a plain message."""
    try:
        return _open_store()
    except (StoreLocked, StoreError) as exc:
        st.error(str(exc))
        st.stop()
        raise  # unreachable: st.stop() ends the run


def current_actor() -> Actor | None:
    return st.session_state.get("actor")


def require_page(key: str) -> Actor:
    """Stop unless the signed-in user's role may open page `key` (navigation already hides it)."""
    actor = current_actor()
    spec = next(p for p in PAGES if p.key == key)
    if actor is None and not st.session_state.get("authentication_status"):
        # A link opened before signing in: Streamlit ran this file without app.py (it also treats a
        # pages/ folder beside the main script as legacy pages). Hand over to the app shell; it
        # remembered the link on this session's first run and replays it after sign-in.
        st.session_state.setdefault("_entry_path", key)
        st.session_state.setdefault("_entry_query", {k: st.query_params.get_all(k) for k in st.query_params})
        st.switch_page("app.py")
    if actor is None or actor.role not in spec.roles:
        st.error(f"Your role may not open {spec.title}.")
        st.stop()
    return actor
