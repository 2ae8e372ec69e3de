"""The app shell with AppTest: the sign-in form, a wrong and a right password, where each role lands."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.conftest import APPTEST_TIMEOUT_S, DEMO_PASSWORD, displayed

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_sign_in_form_then_wrong_and_right_password(app_env, demo_store_file: Path) -> None:
    app_env(demo_store_file)
    at = AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT_S).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    at.text_input[0].input("admin")
    at.text_input[1].input("not-the-password")
    at.button[0].click().run()
    assert "Username or password is incorrect." in [displayed(e.value) for e in at.error]
    at.text_input[0].input("admin")
    at.text_input[1].input(DEMO_PASSWORD)
    at.button[0].click().run()
    assert at.session_state["actor"].username == "admin"
    at.run()
    assert not at.exception
    assert at.title[0].value == "Overview"


def test_a_collector_lands_on_the_worklist(app_env, demo_store_file: Path) -> None:
    app_env(demo_store_file)
    at = AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT_S).run()
    at.text_input[0].input("ana.collector")
    at.text_input[1].input(DEMO_PASSWORD)
    at.button[0].click().run()
    at.run()
    assert not at.exception
    assert at.title[0].value == "Worklist"
