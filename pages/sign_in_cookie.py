"""The sign-in cookie, written by the page itself instead of a cookie component.

streamlit-authenticator 0.4.2 sets and deletes its cookie through extra-streamlit-components'
`CookieManager`, an iframe component that sends a value back on every mount. Each value starts a
rerun on the default page that interrupts the run in progress: a sign-in whose cookie was never
written, a first click undone right after sign-in (stack findings 1b, 1c). Here the library keeps
its token (the signed JWT, same name, expiry and path) and its session logic; only the cookie
writer is swapped for `BrowserCookies`, which sends nothing back and so starts no rerun:

- `set`/`delete` record the wanted cookie in the session;
- `write_pending_cookie()` (called by the app shell on every run) emits it as a one-line
  `document.cookie` script through `st.html`. The script carries a nonce so each write runs once
  per page even when Streamlit remounts the element; the write stays pending for the session, so a
  run cut short by the next one cannot lose it.

Reading the cookie back stays the library's own path (`st.context.cookies` on the next load).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Literal
from urllib.parse import quote

import streamlit as st
from streamlit_authenticator.models import cookie_model

_PENDING = "_cookie_write"
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


class BrowserCookies:
    """The part of `extra_streamlit_components.CookieManager` that streamlit-authenticator uses."""

    def __init__(self, key: str = "init") -> None:
        self.cookies: dict[str, str] = {}  # the library never reads it (it reads st.context.cookies)

    def get(self, cookie: str) -> str | None:
        return self.cookies.get(cookie)

    def set(self, cookie: str, val: str, key: str = "set", path: str = "/",
            expires_at: datetime | None = None, max_age: float | None = None, domain: str | None = None,
            secure: bool | None = None, same_site: bool | Literal["lax", "strict"] | None = "strict") -> None:
        """Same defaults as CookieManager.set: path /, SameSite=Strict, expiry 1 day unless given."""
        expires = (expires_at or datetime.now() + timedelta(days=1)).astimezone(UTC)
        attrs = [f"expires={format_datetime(expires, usegmt=True)}", f"path={path}"]
        if max_age is not None:
            attrs.append(f"max-age={int(max_age)}")
        if domain:
            attrs.append(f"domain={domain}")
        if secure:
            attrs.append("secure")
        if same_site:
            attrs.append(f"samesite={'strict' if same_site is True else same_site}")
        _want(f"{cookie}={quote(str(val), safe='')}; " + "; ".join(attrs))
        self.cookies[cookie] = str(val)

    def delete(self, cookie: str, key: str = "delete") -> None:
        """Expire the cookie with the attributes it was set with (path /, SameSite=Strict)."""
        _want(f"{cookie}=; expires={_EXPIRED}; path=/; samesite=strict")
        self.cookies.pop(cookie, None)


def _want(cookie_line: str) -> None:
    st.session_state[_PENDING] = (secrets.token_hex(8), cookie_line)


def write_pending_cookie() -> None:
    """Emit this session's last cookie write (if any) as a script; a no-op once it has run."""
    pending = st.session_state.get(_PENDING)
    if pending is None:
        return
    nonce, line = pending
    script = (
        "(() => { const done = (window.__ardeskCookieWrites ||= new Set());"
        f" if (done.has({json.dumps(nonce)})) return; done.add({json.dumps(nonce)});"
        f" document.cookie = {json.dumps(line)}; }})();"
    ).replace("</", "<\\/")
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def use_browser_cookies() -> None:
    """Make streamlit-authenticator's CookieModel write through `BrowserCookies` (once per process).

    Must run before `stauth.Authenticate(...)`: its constructor builds the cookie writer.
    """
    if getattr(cookie_model.stx, "CookieManager", None) is not BrowserCookies:
        class _Components:  # stands in for the extra_streamlit_components module inside cookie_model
            CookieManager = BrowserCookies

        cookie_model.stx = _Components
