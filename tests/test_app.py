"""The app shell with AppTest: the sign-in form, a real sign-in, navigation by role, the Overview."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from streamlit.testing.v1 import AppTest

from analytics.ledger import portfolio_summary
from analytics.store import connect
from tests.conftest import DEMO_PASSWORD

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _signed_in(role: str, username: str = "tester") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = f"Test {role}"
    at.session_state["roles"] = [role]
    at.session_state["logout"] = None
    return at


def test_sign_in_form_then_wrong_and_right_password(app_env, demo_store_file: Path) -> None:
    app_env(demo_store_file)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    at.text_input[0].input("admin")
    at.text_input[1].input("not-the-password")
    at.button[0].click().run()
    assert "Username or password is incorrect." in [e.value for e in at.error]
    at.text_input[0].input("admin")
    at.text_input[1].input(DEMO_PASSWORD)
    at.button[0].click().run()
    assert at.session_state["authentication_status"] is True
    at.run()
    assert not at.exception
    assert at.title[0].value == "Overview"


def test_overview_matches_the_engine_and_follows_the_as_of_date(app_env, demo_store_file: Path) -> None:
    app_env(demo_store_file)
    at = _signed_in("cfo").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    store = connect(str(demo_store_file))
    expected = portfolio_summary(store, date(2026, 10, 31)).iloc[0]
    earlier = portfolio_summary(store, date(2026, 3, 31)).iloc[0]
    store.close()
    assert metrics["Open AR (USD)"] == f"{expected.open_ar:,.0f}"
    assert metrics["Overdue AR (USD)"] == f"{expected.overdue_ar:,.0f}"
    at.date_input(key="f_as_of").set_value(date(2026, 3, 31)).run()  # the shared sidebar as-of date
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Open AR (USD)"] == f"{earlier.open_ar:,.0f}"
    assert expected.open_ar != earlier.open_ar


def test_overview_on_an_empty_store_says_so(app_env, tmp_path: Path) -> None:
    connect(str(tmp_path / "empty.duckdb")).close()
    app_env(tmp_path / "empty.duckdb")
    at = _signed_in("viewer").run()
    assert not at.exception
    assert "The ledger is empty" in at.info[0].value
