"""Portal access: links and portal sessions (hashed in the store, expiring, revocable, rate limited),
the `{{ portal_link }}` made at delivery only, and the server's link route."""

from __future__ import annotations

import email
import logging
import re
from datetime import date, datetime, timedelta
from email.policy import default as default_policy
from types import SimpleNamespace

import anyio
import pytest
from starlette.requests import Request

from analytics.access.portal_tokens import PORTAL_LINK_PLACEHOLDER, PortalLinkError, token_sha256
from analytics.access.roles import Actor, PermissionDenied
from analytics.collections.outreach.config import OutreachConfig
from analytics.collections.outreach.delivery import send_now
from analytics.collections.outreach.queue import preview
from analytics.portal.identity import PortalCustomer
from analytics.portal.links import (
    EXPIRED,
    MAX_FAILED_TRIES,
    PORTAL_COOKIE,
    RATE_LIMITED,
    LinkRefusal,
    PortalSessionToken,
    end_portal_session,
    mint_link,
    portal_customer,
    redeem_link,
    revoke_links,
)
from analytics.store.connection import Store
from tests.collector_data import overdue_customers

ANA = Actor("ana.collector", "collector", "Ana Collector")
T0 = datetime(2026, 10, 31, 9, 0)
TOKEN = re.compile(r"/portal/t/([A-Za-z0-9_-]{43})")  # 32 random bytes, URL-safe base64 without padding


def _text_in_store(store: Store, needle: str) -> list[str]:
    """Every table.column of the store whose text holds `needle` (each text column scanned)."""
    columns = store.read("SELECT table_name, column_name FROM information_schema.columns "
                         "WHERE table_schema IN ('main', 'public') AND data_type IN ('VARCHAR', 'TEXT', "
                         "'character varying', 'text')")
    found = []
    for table, column in columns.itertuples(index=False):
        hits = store.scalar(f'SELECT COUNT(*) FROM "{table}" WHERE POSITION(:n IN CAST("{column}" AS TEXT)) > 0',  # noqa: S608
                            {"n": needle})
        if int(hits):
            found.append(f"{table}.{column}")
    return found


def _token(path: str) -> str:
    match = TOKEN.fullmatch(path)
    assert match, path
    return match.group(1)


def test_a_link_opens_a_session_for_its_customer_only_and_no_token_is_kept_or_logged(
        store_on_each_engine: Store, caplog: pytest.LogCaptureFixture) -> None:
    store = store_on_each_engine
    first, second = overdue_customers(store, 2, T0.date())
    caplog.set_level(logging.DEBUG)
    token = _token(mint_link(store, ANA, first, now=T0))
    redeemed = redeem_link(store, token, "10.0.0.1", now=T0 + timedelta(minutes=1))
    assert isinstance(redeemed, PortalSessionToken)
    assert redeemed.customer_id == first and redeemed.expires_at == T0 + timedelta(days=25)  # link_days default
    who = portal_customer(store, redeemed.token, now=T0 + timedelta(days=1))
    assert who is not None and who.customer_id == first
    assert portal_customer(store, token, now=T0) is None  # the link itself is not a session
    # neither the link's token nor the session's is in any text column, the audit included, nor a log line
    assert "customers.customer_id" in _text_in_store(store, first)  # the scan finds what is there
    for secret in (token, redeemed.token):
        assert _text_in_store(store, secret) == []
        assert secret not in caplog.text
    assert store.scalar("SELECT COUNT(*) FROM portal_links WHERE token_sha256 = :h", {"h": token_sha256(token)}) == 1
    audit = store.read("SELECT actor, action, entity_id FROM audit_log WHERE action LIKE 'portal.%' ORDER BY audit_id")
    assert audit.values.tolist() == [["ana.collector", "portal.link_mint", first],
                                     [f"portal:{first}", "portal.session_open", first]]
    # the session ends when the customer leaves
    assert end_portal_session(store, redeemed.token, now=T0 + timedelta(days=2)) is True
    assert portal_customer(store, redeemed.token, now=T0 + timedelta(days=2)) is None
    assert second != first


def test_expired_revoked_and_unknown_links_get_one_refusal(store_on_each_engine: Store) -> None:
    store = store_on_each_engine
    (customer,) = overdue_customers(store, 1, T0.date())
    short = _token(mint_link(store, ANA, customer, days=1, now=T0))
    assert redeem_link(store, short, "a", now=T0 + timedelta(days=1, seconds=1)) == LinkRefusal(EXPIRED)
    assert redeem_link(store, "not-a-link", "a", now=T0) == LinkRefusal(EXPIRED)
    kept = _token(mint_link(store, ANA, customer, now=T0))
    session = redeem_link(store, kept, "a", now=T0)
    assert isinstance(session, PortalSessionToken)
    later = T0 + timedelta(days=2)
    assert portal_customer(store, session.token, now=later) is not None
    assert revoke_links(store, ANA, customer, now=later) == 1  # the expired one is not live any more
    assert redeem_link(store, kept, "a", now=later) == LinkRefusal(EXPIRED)
    assert portal_customer(store, session.token, now=later) is None  # its session ended too
    revoke = store.read("SELECT old_values, new_values FROM audit_log WHERE action = 'portal.link_revoke'")
    assert revoke.values.tolist() == [['{"live_links": 1}', '{"live_links": 0}']]


def test_minting_needs_the_right_role_and_a_validity_of_1_to_1000_days(store: Store) -> None:
    (customer,) = overdue_customers(store, 1, T0.date())
    with pytest.raises(PermissionDenied):
        mint_link(store, Actor("val.viewer", "viewer"), customer)
    with pytest.raises(PermissionDenied):
        revoke_links(store, Actor("val.viewer", "viewer"), customer)
    for days in (0, 1001):
        with pytest.raises(PortalLinkError, match=f"1 to 1000 days; {days} is outside"):
            mint_link(store, ANA, customer, days=days)
    with pytest.raises(PortalLinkError, match="no customer NOPE"):
        mint_link(store, ANA, "NOPE")
    assert store.scalar("SELECT COUNT(*) FROM portal_links") == 0


def test_the_21st_refused_try_from_one_address_within_10_minutes_is_refused_even_with_a_good_link(
        store_on_each_engine: Store) -> None:
    store = store_on_each_engine
    (customer,) = overdue_customers(store, 1, T0.date())
    good = _token(mint_link(store, ANA, customer, now=T0))
    for i in range(MAX_FAILED_TRIES):
        assert redeem_link(store, f"guess-{i}", "203.0.113.9", now=T0 + timedelta(seconds=i)) == LinkRefusal(EXPIRED)
    assert redeem_link(store, good, "203.0.113.9", now=T0 + timedelta(minutes=5)) == LinkRefusal(RATE_LIMITED)
    assert isinstance(redeem_link(store, good, "198.51.100.7", now=T0 + timedelta(minutes=5)), PortalSessionToken)
    # ten minutes after the first tries they leave the window
    assert isinstance(redeem_link(store, good, "203.0.113.9", now=T0 + timedelta(minutes=10, seconds=20)),
                      PortalSessionToken)


def test_a_reminder_carries_a_fresh_link_only_in_the_email_sent(store: Store, tmp_path) -> None:  # noqa: ANN001
    today = date.today()
    (customer,) = overdue_customers(store, 1, today)
    draft = preview(store, [customer], "reminder_friendly", today)[0]
    assert PORTAL_LINK_PLACEHOLDER in draft.body and "/portal/t/" not in draft.body
    config = OutreachConfig(mode="outbox", outbox_dir=tmp_path / "outbox")
    for key in ("r1", "r2"):
        send_now(store, ANA, [customer], "reminder_friendly", action_key=key, as_of=today, config=config)
    tokens = []
    for path in sorted((tmp_path / "outbox").glob("*.eml")):
        mail = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        text = mail.get_body(preferencelist=("plain",)).get_content()
        html = mail.get_body(preferencelist=("html",)).get_content()
        (url,) = re.findall(r"http://localhost:8501/portal/t/\S+", text)
        tokens.append(_token(url.removeprefix("http://localhost:8501")))
        assert f'href="{url}"' in html and PORTAL_LINK_PLACEHOLDER not in text
    assert len(set(tokens)) == 2  # a new reminder mints a new link; the old one keeps working
    for token in tokens:
        assert _text_in_store(store, token) == []
        session = redeem_link(store, token, "client")
        assert isinstance(session, PortalSessionToken) and session.customer_id == customer
    stored = store.read("SELECT body, body_html FROM messages")
    assert stored["body"].str.contains(re.escape(PORTAL_LINK_PLACEHOLDER)).all()
    assert store.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'portal.link_mint'") == 2


def _request(path: str, client: str = "192.0.2.1", scheme: str = "http") -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": [],
                    "scheme": scheme, "client": (client, 5000), "server": ("localhost", 8501),
                    "path_params": {"token": path.removeprefix("/portal/t/")}})


def test_the_link_route_sets_a_strict_cookie_and_redirects_without_the_token(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import server

    monkeypatch.setattr(server, "app", SimpleNamespace(state={"store": store}))
    (customer,) = overdue_customers(store, 1, T0.date())
    path = mint_link(store, ANA, customer)
    response = anyio.run(server.open_portal, _request(path, scheme="https"))
    assert response.status_code == 303 and response.headers["location"] == "/portal"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{PORTAL_COOKIE}=") and _token(path) not in cookie
    assert {"httponly", "samesite=strict", "secure", "path=/"} <= {p.strip().lower() for p in cookie.split(";")}
    value = cookie.split(";")[0].split("=", 1)[1]
    assert portal_customer(store, value) == PortalCustomer(customer, 1)
    refused = anyio.run(server.open_portal, _request("/portal/t/whatever"))
    assert refused.status_code == 410 and "set-cookie" not in refused.headers
    assert b"This link has expired; ask for a new one." in refused.body
    assert b"collections@ardesk.example" in refused.body  # the letterhead's sender
    assert server.SECURITY_HEADERS["referrer-policy"] == "no-referrer"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4", "GET", path, "1.1", 303), None)
    server.RedactPortalLinks().filter(record)
    assert _token(path) not in record.getMessage() and "/portal/t/[token]" in record.getMessage()


def test_cli_prints_a_link_that_opens_the_portal_and_revokes_it(tmp_path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    from analytics.cli.main import main
    from analytics.migrations import connect

    path = tmp_path / "cli.duckdb"
    store = connect(str(path))
    (customer,) = overdue_customers(store, 1, T0.date())
    store.close()
    assert main(["--db", str(path), "portal", "link", customer, "--days", "3", "--as", "ana.collector"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://localhost:8501/portal/t/")
    assert main(["--db", str(path), "portal", "link", customer, "--days", "0"]) == 2
    assert "1 to 1000 days; 0 is outside" in capsys.readouterr().err
    assert main(["--db", str(path), "portal", "revoke", customer]) == 0
    assert capsys.readouterr().out.strip() == f"1 portal link(s) of {customer} revoked."
    store = connect(str(path))
    try:
        assert redeem_link(store, _token(url.removeprefix("http://localhost:8501")), "c") == LinkRefusal(EXPIRED)
        assert store.read("SELECT actor, action FROM audit_log WHERE action LIKE 'portal.link%' ORDER BY audit_id"
                          ).values.tolist() == [["ana.collector", "portal.link_mint"], ["system", "portal.link_revoke"]]
    finally:
        store.close()
