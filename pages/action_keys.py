"""Idempotency keys for the action forms of the collector pages.

A key is a per-form nonce plus a digest of what the form submits. A rerun, a double click or the
same content submitted again within REPEAT_WINDOW_S seconds of a success reuses the key, so the
engine writes nothing twice; after a success the nonce changes, so a later, deliberate repeat is
a new action. A message still queued after a failed delivery keeps its key until it is sent.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import streamlit as st

REPEAT_WINDOW_S = 30


def action_key(name: str, *content: object) -> str:
    digest = hashlib.sha1(repr(content).encode()).hexdigest()[:12]
    last = st.session_state.get(f"_last_action_{name}")
    if last and last[0] == digest and time.monotonic() - last[2] < REPEAT_WINDOW_S:
        return last[1]
    nonce = st.session_state.setdefault(f"_action_nonce_{name}", uuid.uuid4().hex[:16])
    return f"{name[:12]}-{nonce}-{digest}"


def action_done(name: str, key: str) -> None:
    """After a successful write under `key`: remember it briefly, and start a new nonce."""
    st.session_state[f"_last_action_{name}"] = (key.rsplit("-", 1)[1], key, time.monotonic())
    st.session_state.pop(f"_action_nonce_{name}", None)
