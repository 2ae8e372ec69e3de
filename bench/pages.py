"""Dashboard load times in real chromium: from navigation to a fully rendered page.

For each ledger size, builds a demo store (cached under bench/results/), starts its own
`streamlit run app.py` on a free port owning that store, signs in as the CFO through the real form,
then for each dashboard loads its URL `--repeats` times. A page counts as rendered when its footer
("computed in") is visible, Streamlit's status widget is gone, and every plotly chart has drawn its
SVG. The first load of a page is cold (empty query cache); the median is over all repeats.

    python bench/pages.py --sizes 200000 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.store import connect  # noqa: E402
from tests.dashboard_fixtures import RENDERED_JS  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PAGES = ("overview", "aging", "dso", "bad_debt", "dunning", "team")
PASSWORD = "bench-password-1"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def build_store(entries: int) -> Path:
    """A demo store with `entries` ledger entries and the demo sign-ins (kept between runs)."""
    from analytics.demo import generate_demo
    from analytics.users import ensure_sign_ins

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pages_{entries}.duckdb"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    store = connect(str(tmp))
    started = time.perf_counter()
    generate_demo(store, entries=entries, seed=42, end_date=date(2026, 10, 31))
    os.environ["ARDESK_DEMO_PASSWORD"] = PASSWORD
    try:
        ensure_sign_ins(store)
    finally:
        del os.environ["ARDESK_DEMO_PASSWORD"]
    store.close()
    os.replace(tmp, path)
    print(f"built {path.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free loopback port, owning its own copy of the store."""
    workdir.mkdir(parents=True, exist_ok=True)
    served = workdir / "ardesk.duckdb"
    shutil.copy(db, served)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless=true",
        "--server.address=127.0.0.1", f"--server.port={port}", "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none", "--global.developmentMode=false", "--client.toolbarMode=viewer",
    ]
    env = {**os.environ, "ARDESK_DB": str(served), "ARDESK_LOGIN_SLEEP": "0", "ARDESK_COOKIE_KEY": "bench-key"}
    log = (workdir / "streamlit.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {workdir / 'streamlit.log'}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError("streamlit did not become healthy in 90 s")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def time_pages(url: str, repeats: int) -> dict[str, list[float]]:
    """Seconds from `goto(page)` to fully rendered, `repeats` times per page (the first is cold)."""
    from playwright.sync_api import expect, sync_playwright

    times: dict[str, list[float]] = {p: [] for p in PAGES}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS)
        ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        page.goto("/")
        page.get_by_role("textbox", name="Username").fill("cfo")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Login").click()
        page.wait_for_function("document.cookie.includes('ardesk_auth=')")
        expect(page.get_by_text("Signed in as")).to_be_visible()
        for _ in range(repeats):
            for key in PAGES:
                started = time.perf_counter()
                page.goto(f"/{key}")
                page.wait_for_function(RENDERED_JS, polling=50)
                times[key].append(time.perf_counter() - started)
                if not page.url.rstrip("/").split("?")[0].endswith(key):
                    raise RuntimeError(f"expected /{key}, landed on {page.url}")
        browser.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"started {datetime.now():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores", flush=True)
    rows = []
    for size in args.sizes:
        db = build_store(size)
        proc, url = start_server(db, RESULTS / f"server_{size}")
        try:
            times = time_pages(url, args.repeats)
        finally:
            stop_server(proc)
        for key in PAGES:
            rows.append((size, key, times[key][0], statistics.median(times[key]), max(times[key])))
            print(f"{size:>9,} {key:<10} first {times[key][0]:6.2f} s  median {statistics.median(times[key]):6.2f} s  "
                  f"all {' '.join(f'{t:.2f}' for t in times[key])}", flush=True)
    print(f"\nfinished {datetime.now():%Y-%m-%d %H:%M} UTC\n")
    print("| entries | page | first (cold) | median of " + str(args.repeats) + " |")
    print("|---|---|---|---|")
    for size, key, first, median, _ in rows:
        print(f"| {size:,} | {key} | {first:.2f} s | {median:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
