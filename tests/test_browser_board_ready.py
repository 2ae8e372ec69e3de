"""Dashboards a CFO can put in front of the board, in real chromium at 1440 and 390 pixels (issue 20).

For every dashboard at each width: no tile label or value is cut ("…" or text wider than its box),
no table header is a raw column name (any key of the column-label dictionary), no plotly title
overlaps its legend (bounding boxes), and every download button has a label. Screenshots go to
test-artifacts/board_<page>_<width>.png. One page object per viewport, on the shared `app_server`.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from analytics.kpis.columns import COLUMN_LABELS
from tests.conftest import refuse_csp_violations, screenshot
from tests.dashboard_fixtures import sign_in_steady, wait_rendered

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 30_000
TYPED, PERIOD_START = date(2026, 5, 31), date(2025, 6, 1)  # the demo ledger ends 31 Oct 2026
DASHBOARDS = {"": "Overview", "aging": "Aging", "dso": "DSO & cash", "bad_debt": "Bad debt",
              "dunning": "Dunning effectiveness", "team": "Team"}

# Each table's grid lays out its (accessible) header row once it has measured its width.
HEADERS_DRAWN_JS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')]
  .filter(t => !t.closest('[data-stale="true"]')).every(t => t.querySelector('[role="columnheader"]'))"""

# Everything the checks read, in one evaluation per page (the page is drawn once, then measured).
MEASURE_JS = """() => {
  const live = e => !e.closest('[data-stale="true"]');
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const cut = e => [e, ...e.querySelectorAll('*')].some(x => x.scrollWidth > x.clientWidth + 1
      && getComputedStyle(x).overflowX !== 'visible');
  const tiles = [...document.querySelectorAll('[data-testid="stMetric"]')].filter(live).map(m => ({
    text: m.innerText.trim(), cut: cut(m.querySelector('[data-testid="stMetricLabel"]'))
                               || cut(m.querySelector('[data-testid="stMetricValue"]'))}));
  const headers = [...document.querySelectorAll('[data-testid="stDataFrame"] [role="columnheader"]')]
    .filter(live).map(h => h.textContent.trim());
  const tables = [...document.querySelectorAll('[data-testid="stDataFrame"]')].filter(live).length;
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(live).map(c => {
    const title = c.querySelector('.gtitle'), legend = c.querySelector('.legend');
    return {title: title ? title.textContent : '', titleBox: title ? box(title) : null,
            legendBox: legend ? box(legend) : null};
  });
  const downloads = [...document.querySelectorAll('[data-testid="stDownloadButton"] button')].filter(live)
    .map(b => { const c = b.cloneNode(true); c.querySelectorAll('[data-testid="stIconMaterial"]').forEach(i => i.remove());
                return c.innerText.trim(); });
  return {tiles, headers, tables, charts, downloads};
}"""


def _overlap(a: list[float] | None, b: list[float] | None) -> bool:
    return a is not None and b is not None and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class BoardAtWidth:
    """One viewport: a signed-in CFO's browser `width` pixels wide, measuring one dashboard at a time."""

    def __init__(self, browser, app_server: str, width: int) -> None:
        self.width = width
        self.context = browser.new_context(base_url=app_server, viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.violations = refuse_csp_violations(self.page)
        sign_in_steady(self.page, "cfo")
        wait_rendered(self.page)

    def open(self, path: str, title: str) -> dict:
        self.page.goto(f"/{path}")
        expect(self.page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=WAIT_MS)
        wait_rendered(self.page)
        expect(self.page.get_by_test_id("stException")).to_have_count(0)
        self.page.wait_for_function(HEADERS_DRAWN_JS, polling=100, timeout=WAIT_MS)
        screenshot(self.page, f"board_{path or 'overview'}_{self.width}")
        return self.page.evaluate(MEASURE_JS)

    def typed_date_applies_on_enter_and_survives_navigation(self) -> None:
        """Type a date in the as-of box and press Enter: it applies, the period follows it, and it stays
        through a sidebar link."""
        page = self.page
        page.goto("/aging")
        wait_rendered(page)
        field = page.get_by_test_id("stTextInput").filter(has_text="As of").locator("input")
        field.fill(TYPED.isoformat())
        field.press("Enter")
        caption = f"As of {TYPED:%d %b %Y} · period {PERIOD_START:%b %Y} – {TYPED:%b %Y}"
        expect(page.get_by_text(caption)).to_be_visible(timeout=WAIT_MS)
        expect(field).to_be_focused()  # applied by Enter alone, the box never left
        wait_rendered(page)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="DSO & cash").click()
        expect(page.get_by_role("heading", name="DSO & cash", exact=True)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text(caption)).to_be_visible(timeout=WAIT_MS)
        wait_rendered(page)
        assert parse_qs(urlparse(page.url).query)["as_of"] == [TYPED.isoformat()]
        assert "from" not in parse_qs(urlparse(page.url).query)  # the period still follows the date
        screenshot(page, "board_typed_date")

    def close(self) -> None:
        self.context.close()
        assert self.violations == [], "the Content-Security-Policy blocked something the app needs"


@pytest.mark.parametrize("width", [1440, 390])
def test_every_dashboard_reads_whole_at_desk_and_phone_width(browser, app_server: str, width: int) -> None:
    board = BoardAtWidth(browser, app_server, width)
    try:
        problems: list[str] = []
        seen_headers = 0
        for path, title in DASHBOARDS.items():
            m = board.open(path, title)
            assert m["tiles"] or path == "dunning", f"{title}: no tiles drawn"
            problems += [f"{title}: tile cut: {t['text']!r}" for t in m["tiles"]
                         if t["cut"] or t["text"].endswith("…") or "…\n" in t["text"]]
            if m["tables"]:
                assert m["headers"], f"{title}: tables drawn but no header readable"
            seen_headers += len(m["headers"])
            problems += [f"{title}: raw column name {h!r}" for h in m["headers"] if h in COLUMN_LABELS]
            problems += [f"{title}: legend over the title of {c['title']!r}" for c in m["charts"]
                         if _overlap(c["titleBox"], c["legendBox"])]
            problems += [f"{title}: a download button without a label ({d!r})" for d in m["downloads"]
                         if not d.startswith("Download")]
        assert seen_headers > 0
        assert not problems, "\n".join(problems)
        if width == 1440:
            board.typed_date_applies_on_enter_and_survives_navigation()
    finally:
        board.close()
