"""What the dashboard tests share: a signed-in AppTest on a page, a tiny hand-built ledger, and
waiting for a dashboard to finish rendering in the browser.

The ledger, as of 2026-03-31 (due basis, USD):
- A (SMB, collector cara): INV1 100 due 2026-01-31 (59 days: 31-60), INV2 50 due 2026-04-09 (current);
- B (Enterprise, collector abe): INV3 200 due 2025-12-01 (120 days: 91-120), PAY1 30 unapplied;
- C (SMB, no collector): INV4 80 due 2026-03-01, paid in full 2026-03-31 (not open; the last posting date).
- D (Enterprise, collector abe): INV5 40 due 2025-12-15, written off 2026-03-01 (not open).
Total open 350 (SMB 150, Enterprise 200), unapplied -30.
Dunning: "Standard" (Reminder, Final notice) ran on INV1 and INV3 (both stages), "Call first" on INV4
(paid 25 days later). cara called A on 2026-03-02 and took a promise of 100 by 2026-03-20 (broken).
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.conftest import new_store, signed_in_app
from tests.ledger_builder import LedgerBuilder

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def signed_in(role: str, page: str | None = None, username: str = "tester") -> AppTest:
    """An AppTest of the app signed in as `role`, switched to `page` (see conftest.signed_in_app)."""
    return signed_in_app(role, username, page)


def small_ledger(path: Path) -> Path:
    """The hand-built ledger above, in a DuckDB file at `path`."""
    store = new_store(path)
    b = LedgerBuilder(store)
    b.customer("A", segment="SMB", collector="cara", name="Alpha Ltd")
    b.customer("B", segment="Enterprise", collector="abe", name="Beta Inc")
    b.customer("C", segment="SMB", collector=None, name="Gamma Co")
    b.customer("D", segment="Enterprise", collector="abe", name="Delta GmbH")
    b.invoice("A", "INV1", posted="2026-01-01", due="2026-01-31", amount=100)
    b.invoice("A", "INV2", posted="2026-03-10", due="2026-04-09", amount=50)
    b.invoice("B", "INV3", posted="2025-11-01", due="2025-12-01", amount=200)
    b.payment("B", "PAY1", posted="2026-03-15", amount=30)
    b.invoice("C", "INV4", posted="2026-02-15", due="2026-03-01", amount=80)
    b.payment("C", "PAY2", posted="2026-03-31", amount=80, applies={"INV4": 80})
    b.invoice("D", "INV5", posted="2025-11-15", due="2025-12-15", amount=40)
    b.write_off("D", "WO1", posted="2026-03-01", amount=40, applies={"INV5": 40})
    b.dunning_config(1, name="Standard", stages=[("Reminder", 1, "email"), ("Final notice", 30, "letter")])
    b.dunning_config(2, name="Call first", stages=[("Call", 5, "call")])
    b.dunning_run("A", "INV1", config_id=1, stage_no=1, run_date="2026-02-01")
    b.dunning_run("B", "INV3", config_id=1, stage_no=1, run_date="2025-12-02")
    b.dunning_run("B", "INV3", config_id=1, stage_no=2, run_date="2026-01-01")
    b.dunning_run("C", "INV4", config_id=2, stage_no=1, run_date="2026-03-06")
    b.activity("A", "call", at="2026-03-02", author="cara")
    b.activity("A", "promise", at="2026-03-02", author="cara", amount=100, due="2026-03-20", status="pending")
    store.close()
    return path


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# A dashboard is fully rendered in the browser when its footer ("computed in", drawn last) is
# visible, Streamlit's status widget is gone, no element still shows its loading skeleton (charts
# and tables load lazily), and every plotly chart has drawn its SVG.
RENDERED_JS = """() => {
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const footer = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .some(e => e.innerText.includes('computed in') && !e.closest('[data-stale="true"]'));
  if (!footer) return false;
  if (document.querySelector('[data-testid="stMain"] [data-testid="stSkeleton"]')) return false;
  return [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'));
}"""


def wait_rendered(page, timeout_ms: int = 60_000) -> None:
    """Block until the current dashboard is fully rendered (see RENDERED_JS); no fixed sleeps."""
    page.wait_for_function(RENDERED_JS, polling=50, timeout=timeout_ms)


def browser_metrics(page) -> dict[str, str]:
    """Metric tiles drawn by the current run (stale ones skipped): label -> value as displayed."""
    pairs = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMetric"]')]
      .filter(m => !m.closest('[data-stale="true"]'))
      .map(m => [m.querySelector('[data-testid="stMetricLabel"]').innerText,
                 m.querySelector('[data-testid="stMetricValue"]').innerText])""")
    return {label.strip(): value.strip() for label, value in pairs}


def sign_in_steady(page, username: str, password: str | None = None) -> None:
    """`conftest.sign_in`, typing again when the form was redrawn empty under it.

    On a busy machine the first sign-in after the server starts was often lost (the form came
    back empty and the click did nothing; seen at load 10-14 on 2 cores, with the old cookie
    component). So: wait for the idle app, type, click; if the form was dropped, type again (at
    most three times). A refusal fails at once.
    """
    from playwright.sync_api import expect

    from tests.conftest import DEMO_PASSWORD, submit_sign_in

    page.goto("/")
    for attempt in range(3):
        # a function, not an expression: Playwright evals an expression, which the app's CSP refuses
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", polling=50)
        expect(page.get_by_role("textbox", name="Username")).to_be_visible(timeout=30_000)
        outcome = submit_sign_in(page, username, password or DEMO_PASSWORD)
        if outcome == "signed in":
            break
        assert outcome == "dropped" and attempt < 2, f"sign-in as {username}: {outcome}"
    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=30_000)
