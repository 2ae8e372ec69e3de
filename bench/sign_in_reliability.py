"""How reliably a sign-in sticks: cookie set, first click kept, reload still signed in.

    python bench/sign_in_reliability.py --runs 20

Starts the app on a fresh server over a small demo store, then in N fresh browser contexts (one
at a time, headless Debian chromium) acts like a user: open /, type the password as soon as the
form shows, click Login, and as soon as "Signed in as" shows click a sidebar link. Counts:
- signed in: "Signed in as" within 20 s of the click;
- cookie: the HttpOnly session cookie in the browser within 3 s of the click (set by the server's
  /auth/session route, which the sign-in sends the browser through);
- click kept: the clicked page (Aging) is still the page 2 s later (no rerun undid it);
- reload: after a reload the session is still signed in (from the cookie);
- sign-out: Logout deletes the cookie and a reload stays signed out.

The first "Signed in as" may be drawn by the page the browser is leaving for its cookie; a click
there can be lost to that navigation, which is what "click kept" measures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.access.users import ensure_sign_ins  # noqa: E402
from analytics.demo.persistence import generate_demo  # noqa: E402
from analytics.migrations import connect  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_FLAGS, DEMO_PASSWORD, serve_app, session_cookie  # noqa: E402


def _demo_store(path: Path) -> None:
    s = connect(str(path))
    generate_demo(s, entries=20_000, seed=7, end_date=date(2026, 10, 31))
    ensure_sign_ins(s, password=DEMO_PASSWORD)
    s.close()


def _one_run(browser, url: str, username: str) -> dict[str, bool | float]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    out: dict[str, bool | float] = {"signed_in": False, "cookie": False, "click_kept": False,
                                    "reload": False, "sign_out": False}
    try:
        page.goto("/")
        expect(page.get_by_role("button", name="Login")).to_be_visible()
        page.get_by_role("textbox", name="Username").fill(username)
        page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
        clicked = time.monotonic()
        page.get_by_role("button", name="Login").click()
        while time.monotonic() - clicked < 3 and session_cookie(page) is None:
            page.wait_for_timeout(20)
        if session_cookie(page) is not None:
            out["cookie"] = True
            out["cookie_s"] = time.monotonic() - clicked
        try:
            expect(page.get_by_text("Signed in as")).to_be_visible()
            out["signed_in"] = True
        except AssertionError:
            return out
        # A user's first click, straight after the signed-in page shows.
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Aging").click()
        time.sleep(2)
        heading = page.get_by_role("heading", name="Aging", exact=True)
        try:
            expect(heading).to_be_visible(timeout=5_000)
            out["click_kept"] = urlparse(page.url).path.rstrip("/").endswith("/aging")
        except AssertionError:
            pass
        page.reload()
        try:
            expect(page.get_by_text("Signed in as").or_(page.get_by_role("button", name="Login"))).to_be_visible()
            out["reload"] = page.get_by_text("Signed in as").count() > 0
        except AssertionError:
            pass
        if out["reload"]:
            page.get_by_role("button", name="Logout").click()
            try:
                expect(page.get_by_role("button", name="Login")).to_be_visible()
                deadline = time.monotonic() + 3
                while session_cookie(page) is not None and time.monotonic() < deadline:
                    page.wait_for_timeout(20)
                if session_cookie(page) is not None:
                    raise AssertionError("the cookie outlived the sign-out")
                page.reload()
                expect(page.get_by_role("button", name="Login")).to_be_visible()
                time.sleep(1)
                out["sign_out"] = page.get_by_text("Signed in as").count() == 0
            except (PlaywrightTimeout, AssertionError):
                pass
        return out
    finally:
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--user", default="cfo")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    work = Path(tempfile.mkdtemp(prefix="signin_bench_"))
    try:
        _demo_store(work / "ardesk.duckdb")
        with serve_app(work / "ardesk.duckdb", work) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            results = []
            for i in range(args.runs):
                r = _one_run(browser, url, args.user)
                results.append(r)
                print(i + 1, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
            browser.close()
        keys = ("signed_in", "cookie", "click_kept", "reload", "sign_out")
        print(" ".join(f"{k}={sum(bool(r[k]) for r in results)}/{len(results)}" for k in keys))
        times = sorted(float(r["cookie_s"]) for r in results if "cookie_s" in r)
        if times:
            print(f"cookie set after click: median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
