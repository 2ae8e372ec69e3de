"""Every dashboard renders on the demo data without an exception, for a role that may open it."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.access.roles import PAGES
from tests.dashboard_fixtures import signed_in

DASHBOARDS = ["overview", "aging", "dso", "bad_debt", "dunning", "team"]


@pytest.mark.slow
@pytest.mark.parametrize("key", DASHBOARDS)
def test_dashboard_renders_on_demo_data(app_env, demo_store_file: Path, key: str) -> None:
    spec = next(p for p in PAGES if p.key == key)
    app_env(demo_store_file)
    at = signed_in("analyst" if "analyst" in spec.roles else "admin", spec.path).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == spec.title
    assert not at.info, [i.value for i in at.info]  # demo data matches every default view
    assert any("computed in" in c.value for c in at.caption)
