"""`ardesk db copy`: the 20k demo store moved to PostgreSQL, checked against an independent read of both."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from analytics.cli.main import main
from analytics.kpis.aging import aging_buckets
from analytics.kpis.summary import kpi_summary
from analytics.ledger.monthly_summaries import summaries_cover
from analytics.migrations import connect
from analytics.store.schema import ENTRY_IDS
from tests.conftest import empty_postgres
from tests.test_monthly_summaries import assert_kept_equals_recompute

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _duck_tables(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        return {n: con.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}  # noqa: S608


def test_copy_demo_store_to_postgres(demo_store_file: Path, tmp_path: Path, pg_url: str, capsys) -> None:
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_store_file, path)
    url = empty_postgres(pg_url)
    assert main(["db", "copy", "--from", str(path), "--to", url]) == 0
    out = capsys.readouterr().out
    assert "counts and sums equal" in out and "ledger_entries" in out

    # Independent read: plain duckdb and psycopg, every table of the file, not the schema module.
    duck = _duck_tables(path)
    assert duck["ledger_entries"] > 19_000 and duck["audit_log"] > 0 and duck["users"] >= 4
    with psycopg.connect(_plain(url)) as pg:
        for table, n in duck.items():
            assert pg.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] == n, table  # noqa: S608
        pg_sums = pg.execute("SELECT (SELECT SUM(amount) FROM ledger_entries), (SELECT SUM(amount) FROM allocations), "
                             "(SELECT SUM(entry_id) FROM ledger_entries)").fetchone()
        pg_users = pd.DataFrame(pg.execute("SELECT username, role, password_hash, failed_logins FROM users "
                                           "ORDER BY username").fetchall())
        pg_audit = pg.execute("SELECT MAX(audit_id), MIN(logged_at) FROM audit_log").fetchone()
    with duckdb.connect(str(path), read_only=True) as con:
        duck_sums = con.execute("SELECT (SELECT SUM(amount) FROM ledger_entries), (SELECT SUM(amount) FROM allocations), "
                                "(SELECT SUM(entry_id) FROM ledger_entries)").fetchone()
        duck_users = pd.DataFrame(con.execute("SELECT username, role, password_hash, failed_logins FROM users "
                                              "ORDER BY username").fetchall())
        duck_audit = con.execute("SELECT MAX(audit_id), MIN(logged_at) FROM audit_log").fetchone()
    assert [Decimal(str(v)) for v in pg_sums] == [Decimal(str(v)) for v in duck_sums]
    pd.testing.assert_frame_equal(pg_users, duck_users)
    assert pg_audit == duck_audit

    source, target = connect(str(path)), connect(url)
    try:
        as_of = date(2026, 10, 31)
        pd.testing.assert_frame_equal(aging_buckets(target, as_of), aging_buckets(source, as_of), check_dtype=False)
        # the monthly summaries arrive with the rows: current on the server, and read there
        assert_kept_equals_recompute(target)
        with target.engine.connect() as conn:
            assert summaries_cover(conn, [date(2026, 9, 30)], need_edge=90)
        mid = date(2026, 10, 17)
        pd.testing.assert_frame_equal(kpi_summary(target, mid), kpi_summary(source, mid), check_dtype=False)
        # the server's sequences continue after the copied ids
        with target.write() as conn:
            next_id = conn.execute(sa.text(f"SELECT nextval('{ENTRY_IDS}')")).fetchall()[0][0]
        assert next_id > target.scalar("SELECT MAX(entry_id) FROM ledger_entries")
    finally:
        source.close()
        target.close()

    # a second copy onto the now full target is refused, and says how to go ahead
    assert main(["db", "copy", "--from", str(path), "--to", url]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "ledger_entries (" in err and "--replace" in err
    assert main(["db", "copy", "--from", str(path), "--to", url, "--replace"]) == 0
    with psycopg.connect(_plain(url)) as pg:
        assert pg.execute("SELECT COUNT(*) FROM ledger_entries").fetchone()[0] == duck["ledger_entries"]


def test_copy_refuses_clearly(tmp_path: Path, capsys) -> None:
    src = tmp_path / "s.duckdb"
    connect(str(src)).close()
    assert main(["db", "copy", "--from", str(tmp_path / "missing.duckdb"), "--to", "postgresql+psycopg://x@127.0.0.1:1/x"]) == 2
    assert "existing DuckDB store file" in capsys.readouterr().err
    assert main(["db", "copy", "--from", str(src), "--to", "postgresql+psycopg://nobody@127.0.0.1:1/nothing"]) != 0
    assert "Could not open the store" in capsys.readouterr().err
