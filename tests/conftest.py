"""Shared fixtures: fresh stores in tmp_path, a real Streamlit server, and Debian's chromium."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.migrations import connect
from analytics.store.connection import Store

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DEMO_PASSWORD = "demo-password-1"  # test-only; never a real password
# One AppTest script run may take this long: `make test` runs AppTests beside the soak at a low priority.
APPTEST_TIMEOUT_S = 180
# One browser step (a click and the script run it starts) may take this long on 2 busy cores.
BROWSER_STEP_MS = 60_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def _share_apptest_startup() -> None:
    """Do AppTest's per-test startup work once per test process instead of once per AppTest.

    Every new `AppTest` scans the metadata of every installed distribution for v2 component
    manifests (about 0.2 s of CPU, 0.65 s of wall time, measured) and every run compiles app.py and
    the page again (about a tenth of a page test's CPU). Neither the installed packages nor the
    scripts (keyed by modification time and size) change while the tests run.
    """
    import functools

    from streamlit.components.v2 import manifest_scanner
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test

    manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)
    compiled: dict[tuple[str, int, int], object] = {}

    class SharedScriptCache(ScriptCache):
        def get_bytecode(self, script_path: str) -> object:
            stat = os.stat(script_path)
            key = (os.path.abspath(script_path), stat.st_mtime_ns, stat.st_size)
            if key not in compiled:
                compiled[key] = super().get_bytecode(script_path)
            return compiled[key]

    app_test.ScriptCache = SharedScriptCache


_share_apptest_startup()


def _keep_browsers_from_raising_their_priority() -> None:
    """Drop CAP_SYS_NICE from this process's capability bounding set, so no program the tests start has it.

    Chromium run as root raises seven of its threads to nice -8 (measured with `ps -eLo ni`); on 2
    cores it then takes the CPU from the app it drives and from the tests beside it (the served
    tests took 10.4 min with it, 4.9-6.0 min without). Without the capability it stays at nice 0. A
    process that is not root never had it: nothing to drop.
    """
    import ctypes

    pr_capbset_drop, cap_sys_nice = 24, 23  # <linux/prctl.h>, <linux/capability.h>
    if sys.platform == "linux" and os.geteuid() == 0:
        ctypes.CDLL(None, use_errno=True).prctl(pr_capbset_drop, cap_sys_nice, 0, 0, 0)


_keep_browsers_from_raising_their_priority()


# `ARDESK_TEST_ENGINE=postgresql` runs the engine's tests on PostgreSQL: `store` and `demo_store` are then
# databases on the test server, cloned per test from templates built once per worker (see `pg_database`),
# and only the tests that take one of them run (`pytest_collection_modifyitems`). `make test` runs the
# engine's tests both ways.
TEST_ENGINE = os.environ.get("ARDESK_TEST_ENGINE", "duckdb")
if TEST_ENGINE not in ("duckdb", "postgresql"):
    raise pytest.UsageError(f"ARDESK_TEST_ENGINE is duckdb or postgresql, not {TEST_ENGINE!r}")
ENGINE_FIXTURES = {"store", "demo_store"}  # what a test takes to run on the engine under test


@contextmanager
def store_on_postgresql(request: pytest.FixtureRequest, template: str) -> Iterator[Store]:
    """A store in a new database on the test PostgreSQL, cloned from the template "empty" or "demo" (`pg_database`)."""
    with request.getfixturevalue("pg_database")(template) as url:
        s = connect(url)
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty store at the current schema: its own DuckDB file, or (ARDESK_TEST_ENGINE=postgresql) its own
    PostgreSQL database."""
    if TEST_ENGINE == "postgresql":
        with store_on_postgresql(request, "empty") as s:
            yield s
        return
    s = new_store(tmp_path / "ardesk.duckdb")
    yield s
    s.close()


_EMPTY_STORES: list[Path] = []


def new_store(path: Path) -> Store:
    """A new, empty store at the current schema in the DuckDB file `path` (which must not exist yet).

    A copy of one empty store made by `connect` once per test process: creating the schema's tables
    takes a second or more on a busy machine, copying the closed file a few milliseconds; the copy
    is a new store like any other (its one difference: the schema's stamp time).
    """
    if not _EMPTY_STORES:
        template = Path(tempfile.mkdtemp(prefix="ardesk-empty-store-")) / "empty.duckdb"
        connect(str(template)).close()
        atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
        _EMPTY_STORES.append(template)
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"new_store: {path} exists already")
    shutil.copyfile(_EMPTY_STORES[0], path)
    return connect(str(path))


@pytest.fixture(scope="session")
def demo_store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo store (about 20k entries) with one sign-in per role, built once per session.

    Tests copy it before writing; the browser server gets its own copy.
    """
    from analytics.access.users import ensure_sign_ins
    from analytics.demo.persistence import generate_demo

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    s = connect(str(path))
    generate_demo(s, entries=20_000, seed=7, end_date=date(2026, 10, 31))
    ensure_sign_ins(s, password=DEMO_PASSWORD)
    s.close()
    return path


@pytest.fixture
def demo_store(demo_store_file: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A private, writable copy of the demo store (on PostgreSQL: a database cloned from the demo's)."""
    if TEST_ENGINE == "postgresql":
        with store_on_postgresql(request, "demo") as s:
            yield s
        return
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_store_file, path)
    s = connect(str(path))
    yield s
    s.close()


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point the app at a store file for AppTest, with a fresh process-wide cache."""
    import streamlit as st

    def use(path: Path) -> None:
        monkeypatch.setenv("ARDESK_DB", str(path))
        st.cache_resource.clear()
        st.cache_data.clear()

    yield use
    st.cache_resource.clear()
    st.cache_data.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interruptible() -> None:
    """`preexec_fn` for a child a test stops with SIGINT: a suite run in the background by a
    non-interactive shell starts with SIGINT ignored, and children inherit that (Python then never
    raises KeyboardInterrupt); this gives the child Ctrl-C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, budget: float = 60, what: str = "streamlit") -> None:
    """Wait until `url`/_stcore/health answers "ok" (through `what`: the app, or a proxy in front of it)."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become healthy in {budget} s:\n{log.read_text()[-3000:]}")


@contextmanager
def app_process(db: Path, workdir: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run server.py` (as `make run` does) on a free loopback port, owning the store `db`:
    yields (URL, process).

    The server's log goes to `workdir/streamlit.log`; `env` adds or overrides environment variables.
    On exit the whole process group is stopped (if the test has not stopped it already).
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "streamlit.log"
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "server.py"), "--server.headless=true",
        "--server.address=127.0.0.1", f"--server.port={port}", "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none", "--global.developmentMode=false", "--client.toolbarMode=viewer",
    ]
    full_env = {**os.environ, "ARDESK_DB": str(db), **env}
    with log.open("a") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True)
    try:
        _wait_healthy(url, proc, log)
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def serve_app(db: Path, workdir: Path, **env: str) -> Iterator[str]:
    """The app owning the store `db` (see `app_process`); yields its URL."""
    with app_process(db, workdir, **env) as (url, _):
        yield url


@pytest.fixture(scope="session")
def app_server(demo_store_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on its own copy of the demo store, for the whole test session."""
    workdir = tmp_path_factory.mktemp("server")
    db = workdir / "ardesk.duckdb"
    shutil.copy(demo_store_file, db)
    with serve_app(db, workdir, ARDESK_OUTBOX=str(workdir / "outbox")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a loaded 2-core CI box renders slower than 5 s at times

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: `make test` installs it (apt-get install chromium).")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS, timeout=30_000)
        yield b
        b.close()


def refuse_csp_violations(page) -> list[str]:
    """Collect the page's Content-Security-Policy violations (console errors); the caller asserts none."""
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    return violations


def record_browser_trouble(page) -> None:  # noqa: ANN001 - a Playwright page
    """Print what went wrong in the browser as it happens (console errors, failed requests, closed
    websockets): pytest shows it under a failing test, so a failure under load can be explained."""
    def note(what: str) -> None:
        print(f"[browser {time.strftime('%H:%M:%S')}] {what}")

    page.on("console", lambda m: note(f"console {m.type}: {m.text[:300]}") if m.type in ("error", "warning")
            else None)
    page.on("requestfailed", lambda r: note(f"request failed: {r.method} {r.url[:200]} {r.failure}"))
    page.on("websocket", lambda ws: ws.on("close", lambda _ws: note(f"websocket closed: {ws.url[:120]}")))


@pytest.fixture
def page(browser, app_server: str):
    ctx = browser.new_context(base_url=app_server, viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(BROWSER_STEP_MS)
    violations = refuse_csp_violations(pg)
    record_browser_trouble(pg)
    yield pg
    ctx.close()
    assert violations == [], "the Content-Security-Policy blocked something the app needs"


def session_cookie(page) -> str | None:
    """The sign-in cookie's value in the page's browser context (HttpOnly: invisible to scripts)."""
    from analytics.settings import load_settings

    name = load_settings().section("auth")["cookie_name"]
    return next((c["value"] for c in page.context.cookies() if c["name"] == name), None)


def wait_for_session_cookie(page, present: bool = True, timeout_s: float = 20) -> None:
    """Wait until the browser holds the sign-in cookie (or, `present=False`, no longer holds it)."""
    deadline = time.monotonic() + timeout_s
    while (session_cookie(page) is not None) != present:
        if time.monotonic() > deadline:
            raise AssertionError(f"the sign-in cookie is still {'missing' if present else 'there'}")
        page.wait_for_timeout(100)


def sign_in(page, username: str, password: str = DEMO_PASSWORD, path: str = "/") -> None:
    """Open `path` signed out, sign in through the real form, and wait for the app and its cookie.

    One click: the form signs the session in and the browser fetches its HttpOnly cookie from the
    server on the way back to the same link (README, "Sessions"); the helper returns on that page.
    """
    from playwright.sync_api import expect

    page.goto(path)
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    outcome = submit_sign_in(page, username, password)
    assert outcome == "signed in", f"one click on Login: {outcome}"
    expect(page.get_by_text("Signed in as")).to_be_visible()
    assert session_cookie(page) is not None


# 'signed in' only on the page loaded after the form's page (the marker is gone), with its cookie.
_SIGN_IN_OUTCOME = """() => {
    if (window.__ardeskFormPage === undefined && document.body && document.body.innerText.includes('Signed in as'))
        return 'signed in';
    if (window.__ardeskFormPage === undefined) return false;
    const user = document.querySelector("input[aria-label='Username']");
    if (user && document.querySelector("[data-testid='stAlert']")) return 'message';
    const app = document.querySelector("[data-testid='stApp']");
    const idle = app && app.getAttribute('data-test-script-state') === 'notRunning';
    return user && user.value === '' && idle ? 'dropped' : false;
}"""


def submit_sign_in(page, username: str, password: str) -> str:
    """Type and submit the sign-in form once; returns 'signed in' (on the page the browser loads
    after fetching its cookie), 'message' (a refusal shown) or 'dropped' (the form came back
    empty: the submission was lost, a bug)."""
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.evaluate("window.__ardeskFormPage = true")
    page.get_by_role("button", name="Login").click()
    outcome = page.wait_for_function(_SIGN_IN_OUTCOME, polling=100).json_value()
    if outcome == "signed in":
        wait_for_session_cookie(page)
    return outcome


def displayed(markdown: str) -> str:
    """What a browser shows for a page's markdown of plain words: the backslash escapes that
    `pages.plain_text.escape_markdown` puts before punctuation in user text are gone."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ (kept by CI as evidence)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_idle(page, quiet_ms: int = 1000) -> None:
    """Wait until no script run has started for `quiet_ms`."""
    page.wait_for_function(
        """(quiet) => {
            const app = document.querySelector("[data-testid='stApp']");
            const idle = app && app.getAttribute('data-test-script-state') === 'notRunning';
            const now = Date.now();
            if (!idle || window.__ardeskBusy === undefined) { window.__ardeskBusy = now; return false; }
            return now - window.__ardeskBusy > quiet;
        }""",
        arg=quiet_ms, polling=100,
    )


def choose_option(box, option: str, exact: bool = True) -> None:  # noqa: ANN001 - a playwright locator
    """Open the select box `box` and pick `option`, once the app is idle.

    A rerun that lands while the list is open closes it (the option is then detached, and a plain click
    waits for it forever), so the list is opened again, up to three times.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = box.page
    for attempt in range(3):
        wait_idle(page)
        box.click()
        try:
            page.get_by_role("option", name=option, exact=exact).click(timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    wait_idle(page)


def signed_in_app(role: str, username: str = "tester", page: str | None = None):
    """An AppTest of app.py as if `username` (role `role`) had signed in, optionally on `page`.

    The app re-checks the account in the store on every load, so the account is created (or
    given a password) in the store that `app_env` pointed the app at when it cannot sign in yet.
    """
    from streamlit.testing.v1 import AppTest

    from analytics.access.roles import SYSTEM
    from analytics.access.sessions import open_session
    from analytics.access.users import add_user, set_password

    store = connect(os.environ["ARDESK_DB"])
    try:
        can_sign_in = store.scalar("SELECT MAX(CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END) "
                                   "FROM users WHERE username = :u", {"u": username})
        if can_sign_in is None:
            add_user(store, SYSTEM, username, f"Test {role}", role, password=DEMO_PASSWORD)
        elif not can_sign_in:
            set_password(store, SYSTEM, username, DEMO_PASSWORD)
        session_id = open_session(store, username).session_id  # what a sign-in through the form opens
    finally:
        store.close()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APPTEST_TIMEOUT_S)
    at.session_state["_session_id"] = session_id
    if page:
        at.run()  # the first run registers the role's navigation; only then can it switch pages
        at.switch_page(page)
    return at


@pytest.fixture
def cheap_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """bcrypt at cost 4 instead of 12: same algorithm and format, a fraction of the time."""
    import bcrypt

    gensalt = bcrypt.gensalt
    monkeypatch.setattr(bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": gensalt(4, prefix))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL for the portability tests: `ARDESK_TEST_PG_URL` if set, else a throwaway server.

    The throwaway server (tests/postgres_server.py) starts only when a test asks for this fixture,
    and is stopped and deleted at session end. Without either, the tests skip, unless
    `ARDESK_REQUIRE_PG=1` (set by `make test`) turns that skip into a failure.
    """
    from tests.postgres_server import find_bindir, throwaway_postgres

    if url := os.environ.get("ARDESK_TEST_PG_URL"):
        yield url
        return
    bindir = find_bindir()
    if bindir is None:
        reason = ("no PostgreSQL: set ARDESK_TEST_PG_URL or install Debian's postgresql package "
                  "(`make test` does)")
        if os.environ.get("ARDESK_REQUIRE_PG") == "1":
            pytest.fail(f"ARDESK_REQUIRE_PG=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    with throwaway_postgres(bindir) as url:
        yield url


def empty_postgres(url: str) -> str:
    """Empty the test PostgreSQL's public schema, so a test starts from nothing; returns the URL."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def demo_on_postgres(demo_store_file: Path, url: str) -> str:
    """The demo store copied into the emptied test PostgreSQL (`ardesk db copy`, checked); returns the URL."""
    from analytics.store.copy import copy_store

    source, target = connect(str(demo_store_file)), connect(empty_postgres(url))
    try:
        assert all(check.equal for check in copy_store(source, target))
    finally:
        source.close()
        target.close()
    return url


@pytest.fixture(scope="session")
def pg_database(pg_url: str, request: pytest.FixtureRequest):
    """`pg_database(template)`: a context giving the URL of a new database on the test PostgreSQL, cloned from
    the worker's template "empty" (the current schema) or "demo" (the demo store, copied by `ardesk db copy`),
    dropped afterwards.

    Templates are built once per worker, when first asked for; `CREATE DATABASE ... TEMPLATE` copies files,
    a fraction of a second where migrating or copying the demo again would take seconds.
    """
    from analytics.store.copy import copy_store

    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    base = sa.engine.make_url(pg_url)
    built: set[str] = set()
    counter = iter(range(1_000_000))

    def url_of(name: str) -> str:
        return base.set(database=name).render_as_string(hide_password=False)

    def build(template: str) -> str:
        name = f"ardesk_template_{template}"
        if template not in built:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            target = connect(url_of(name))
            try:
                if template == "demo":  # the demo is built only for a worker that needs it
                    source = connect(str(request.getfixturevalue("demo_store_file")))
                    try:
                        assert all(check.equal for check in copy_store(source, target))
                    finally:
                        source.close()
            finally:
                target.close()
            built.add(template)
        return name

    @contextmanager
    def database(template: str) -> Iterator[str]:
        name = f"ardesk_test_{next(counter)}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{build(template)}"'))
        try:
            yield url_of(name)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    yield database
    admin.dispose()


@pytest.fixture
def pg_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh store at the current schema, in its own database on the test PostgreSQL."""
    with store_on_postgresql(request, "empty") as s:
        yield s


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_on_each_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store on DuckDB, and again on the test PostgreSQL: a test taking it runs on both."""
    if request.param == "postgres":
        yield request.getfixturevalue("pg_store")
        return
    store = new_store(tmp_path / "ardesk.duckdb")
    yield store
    store.close()


@pytest.fixture
def smtp():
    """A real SMTP server on loopback and an outreach config pointing at it: (recorder, config)."""
    from analytics.collections.outreach.config import OutreachConfig
    from tests.smtp_server import free_port, start_smtp

    port = free_port()
    controller, handler = start_smtp(port)
    try:
        yield handler, OutreachConfig(mode="smtp", smtp_host="127.0.0.1", smtp_port=port,
                                      max_emails_per_customer=3, frequency_window_days=7)
    finally:
        controller.stop()


def run_app_watcher(store: Store, inbox: Path | None = None, timeout_s: float = 60) -> None:
    """Run the app's inbox watcher (as the running app would) until the inbox is empty, then stop it.

    Without `inbox` the watcher finds its folder the way the app does.
    """
    from analytics.ingest.inbox import pending_jobs, start_inbox_watcher

    watcher = start_inbox_watcher(store, inbox, interval_s=0.2)
    try:
        deadline = time.monotonic() + timeout_s
        while pending_jobs(watcher.folders.inbox) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watcher.stop()


def button(at, label: str):  # noqa: ANN001, ANN201 - an AppTest and its button
    """The AppTest button labelled `label` (the first one)."""
    return next(b for b in at.button if b.label == label)


def stored_rows(path: Path, sql: str) -> list[dict]:
    """Rows of `sql` on the closed store file `path`, as dicts with None for missing values."""
    store = connect(str(path))
    try:
        frame = store.read(sql).astype(object)
        return frame.where(frame.notna(), None).to_dict("records")
    finally:
        store.close()


# What makes a test module an app test module: a test of it runs the app (AppTest, a served app, a browser);
# a served one if it runs a server or a browser, whose steps wait on real time (never run beside the soak).
SERVED_FIXTURES = {"page", "browser", "app_server"}
APP_FIXTURES = SERVED_FIXTURES | {"app_env"}
APP_RUNNERS = ("app_process", "serve_app")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of an app test module `app`, and of a served one `served` too (whole modules, so a
    module fixture is built in one run only): `make test` runs the served ones first, then the rest
    (-m "not served": the engine's and the AppTests) beside the soak."""
    def marked(fixtures: set[str]) -> set:
        return {item.module for item in items if getattr(item, "module", None) is not None and (
            fixtures & set(getattr(item, "fixturenames", ())) or any(n in vars(item.module) for n in APP_RUNNERS))}

    app_modules, served_modules = marked(APP_FIXTURES), marked(SERVED_FIXTURES)
    for item in items:
        if getattr(item, "module", None) in app_modules:
            item.add_marker(pytest.mark.app)
        if getattr(item, "module", None) in served_modules:
            item.add_marker(pytest.mark.served)
    if TEST_ENGINE == "postgresql":
        _keep_engine_tests_on_postgresql(config, items)


def _keep_engine_tests_on_postgresql(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ARDESK_TEST_ENGINE=postgresql, keep the engine's tests that take a store from `store` or
    `demo_store`, an app test module's too; deselect the rest: the app's (its pages and servers run on
    DuckDB), the ones that name a DuckDB file or choose their engines themselves (`store_on_each_engine`,
    `pg_store`: already on both), and the ones marked `duckdb_only` (what they test is DuckDB's: the
    file, its lock, its inbox). No `-m` is needed (nor wanted: `app` marks whole modules)."""
    keep, drop = [], []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        on_engine = (ENGINE_FIXTURES & names and not ({"store_on_each_engine", "pg_store"} | APP_FIXTURES) & names
                     and item.get_closest_marker("duckdb_only") is None)
        (keep if on_engine else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
