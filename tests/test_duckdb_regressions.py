"""DuckDB bugs that lost AR Desk data, reduced to plain `duckdb` (no SQLAlchemy, no AR Desk code).

Why duckdb is pinned to 2.0.1 (not 2.0.0): in DuckDB 2.0.0, an INSERT that writes no rows followed,
in the same transaction, by a large INSERT ... SELECT (above roughly 113k rows, about one row group,
read in parallel from a table, an Arrow table or Parquet; threads >= 2) into the same table leaves
the big insert's rows unreadable: the INSERT reports them, but scans of the table (plain COUNT(*),
SUM, MIN/MAX, filters, joins) return nothing, inside the transaction, after COMMIT on any connection,
and after a kill -9 and reopening the file (the WAL replay); only a clean close checkpoints them.
An invoice-register import hits exactly this: it re-inserts the "changed" entries (none on a first
import) before inserting the new ones, so 197k ledger entries vanished with no error and the
settlement allocations (a join to the new invoices) were never created. 2.0.1 and 1.5.x are correct.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

ROWS = 200_000  # well above the parallel-insert threshold (the bug needs more than ~113k rows)
CHECK = f"""SELECT COUNT(*), SUM(id), MIN(id), MAX(id), COUNT(*) FILTER (WHERE k = 'a'),
    (SELECT COUNT(*) FROM range({ROWS}) r(id) JOIN t USING (id)) FROM t"""
EXPECTED = [ROWS, ROWS * (ROWS - 1) // 2, 0, ROWS - 1, ROWS, ROWS]

# Runs in a child process, which kills itself with SIGKILL right after the commit.
WRITER = f"""
import json, os, signal, sys, duckdb
con = duckdb.connect(sys.argv[1])
def check(c):
    return [None if v is None else int(v) for v in c.execute({CHECK!r}).fetchone()]
con.execute("SET threads = 2")  # the big insert must run in parallel (1 thread hides the bug)
con.execute("CREATE TABLE t (id BIGINT, k VARCHAR)")
con.execute("CREATE TEMP TABLE src AS SELECT range AS id, 'a' AS k FROM range({ROWS})")
con.execute("BEGIN")
con.execute("INSERT INTO t SELECT 1, 'x' WHERE false")  # writes nothing, but is what triggers the bug
inserted = con.execute("INSERT INTO t SELECT id, k FROM src").fetchall()[0][0]
print(json.dumps(["inserted", inserted]), flush=True)
print(json.dumps(["in the transaction", check(con)]), flush=True)
con.execute("COMMIT")
print(json.dumps(["after commit, another cursor", check(con.cursor())]), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _ints(row: tuple) -> list[int | None]:
    return [None if v is None else int(v) for v in row]


def test_rows_of_a_large_insert_after_an_empty_insert_stay_visible_and_durable(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    child = subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr  # died by SIGKILL after the commit, not by an error
    seen = dict(json.loads(line) for line in child.stdout.splitlines())
    with duckdb.connect(str(path)) as con:  # reopened: the WAL replay after kill -9
        seen["after kill -9 and reopening"] = _ints(con.execute(CHECK).fetchone())
    assert seen == {"inserted": ROWS, "in the transaction": EXPECTED, "after commit, another cursor": EXPECTED,
                    "after kill -9 and reopening": EXPECTED}, f"duckdb {duckdb.__version__} loses the rows"
