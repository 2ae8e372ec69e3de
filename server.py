"""AR Desk's web server: the Streamlit app (`app.py`) plus what only an HTTP server can do.

`make run` starts it (`streamlit run server.py`: Streamlit finds `app` below and serves it with
uvicorn). On top of the app:

- Lifespan: the store is opened once per process when the server starts, the inbox watcher starts
  with it (jobs queued while the app was down are ingested without anyone opening a page), and at
  shutdown the watcher stops and the store closes.
- `/auth/session?ticket=...&next=...`: the sign-in form hands the browser a one-time ticket; this
  route exchanges it for the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) and
  sends the browser on to `next`, a path on this site. Page scripts never see the cookie.
- `/auth/sign-out`: ends the session the cookie names, deletes the cookie, back to `/`.
- `/portal/t/{token}`: a customer's portal link, from an email (so cross-site navigation is
  expected: no Sec-Fetch-Site refusal here). A live link becomes a portal session cookie (HttpOnly,
  SameSite=Strict, Secure over HTTPS) and a 303 to `/portal`, a URL without the token; an expired,
  revoked or unknown one gets one plain page (410) with the contact address; too many refused
  tries from one client address get 429 (`analytics.portal.links`). The token never reaches a log:
  `RedactPortalLinks` masks it in uvicorn's access log.
- Security headers on every HTTP response (`SECURITY_HEADERS`, `content_security_policy`);
  `Referrer-Policy: no-referrer` among them, so a portal page never leaks its URL to a link target.

Both /auth routes refuse cross-site requests (`Sec-Fetch-Site`), so another site can neither sign a
browser into an account nor sign it out.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import anyio.to_thread
import streamlit as st
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from analytics.access.sessions import redeem_ticket, session_for_token, sign_out
from analytics.collections.letterhead import Letterhead
from analytics.ingest.inbox import start_inbox_watcher
from analytics.migrations import connect
from analytics.portal.links import PORTAL_COOKIE, PORTAL_PATH, RATE_LIMITED, LinkRefusal, redeem_link
from analytics.settings import load_settings
from pages.session import serve_store

log = logging.getLogger("ardesk.server")
COOKIE = load_settings().section("auth")["cookie_name"]
SIGN_IN_ROUTE = "/auth/session"
SIGN_OUT_ROUTE = "/auth/sign-out"
PORTAL_LINK_ROUTE = "/portal/t/{token}"


@cache
def _inline_script_hashes() -> tuple[str, ...]:
    """CSP hashes of the inline scripts in Streamlit's own index.html (one, today), read from the
    installed Streamlit so an upgrade that changes them keeps working."""
    html = (Path(st.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
    bodies = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, flags=re.S)
    return tuple(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in bodies)


def content_security_policy() -> str:
    """What Streamlit's frontend needs, and no more: its own scripts (plus its one inline script,
    by hash), inline styles (its CSS-in-JS injects <style> elements), images and fonts from itself
    or data:/blob: URLs, the websocket to itself; no plugins, no framing by any site."""
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' {' '.join(_inline_script_hashes())}".rstrip(),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


SECURITY_HEADERS = {
    "content-security-policy": content_security_policy(),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware: add `SECURITY_HEADERS` to every HTTP response (HSTS too over HTTPS)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = _is_https(Request(scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_https(request: Request) -> bool:
    # Behind a TLS-terminating proxy the scheme is plain http; the proxy says so in X-Forwarded-Proto.
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _cross_site(request: Request) -> bool:
    # Browsers send Sec-Fetch-Site on every request; one that does not is treated as same-site.
    return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


def local_path(target: str | None) -> str:
    """`target` if it is a path on this site (never another site, never an /auth/ route), else `/`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("/auth/") or any(ord(c) < 32 for c in target):
        return "/"
    return target


def _no_store(response: RedirectResponse) -> RedirectResponse:
    response.headers["cache-control"] = "no-store"
    return response


def start_session(request: Request) -> RedirectResponse:
    """Exchange the sign-in ticket for the session cookie, then go on to `next`."""
    if _cross_site(request):
        return _no_store(RedirectResponse("/", status_code=303))
    redeemed = redeem_ticket(app.state["store"], request.query_params.get("ticket", ""))
    response = _no_store(RedirectResponse(local_path(request.query_params.get("next")), status_code=303))
    if redeemed is not None:
        seconds = max(1, int((redeemed.expires_at - datetime.now()).total_seconds()))
        response.set_cookie(COOKIE, redeemed.token, max_age=seconds, path="/", secure=_is_https(request),
                            httponly=True, samesite="strict")
    return response


def end_session(request: Request) -> RedirectResponse:
    """Sign out the session the cookie names (if still open) and delete the cookie."""
    response = _no_store(RedirectResponse("/", status_code=303))
    if _cross_site(request):
        return response
    session_id = session_for_token(app.state["store"], request.cookies.get(COOKIE))
    if session_id is not None:
        sign_out(app.state["store"], session_id)
    response.delete_cookie(COOKIE, path="/", secure=_is_https(request), httponly=True, samesite="strict")
    return response


class RedactPortalLinks(logging.Filter):
    """Mask the token of a portal link path in a log record (uvicorn's access log names every path)."""

    PATTERN = re.compile(r"(/portal/t/)[^\s\"'?]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("/portal/t/" in str(a) for a in record.args):
            record.args = tuple(self.PATTERN.sub(r"\1[token]", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "/portal/t/" in record.msg:
            record.msg = self.PATTERN.sub(r"\1[token]", record.msg)
        return True


for _name in ("uvicorn.access", "uvicorn.error", "ardesk.server"):
    logging.getLogger(_name).addFilter(RedactPortalLinks())


def _contact() -> str:
    """Who a customer asks for a new link: the letterhead's sender, else the outreach sender address."""
    return (Letterhead.from_settings().sender
            or str(load_settings().section("outreach").get("from_address", "")) or "your contact at our company")


def _link_refused(refusal: LinkRefusal) -> HTMLResponse:
    """One plain page for an expired, revoked or unknown link (no detail about which), 429 when rate limited."""
    if refusal.reason == RATE_LIMITED:
        status, title, text = 429, "Too many tries", "Too many links were tried from here. Wait ten minutes, then try again."
    else:
        status, title, text = 410, "This link has expired", "This link has expired; ask for a new one."
    body = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<h1>{title}</h1><p>{text}</p><p>Contact: {html.escape(_contact())}</p></body></html>")
    response = HTMLResponse(body, status_code=status)
    response.headers["cache-control"] = "no-store"
    return response


async def open_portal(request: Request) -> HTMLResponse | RedirectResponse:
    """Exchange a portal link for a portal session cookie, then go to `/portal` (no token in the URL).
    Cross-site is expected (the link comes from an email), so no Sec-Fetch-Site refusal; the rate
    limit (per client address, in the store) stops guessing."""
    client = request.client.host if request.client else "unknown"
    token = request.path_params.get("token", "")
    redeemed = await anyio.to_thread.run_sync(lambda: redeem_link(app.state["store"], token, client))
    if isinstance(redeemed, LinkRefusal):
        return _link_refused(redeemed)
    response = _no_store(RedirectResponse(PORTAL_PATH, status_code=303))
    seconds = max(1, int((redeemed.expires_at - datetime.now()).total_seconds()))
    response.set_cookie(PORTAL_COOKIE, redeemed.token, max_age=seconds, path="/", secure=_is_https(request),
                        httponly=True, samesite="strict")
    return response


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[dict]:
    """Open the store and start the inbox watcher once per process; stop both at shutdown."""
    store = await anyio.to_thread.run_sync(connect)  # a held store fails the start with its reason
    serve_store(store)
    watcher = start_inbox_watcher(store)
    log.info("inbox watcher started on %s", watcher.folders.inbox)
    try:
        yield {"store": store, "inbox_watcher": watcher}
    finally:
        await anyio.to_thread.run_sync(watcher.stop)
        serve_store(None)
        store.close()


app = st.App(
    "app.py",
    lifespan=lifespan,
    routes=[Route(SIGN_IN_ROUTE, start_session, methods=["GET"]),
            Route(SIGN_OUT_ROUTE, end_session, methods=["GET"]),
            Route(PORTAL_LINK_ROUTE, open_portal, methods=["GET"])],
    middleware=[Middleware(SecurityHeaders)],
)
