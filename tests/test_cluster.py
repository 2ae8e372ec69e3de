"""Two app instances on one PostgreSQL store behind HAProxy (config/haproxy.cfg, as `make cluster`).

The demo store is copied to the test PostgreSQL, two `server.py` processes and HAProxy start on
free loopback ports, and one chromium drives four browser contexts through the proxy: a collector
and an admin on each instance, each context held on its instance by HAProxy's SERVERID cookie.
Checked: sign-in through the proxy, two collectors logging calls at once (each stored once), an
invoice upload on each instance, and a dashboard figure on one instance following a write made on
the other (its cache keys on the data version read from the store, not on process memory).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from analytics.migrations import connect
from analytics.settings import load_settings
from tests.conftest import _free_port, _wait_healthy, app_process, demo_on_postgres, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parent.parent
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
COLLECTOR = "ana.collector"  # the demo collector with a sign-in
INSTANCES = ("app1", "app2")  # the server names (and SERVERID cookie values) in config/haproxy.cfg


def _start_haproxy(workdir: Path, app_urls: list[str]) -> tuple[str, subprocess.Popen]:
    if not Path(HAPROXY).exists():
        pytest.fail("HAProxy is missing: `make test` installs it (apt-get install haproxy).")
    port = _free_port()
    env = {**os.environ, "ARDESK_PROXY_BIND": f"127.0.0.1:{port}",
           **{f"ARDESK_APP{i}": u.removeprefix("http://") for i, u in enumerate(app_urls, start=1)}}
    log = (workdir / "haproxy.log").open("a")
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(ROOT / "config" / "haproxy.cfg")], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url, proc, workdir / "haproxy.log", budget=20, what="haproxy")
    return url, proc


@pytest.fixture(scope="module")
def cluster(demo_store_file: Path, pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(proxy URL, store URL): the demo store on PostgreSQL, two app processes, HAProxy in front."""
    url = demo_on_postgres(demo_store_file, pg_url)
    workdir = tmp_path_factory.mktemp("cluster")
    shared = {"ARDESK_INBOX": str(workdir / "inbox"), "ARDESK_OUTBOX": str(workdir / "outbox"),
              "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_hex(16)}  # what `make cluster` gives both
    with ExitStack() as stack:
        starting = []
        for name in INSTANCES:
            (workdir / name).mkdir()
            starting.append(app_process(url, workdir / name, **shared))
        with ThreadPoolExecutor(len(starting)) as pool:  # both start at once: half the wait
            started = [pool.submit(app.__enter__) for app in starting]
        for app, future in zip(starting, started, strict=True):
            if future.exception() is None:
                stack.push(app.__exit__)
        app_urls = [future.result()[0] for future in started]
        proxy, proc = _start_haproxy(workdir, app_urls)
        try:
            yield proxy, url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def contexts(browser, cluster: tuple[str, str]) -> Iterator[dict]:
    """A collector and an admin on each instance, signed in through the proxy: {(user, instance): page}.

    The first context gets its instance from HAProxy (round robin, then its cookie); the others are
    held on an instance by setting the SERVERID cookie HAProxy would have set.
    """
    proxy, _ = cluster
    pages: dict[tuple[str, str], object] = {}
    violations: list[str] = []
    opened = []
    try:
        first = _new_page(browser, proxy, opened, violations)
        sign_in(first, COLLECTOR)
        instance = _instance_cookie(first)
        assert instance in INSTANCES  # HAProxy chose one and said so in its cookie
        other = next(i for i in INSTANCES if i != instance)
        pages[(COLLECTOR, instance)] = first
        for user, pinned in ((COLLECTOR, other), ("admin", instance), ("admin", other)):
            page = _new_page(browser, proxy, opened, violations, pinned=pinned)
            sign_in(page, user)
            pages[(user, pinned)] = page
        for (_, pinned), page in pages.items():
            assert _instance_cookie(page) == pinned  # still held where it started, after the sign-in's redirects
            assert page.request.get("/_stcore/health").headers["x-ardesk-instance"] == pinned
        yield pages
    finally:
        for ctx in opened:
            ctx.close()
    assert violations == []


def _new_page(browser, proxy: str, opened: list, violations: list[str], pinned: str | None = None):
    ctx = browser.new_context(base_url=proxy, viewport={"width": 1400, "height": 900})
    opened.append(ctx)
    if pinned:
        ctx.add_cookies([{"name": "SERVERID", "value": pinned, "url": proxy}])
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    return page


def _instance_cookie(page) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "SERVERID"), None)


def test_collectors_on_both_instances_log_calls_at_once_each_stored_once(contexts, cluster) -> None:
    _, url = cluster
    store = connect(url)
    try:  # the collector's customer with the fewest events: the timeline lists the newest 30
        customer, calls_before = store.read(
            "SELECT c.customer_id, COUNT(a.activity_id) AS events, SUM(CASE WHEN a.kind = 'call' AND a.author = :c "
            "THEN 1 ELSE 0 END) AS calls FROM customers c LEFT JOIN activities a ON a.customer_id = c.customer_id "
            "WHERE c.collector = :c GROUP BY c.customer_id ORDER BY events, c.customer_id LIMIT 1",
            {"c": COLLECTOR})[["customer_id", "calls"]].iloc[0]
    finally:
        store.close()
    calls_before = int(calls_before or 0)
    notes = {}
    for instance in INSTANCES:
        page = contexts[(COLLECTOR, instance)]
        page.goto(f"/customer?customer={customer}")
        expect(page.get_by_role("heading", name=re.compile(rf"\({customer}\)$"))).to_be_visible()
        page.get_by_role("tab", name="Follow-up").click()
        notes[instance] = f"Cluster call via {instance} {secrets.token_hex(4)}"
        page.get_by_label("What was said").fill(notes[instance])
    for instance in INSTANCES:  # both submits leave before either answer comes back
        contexts[(COLLECTOR, instance)].get_by_role("button", name="Log call").click(no_wait_after=True)
    for instance in INSTANCES:
        page = contexts[(COLLECTOR, instance)]
        try:
            expect(page.get_by_text("Call logged (reached).")).to_be_visible()
        except AssertionError:
            screenshot(page, f"cluster_call_not_logged_on_{instance}")
            raise

    store = connect(url)
    try:
        stored = store.read("SELECT activity_id, body, author, customer_id FROM activities WHERE kind = 'call' "
                            "AND body LIKE :p ORDER BY body", {"p": "Cluster call via %"})
        audited = store.read("SELECT entity_id FROM audit_log WHERE action = 'activity.call' AND new_values LIKE :p "
                             "ORDER BY entity_id", {"p": "%Cluster call via%"})
    finally:
        store.close()
    assert stored.drop(columns="activity_id").to_dict("records") == [
        {"body": notes[i], "author": COLLECTOR, "customer_id": customer} for i in sorted(INSTANCES, key=notes.get)]
    assert sorted(audited["entity_id"]) == sorted(str(i) for i in stored["activity_id"])  # one audit line each
    # each instance's timeline lists the other's call too: its cache keys on the store's data version
    for instance in INSTANCES:
        page = contexts[(COLLECTOR, instance)]
        page.reload()
        page.get_by_role("tab", name="Timeline").click()
        calls = page.get_by_role("tabpanel", name="Timeline").get_by_role("listitem").filter(
            has_text=re.compile(rf"\d\d:\d\d call by {re.escape(COLLECTOR)}\b"))
        expect(calls).to_have_count(calls_before + 2)


def _open_ar(page) -> int:
    """The Overview's Open AR tile's exact figure, from its help (the tile shows it compact: "20.3 M")."""
    page.goto("/overview")
    tile = page.get_by_test_id("stMetric").filter(has_text="Open AR (")
    tile.get_by_test_id("stTooltipHoverTarget").first.hover()
    help_text = page.get_by_test_id("stTooltipContent").filter(has_text="Exact:").first.inner_text()
    page.mouse.move(0, 0)  # the tooltip closes before the next page
    return int(re.search(r"Exact:\s*([\d,]+)", help_text).group(1).replace(",", ""))


def _upload(page, csv: Path, rows: int) -> None:
    page.goto("/imports")
    expect(page.get_by_role("heading", name="Imports")).to_be_visible()
    page.locator("input[type=file]").set_input_files(str(csv))  # the upload goes to this tab's instance
    expect(page.get_by_text(f"{rows} rows, first 10 shown.")).to_be_visible()
    page.get_by_role("button", name="Validate", exact=True).click()
    expect(page.get_by_text(f"{rows} rows read, {rows} accepted, 0 rejected.")).to_be_visible()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text(f"{rows} inserted, 0 updated, 0 unchanged, 0 rejected")).to_be_visible(timeout=45_000)


def test_an_upload_on_each_instance_and_the_other_instance_shows_it_at_once(contexts, cluster, tmp_path: Path) -> None:
    _, url = cluster
    currency = load_settings().reporting_currency
    admin = {i: contexts[("admin", i)] for i in INSTANCES}
    first, second = INSTANCES
    shown = {i: _open_ar(admin[i]) for i in INSTANCES}  # each instance computes and caches the figure
    assert shown[first] == shown[second]

    files = {}
    for instance, amounts in ((first, ("400000.00", "600000.00")), (second, ("1500000.00", "500000.00"))):
        files[instance] = tmp_path / f"{instance}.csv"
        files[instance].write_text(
            "customer_id,document_number,posting_date,due_date,amount,currency\n" + "".join(
                f"CLUSTER-{instance},CL-{instance}-{n},2026-10-15,2027-03-31,{amount},{currency}\n"
                for n, amount in enumerate(amounts, start=1)))

    # a write on the second instance: the first instance's cached figure must not survive it
    _upload(admin[second], files[second], 2)
    assert _open_ar(admin[first]) == shown[first] + 2_000_000
    _upload(admin[first], files[first], 2)
    assert _open_ar(admin[second]) == shown[second] + 3_000_000

    store = connect(url)
    try:
        runs = store.read("SELECT status, rows_inserted FROM import_runs ORDER BY run_id DESC LIMIT 2")
        invoiced = store.read("SELECT customer_id, SUM(amount) AS amount FROM ledger_entries "
                              "WHERE customer_id LIKE 'CLUSTER-%' GROUP BY customer_id ORDER BY customer_id")
    finally:
        store.close()
    assert runs.to_dict("records") == [{"status": "ok", "rows_inserted": 2}] * 2
    assert [(r.customer_id, Decimal(str(r.amount))) for r in invoiced.itertuples()] == [
        (f"CLUSTER-{first}", Decimal("1000000.00")), (f"CLUSTER-{second}", Decimal("2000000.00"))]


def _portal_try(proxy: str, instance: str, client: str) -> tuple[int, str]:
    """A made-up portal link opened through the proxy on `instance`, from `client` (the address HAProxy
    forwards, as if the browser came from there): (status, instance that answered)."""
    request = urllib.request.Request(f"{proxy}/portal/t/not-a-token-{secrets.token_hex(8)}", headers={
        "Cookie": f"SERVERID={instance}", "X-Forwarded-For": client})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers["x-ardesk-instance"]
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers["x-ardesk-instance"]


def test_the_portal_rate_limit_counts_tries_on_both_instances_per_client(cluster) -> None:
    """20 refused tries per client address in 10 minutes (analytics.portal.links): tries made on
    either instance count together (rows in the store), and the address is the client's that HAProxy
    forwards (uvicorn trusts X-Forwarded-For from the proxy on 127.0.0.1), not the proxy's own."""
    from analytics.portal.links import MAX_FAILED_TRIES

    proxy, _ = cluster
    guesser, bystander = "203.0.113.7", "203.0.113.8"  # documentation addresses
    answers = [_portal_try(proxy, INSTANCES[n % 2], guesser) for n in range(MAX_FAILED_TRIES)]
    assert answers == [(410, INSTANCES[n % 2]) for n in range(MAX_FAILED_TRIES)]  # each refused as unknown
    assert [_portal_try(proxy, i, guesser) for i in INSTANCES] == [(429, i) for i in INSTANCES]
    assert [_portal_try(proxy, i, bystander) for i in INSTANCES] == [(410, i) for i in INSTANCES]
