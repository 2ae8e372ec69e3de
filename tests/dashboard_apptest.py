"""What the dashboard page tests share: a signed-in AppTest on a page, and a tiny hand-built ledger.

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

from analytics.store import connect
from tests.ledger_builder import LedgerBuilder

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def signed_in(role: str, page: str | None = None, username: str = "tester") -> AppTest:
    """An AppTest of the app with the authenticator's session keys seeded, switched to `page`."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = f"Test {role}"
    at.session_state["roles"] = [role]
    at.session_state["logout"] = None
    if page:
        at.run()  # the first run registers the role's navigation; only then can it switch pages
        at.switch_page(page)
    return at


def small_ledger(path: Path) -> Path:
    """The hand-built ledger above, in a DuckDB file at `path`."""
    store = connect(str(path))
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
