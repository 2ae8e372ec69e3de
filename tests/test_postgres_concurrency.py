"""Several processes writing one PostgreSQL store at once: nothing lost, nothing doubled (issue 18).

The demo store is copied to the test PostgreSQL (`ardesk db copy`'s engine function), then, as
separate OS processes started together: two `ardesk import invoices` of different files, two
`ardesk dunning run` for the same day (delivering to an outbox folder) and one `ardesk outreach retry`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from analytics.migrations import connect
from tests.conftest import demo_on_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
RUN_DAY = date(2026, 11, 2)
ROWS = 1500  # per file


def _invoices(path: Path, prefix: str) -> Decimal:
    """ROWS invoices of 20 new customers (the same in both files: both imports create them), overdue by RUN_DAY."""
    lines, total = ["customer_id,document_number,posting_date,due_date,amount"], Decimal(0)
    for i in range(ROWS):
        amount = Decimal(100 + i % 97) + Decimal(i % 100) / 100
        posted = date(2026, 8, 1) + timedelta(days=i % 60)
        lines.append(f"NEW-C{i % 20},{prefix}-INV-{i},{posted},{posted + timedelta(days=30)},{amount}")
        total += amount
    path.write_text("\n".join(lines) + "\n")
    return total


def test_imports_dunning_and_delivery_at_once(demo_store_file: Path, tmp_path: Path, pg_url: str) -> None:
    url = demo_on_postgres(demo_store_file, pg_url)
    store = connect(url)
    before = int(store.scalar("SELECT COUNT(*) FROM ledger_entries"))
    totals = {p: _invoices(tmp_path / f"{p}.csv", p) for p in ("A", "B")}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARDESK_OUTREACH_MODE": "outbox",
           "ARDESK_OUTBOX": str(tmp_path / "outbox")}
    cli = [sys.executable, "-m", "analytics.cli", "--db", url]
    commands = [
        [*cli, "import", "invoices", str(tmp_path / "A.csv")],
        [*cli, "import", "invoices", str(tmp_path / "B.csv")],
        [*cli, "dunning", "run", "--as-of", RUN_DAY.isoformat()],
        [*cli, "dunning", "run", "--as-of", RUN_DAY.isoformat()],
        [*cli, "outreach", "retry", "--as-of", RUN_DAY.isoformat()],
    ]
    procs = [subprocess.Popen(c, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    for (_out, err), _code in results:
        assert "Traceback" not in err and "UniqueViolation" not in err, err
    assert [code for _, code in results[:2]] == [0, 0], results[:2]

    try:
        # nothing lost: every row of both files, once, to the cent
        assert int(store.scalar("SELECT COUNT(*) FROM ledger_entries")) == before + 2 * ROWS
        for prefix, total in totals.items():
            n, s, docs = store.read(
                "SELECT COUNT(*) AS n, SUM(amount) AS s, COUNT(DISTINCT document_number) AS docs "
                "FROM ledger_entries WHERE document_number LIKE :p", {"p": f"{prefix}-INV-%"}).iloc[0]
            assert (int(n), int(docs)) == (ROWS, ROWS)
            assert Decimal(str(s)).quantize(Decimal("0.01")) == total
        # nothing doubled: one stage run per (invoice, stage, day); one message per idempotency key
        runs = store.read("SELECT entry_id, stage_no, COUNT(*) AS n FROM dunning_runs WHERE run_date = :d "
                          "GROUP BY entry_id, stage_no", {"d": RUN_DAY})
        assert len(runs) > 0 and int(runs["n"].max()) == 1
        msgs = store.read("SELECT idempotency_key, COUNT(*) AS n FROM messages GROUP BY idempotency_key")
        assert int(msgs["n"].max()) == 1
        sent_today = int(store.scalar("SELECT COUNT(*) FROM messages WHERE status = 'sent' AND sent_at >= :d",
                                      {"d": date.today()}))
        outbox = list((tmp_path / "outbox").rglob("*.eml"))
        assert sent_today > 0 and len(outbox) == sent_today  # each message delivered once
    finally:
        store.close()


def test_imports_and_dunning_runs_take_turns(pg_store) -> None:
    """While one transaction holds the imports' turn (one process the dunning runs'), another cannot take it."""
    import sqlalchemy as sa

    from analytics.store.locks import DUNNING_RUNS, IMPORTS, one_at_a_time, take_turn

    def free(name: str) -> bool:
        with pg_store.engine.connect() as other:
            return bool(other.execute(sa.text("SELECT pg_try_advisory_xact_lock(hashtext(:n))"), {"n": name}).scalar())

    with pg_store.engine.begin() as conn:
        take_turn(conn, IMPORTS)
        assert not free(IMPORTS) and free(DUNNING_RUNS)
    assert free(IMPORTS)  # released at commit
    with one_at_a_time(pg_store, DUNNING_RUNS):
        assert not free(DUNNING_RUNS)
    assert free(DUNNING_RUNS)


def test_failed_sign_ins_from_two_instances_all_count(pg_store, cheap_bcrypt: None) -> None:
    """Two app instances (two engines, no shared in-process lock) failing one user's sign-in at once:
    every failure is counted (the user's row is locked while counting)."""
    from concurrent.futures import ThreadPoolExecutor

    import sqlalchemy as sa

    from analytics.access.roles import SYSTEM
    from analytics.access.sign_in import SignInRules, attempt_sign_in
    from analytics.access.users import add_user
    from analytics.store.connection import Store

    add_user(pg_store, SYSTEM, "ana", "Ana Alves", "collector", password="right-password-1")
    rules = SignInRules(max_failed_logins=100)
    base = sa.engine.make_url(pg_store.url)
    instances = [Store(base.update_query_dict({"application_name": f"ardesk-{i}"}).render_as_string(False))
                 for i in range(2)]
    try:
        def fail(store: Store) -> None:
            for _ in range(10):
                assert not attempt_sign_in(store, "ana", "wrong", rules=rules).ok

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(fail, instances))
    finally:
        for s in instances:
            s.engine.dispose()
    assert int(pg_store.scalar("SELECT failed_logins FROM users WHERE username = 'ana'")) == 20
