"""Nothing committed is lost when the running app is stopped (SIGTERM, SIGINT, kill -9): the app's
server, which starts the inbox watcher, commits a queued 200,000-row import; after the stop the
ledger equals a pandas computation of the file, and the next import works. The files, the ledger
check and the other writers (the watcher alone, the command line) are in `test_durability.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.migrations import connect
from tests.conftest import app_process
from tests.test_durability import (
    ROWS,
    SIGNALS,
    expected,
    invoice_file,
    ledger,
    run_ardesk,
    stop,
    wait_for_done_job,
)


@pytest.mark.slow
@pytest.mark.parametrize("how", list(SIGNALS))
def test_a_committed_inbox_import_survives_the_app_being_stopped(tmp_path: Path, how: str) -> None:
    """The running app (its server, which starts the watcher) commits a queued 200k-row import and is
    stopped with SIGTERM, Ctrl-C or kill -9: after the restart every row is there, once."""
    db = tmp_path / "ardesk.duckdb"
    connect(str(db)).close()
    first = invoice_file(tmp_path / "first.csv", ROWS, 0, seed=1)
    with app_process(db, tmp_path, ARDESK_INBOX_POLL="0.2") as (_, proc):
        out = run_ardesk(db, "import", "invoices", str(tmp_path / "first.csv"))
        assert "queued" in out.lower()  # the app owns the file
        wait_for_done_job(tmp_path / "done", proc)
        stop(proc, SIGNALS[how])

    assert ledger(db) == expected(first)
    second = invoice_file(tmp_path / "second.csv", 1_000, ROWS, seed=2)
    run_ardesk(db, "import", "invoices", str(tmp_path / "second.csv"))
    assert ledger(db) == expected(first, second)
