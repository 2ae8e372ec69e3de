"""The hand-computed KPI tests again, on PostgreSQL: the SQL is portable, not just DuckDB-shaped.

Runs on the `pg_url` fixture's database: `ARDESK_TEST_PG_URL` if set (a throwaway database: its
public schema is dropped and recreated per test), else a throwaway server started from Debian's
`postgresql` package. Skips only when neither exists; `make test` (ARDESK_REQUIRE_PG=1) fails instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

import tests.test_kpi_aging as aging_tests
import tests.test_kpi_aging_shapes as aging_shapes_tests
import tests.test_kpi_bad_debt as bad_debt_tests
import tests.test_kpi_collected_window as collected_window_tests
import tests.test_kpi_dso as dso_tests
import tests.test_kpi_dunning_collectors as dunning_tests
import tests.test_kpi_provision as provision_tests
import tests.test_risk as risk_tests
import tests.test_stage_results as stage_results_tests
from analytics.migrations import connect
from tests.conftest import empty_postgres

pytestmark = pytest.mark.postgres

FIXTURES = {
    aging_tests: {"ledger": aging_tests.ledger},
    dso_tests: {"ledger": dso_tests.ledger},
    bad_debt_tests: {"ledger": dso_tests.ledger, "aging_ledger": aging_tests.ledger},
    dunning_tests: {"dunning": dunning_tests.dunning, "team": dunning_tests.team},
    stage_results_tests: {},
    aging_shapes_tests: {"ledger": aging_shapes_tests.ledger},
    collected_window_tests: {},
    provision_tests: {"cohort_ledger": provision_tests.cohort_ledger},
    risk_tests: {"risky": risk_tests.risky},
}
CASES = [
    pytest.param(module, fn, id=f"{module.__name__.rsplit('.', 1)[1]}::{name}")
    for module in FIXTURES
    for name, fn in inspect.getmembers(module, inspect.isfunction)
    if name.startswith("test_") and fn.__module__ == module.__name__
    and inspect.signature(fn).parameters  # a test of pure functions touches no store: nothing to port
    and not {"as_of", "capsys", "tmp_path", "demo_store", "by"} & set(inspect.signature(fn).parameters)
]


@pytest.mark.parametrize(("module", "test"), CASES)
def test_same_results_on_postgres(module, test: Callable, pg_url: str) -> None:
    store = connect(empty_postgres(pg_url))
    try:
        kwargs = {}
        for name in inspect.signature(test).parameters:
            kwargs[name] = store if name == "store" else FIXTURES[module][name].__wrapped__(store)
        test(**kwargs)
    finally:
        store.close()


def test_a_postgres_store_has_the_report_indexes_and_sessions_without_jit(pg_store) -> None:  # noqa: ANN001
    """The covering indexes of `schema.POSTGRES_INDEXES` exist on a fresh store, and report sessions
    run without JIT and with 64MB for hash aggregates (`connection.POSTGRES_SESSION`)."""
    from analytics.store.schema import POSTGRES_INDEXES

    names = set(pg_store.read("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")["indexname"])
    assert {index.name for index in POSTGRES_INDEXES} <= names
    assert pg_store.read("SELECT current_setting('jit') AS jit, current_setting('work_mem') AS work_mem"
                         ).to_dict("records") == [{"jit": "off", "work_mem": "64MB"}]
