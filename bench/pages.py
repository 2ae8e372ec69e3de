"""Dashboard load times in real chromium: from navigation to a fully rendered page.

For each ledger size, builds a demo store (cached under bench/results/), starts its own
`streamlit run app.py` on a free port owning that store, signs in as the CFO through the real form,
then opens each dashboard `--repeats` times in two ways: by link (a new session, as from a
bookmark; the first round is cold, nothing cached yet) and by a sidebar click in the signed-in
session. A page counts as rendered when its footer ("computed in") is visible, Streamlit's status
widget is gone, no element shows a loading skeleton, and every plotly chart has drawn its SVG. Medians are over all repeats.

    python bench/pages.py --sizes 200000 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.migrations import connect  # noqa: E402
from tests.conftest import serve_app  # noqa: E402
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
    from analytics.access.users import ensure_sign_ins
    from analytics.demo.persistence import generate_demo

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pages_{entries}.duckdb"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    store = connect(str(tmp))
    started = time.perf_counter()
    generate_demo(store, entries=entries, seed=42, end_date=date(2026, 10, 31))
    ensure_sign_ins(store, password=PASSWORD)
    store.close()
    os.replace(tmp, path)
    print(f"built {path.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def _served_copy(db: Path, workdir: Path) -> Path:
    """The server owns its own copy of the store, so a bench run never changes the built one."""
    workdir.mkdir(parents=True, exist_ok=True)
    served = workdir / "ardesk.duckdb"
    shutil.copy(db, served)
    return served


def time_pages(url: str, repeats: int) -> dict[tuple[str, str], list[float]]:
    """Seconds from navigation to fully rendered, per (mode, page), `repeats` times each.

    mode "link": `goto(/page)`, a new browser session as from a bookmark (the first round is cold:
    nothing cached for the page yet); mode "click": the sidebar link in a signed-in session.
    """
    from playwright.sync_api import expect, sync_playwright

    from analytics.access.roles import PAGES as SPECS
    from tests.dashboard_fixtures import sign_in_steady

    titles = {p.key: p.title for p in SPECS}
    times: dict[tuple[str, str], list[float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS)
        ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(180_000)
        sign_in_steady(page, "cfo", PASSWORD)
        for _ in range(repeats):
            for key in PAGES:
                started = time.perf_counter()
                page.goto(f"/{key}")
                page.wait_for_function(RENDERED_JS, polling=50, timeout=180_000)
                times.setdefault(("link", key), []).append(time.perf_counter() - started)
                if urlparse(page.url).path.strip("/") not in (key, "" if key == "overview" else key):
                    raise RuntimeError(f"expected /{key}, landed on {page.url}")
        for _ in range(repeats):
            for key in PAGES:
                link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=titles[key])
                if urlparse(page.url).path.strip("/") in (key, "" if key == "overview" else key):  # there already
                    page.get_by_test_id("stSidebarNav").get_by_role("link", name=titles["team" if key != "team"
                                                                                         else "overview"]).click()
                    page.wait_for_function(RENDERED_JS, polling=50, timeout=180_000)
                started = time.perf_counter()
                link.click()
                expect(page.get_by_role("heading", name=titles[key], exact=True)).to_be_visible(timeout=180_000)
                page.wait_for_function(RENDERED_JS, polling=50, timeout=180_000)
                times.setdefault(("click", key), []).append(time.perf_counter() - started)
        browser.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"started {datetime.now():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for size in args.sizes:
        db = build_store(size)
        workdir = RESULTS / f"server_{size}"
        with serve_app(_served_copy(db, workdir), workdir) as url:  # the tests' server start, reused
            times = time_pages(url, args.repeats)
        for key in PAGES:
            link, click = times[("link", key)], times[("click", key)]
            rows.append((size, key, link[0], statistics.median(link), statistics.median(click)))
            print(f"{size:>9,} {key:<10} link: {' '.join(f'{t:.2f}' for t in link)}   "
                  f"click: {' '.join(f'{t:.2f}' for t in click)}", flush=True)
    print(f"\nfinished {datetime.now():%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f}\n")
    print(f"| entries | page | link, first (cold) | link, median of {args.repeats} | sidebar click, median of {args.repeats} |")
    print("|---|---|---|---|---|")
    for size, key, first, median, click in rows:
        print(f"| {size:,} | {key} | {first:.2f} s | {median:.2f} s | {click:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
