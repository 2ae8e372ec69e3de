"""User and imported text is shown as text: every value a page hands to a markdown-parsing call is escaped.

The page tests walk every element each page draws and read the fields Streamlit renders as
markdown (bodies, labels, help); none may hold the planted image, link, HTML or bold unescaped,
and each planted value the page shows must read literally once the escapes are removed.
"""

from __future__ import annotations

import re
import shutil
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message
from streamlit.testing.v1 import AppTest

from pages.plain_text import escape_markdown
from tests.conftest import DEMO_PASSWORD, displayed, signed_in_app
from tests.hostile_text import ADMIN, CFO, COLLECTOR, HOSTILE_CUSTOMER, build_hostile_store, hostile

PORT = 9  # no browser here: the URLs only have to be recognisable
# Proto fields Streamlit renders as markdown, and elements whose fields it never parses.
MARKDOWN_FIELDS = {"body", "label", "help", "text"}
PLAIN_ELEMENTS = {"text", "code", "arrow_data_frame", "json", "plotly_chart"}
RAW_MARKUP = re.compile(r"(?<!\\)(!\[|\[l\]|<img|\*\*bold)")


def test_escaped_text_reads_back_character_for_character() -> None:
    for text in (hostile("EVILname", 8080), string.punctuation, "Smith & Sons (EU) — 50% · ünïcødé",
                 ":material/home: :red[x] $x^2$ `code` a -> b", "line one\n# two\n- three\n1. four"):
        escaped = escape_markdown(text)
        assert displayed(escaped) == text
        assert not RAW_MARKUP.search(escaped)
    assert escape_markdown("Acme 3 GmbH") == "Acme 3 GmbH"  # letters, digits and spaces stay as they are


def _nodes(node) -> Iterator:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def _strings(message, fields: set[str]) -> Iterator[str]:
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None:
            for item in [value] if isinstance(value, Message) else value:  # one message, or a repeated field
                yield from _strings(item, fields)
        elif descriptor.name in fields and isinstance(value, str):
            yield value


def markdown_sources(at: AppTest) -> list[str]:
    """Every string the page's elements hand Streamlit to render as markdown."""
    found = []
    for node in _nodes(at._tree):
        proto = getattr(node, "proto", None)
        if proto is None or getattr(node, "type", None) in PLAIN_ELEMENTS:
            continue
        found += list(_strings(proto, MARKDOWN_FIELDS))
    return found


@pytest.fixture(scope="module")
def hostile_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once (its sign-ins hash passwords, which is slow); each test gets its own copy."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.duckdb"
    build_hostile_store(path, PORT, DEMO_PASSWORD)
    return path


@pytest.fixture
def hostile_store(hostile_file: Path, tmp_path: Path, app_env) -> Path:
    path = tmp_path / "hostile.duckdb"
    shutil.copy(hostile_file, path)
    app_env(path)
    return path


CASES = [  # role, username, page, query, the tags the page must show (literally)
    ("collector", COLLECTOR, "customer", {"customer": HOSTILE_CUSTOMER},
     {"EVILname", "EVILnote", "EVILdispute", "EVILtask"}),
    ("admin", ADMIN, "customer", {"customer": HOSTILE_CUSTOMER}, {"EVILname", "EVILnote", "EVILdispute"}),
    ("viewer", "val.viewer", "customer", {"customer": HOSTILE_CUSTOMER}, {"EVILname", "EVILnote"}),
    ("collector", COLLECTOR, "customer", {"customer": hostile("EVILurl", PORT)}, {"EVILurl"}),
    ("collector", COLLECTOR, "worklist", {}, {"EVILname"}),
    ("admin", ADMIN, "worklist", {}, {"EVILname"}),
    ("collector", "eve.collector", "worklist", {}, {"EVILdisplay"}),
    ("collector", "eve.collector", "account", {}, {"EVILdisplay"}),
    ("collector", COLLECTOR, "bulk", {}, set()),
    ("cfo", CFO, "overview", {}, set()),
    ("cfo", CFO, "aging", {"collector": hostile("EVILfilter", PORT)}, {"EVILfilter"}),
    ("cfo", CFO, "team", {}, set()),
    ("cfo", CFO, "audit", {}, set()),
    ("admin", ADMIN, "admin", {}, set()),
    ("admin", ADMIN, "imports", {}, set()),
]


def _check(at: AppTest, shows: set[str]) -> None:
    assert not at.exception, at.exception
    sources = markdown_sources(at)
    raw = [s for s in sources if RAW_MARKUP.search(s)]
    assert raw == [], f"user text reached markdown unescaped: {raw}"
    for tag in shows:
        assert any(f"{tag} ![x](http://127.0.0.1:{PORT}/{tag}" in displayed(s) for s in sources), tag


@pytest.mark.parametrize(("role", "username", "page", "query", "shows"), CASES,
                         ids=[f"{c[2]}-{c[1]}-{'-'.join(c[3]) or 'plain'}" for c in CASES])
def test_pages_show_user_text_as_text(hostile_store: Path, role: str, username: str, page: str, query: dict,
                                      shows: set[str]) -> None:
    at = signed_in_app(role, username)
    for key, value in query.items():  # the link as opened (a dashboard reads its filters from it) ...
        at.query_params[key] = value
    at.run()
    for key, value in query.items():  # ... and still there after the home page rewrote the URL
        at.query_params[key] = value
    at.switch_page(f"pages/{page}.py").run()
    _check(at, shows)


def test_bulk_preview_and_customer_follow_ups_show_user_text_as_text(hostile_store: Path) -> None:
    at = signed_in_app("collector", COLLECTOR, page="pages/bulk.py").run()
    at.multiselect(key="bulk_statuses").select("in_dispute")  # X1 has an open dispute
    at.checkbox(key="bulk_select_all").check().run()
    at.selectbox(key="bulk_preview_for").select(HOSTILE_CUSTOMER).run()
    _check(at, {"EVILname"})  # the preview's "To: ... (name)" and subject
    at = signed_in_app("collector", COLLECTOR).run()
    at.query_params["customer"] = HOSTILE_CUSTOMER
    at.switch_page("pages/customer.py").run()
    at.text_input(key="task_subject").input(hostile("EVILtyped", PORT))
    next(b for b in at.button if b.label == "Add task").click().run()
    _check(at, {"EVILtyped"})  # the new task's "Done: ..." button and the timeline


@pytest.mark.parametrize(("page", "table"), [("overview", "overview_top"), ("aging", "aging_table")])
def test_a_dashboard_row_opens_its_customer_under_a_literal_name(hostile_store: Path, page: str, table: str) -> None:
    at = signed_in_app("cfo", CFO, page=f"pages/{page}.py").run()
    rows = next(d for d in at.dataframe if d.proto.id.endswith(table)).value
    pick = rows.index[rows["customer_id"] == HOSTILE_CUSTOMER][0]
    at.session_state[table] = {"selection": {"rows": [int(pick)], "columns": [], "cells": []}}  # a row clicked
    at.run()
    _check(at, {"EVILname"})  # the "Open ... in Customer 360" link (and the aging drill-down's scope)
    assert any(link.proto.label.startswith("Open ") for link in at.get("page_link"))
