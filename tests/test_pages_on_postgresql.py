"""Every page renders on PostgreSQL as it does on DuckDB: the demo store copied to the test server
(`ardesk db copy`), each page opened in AppTest by a role that may open it, with the same tiles,
the same table headers and the same row counts as on the DuckDB file it was copied from.

The page tests elsewhere run on DuckDB files (they read back what a page wrote through the file);
this module is the pages' PostgreSQL pass. Writes from pages on PostgreSQL are covered by the
cluster test (tests/test_cluster.py: follow-ups and uploads through two app instances).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.access.roles import PAGES, PageSpec
from tests.conftest import signed_in_app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROLE_ORDER = ("admin", "cfo", "analyst", "collector", "sales", "viewer")


def _role(spec: PageSpec) -> tuple[str, str]:
    """A role that may open the page, and the demo user to sign in as (a collector with accounts of his own)."""
    role = next((r for r in ROLE_ORDER if r in spec.roles), sorted(spec.roles)[0])
    return role, {"collector": "ana.collector"}.get(role, f"pg.{role}")


@pytest.fixture
def demo_url(pg_database) -> Iterator[str]:
    """The demo store as a PostgreSQL database of its own (the worker's demo template, cloned: a test's
    sign-ins and their audit lines are not the next test's)."""
    with pg_database("demo") as url:
        yield url


def _screen(at) -> dict:  # noqa: ANN001 - an AppTest
    """What a reader compares between two renderings of one page: title, tiles, tables' headers and sizes."""
    return {
        "title": [t.value for t in at.title],
        "tiles": [(m.label, m.value) for m in at.metric],
        "tables": [(list(d.value.columns), len(d.value)) for d in at.dataframe],
    }


def _render(app_env, db: str, spec: PageSpec):  # noqa: ANN001, ANN202 - the fixture and an AppTest
    role, username = _role(spec)
    app_env(db)
    return signed_in_app(role, username, page=spec.path).run()


@pytest.mark.parametrize("spec", PAGES, ids=lambda p: p.key)
def test_the_page_shows_the_same_on_postgresql(spec: PageSpec, demo_url: str, demo_store_file: Path,
                                              tmp_path: Path, app_env) -> None:
    import shutil

    on_duckdb_file = tmp_path / "demo.duckdb"
    shutil.copy(demo_store_file, on_duckdb_file)
    on_duckdb = _render(app_env, str(on_duckdb_file), spec)
    on_postgresql = _render(app_env, demo_url, spec)
    assert not on_postgresql.exception, [e.value for e in on_postgresql.exception]
    assert not on_duckdb.exception, [e.value for e in on_duckdb.exception]
    assert on_postgresql.title[0].value == spec.title
    assert _screen(on_postgresql) == _screen(on_duckdb)
