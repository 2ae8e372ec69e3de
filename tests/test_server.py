"""The server itself (server.py, what `make run` starts): security headers on every HTTP response,
and the inbox watcher started with the server, so a queued job is ingested without any page open."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pytest

from analytics.access.roles import SYSTEM
from analytics.ingest.inbox import folders_for, pending_jobs, stage_import
from analytics.ingest.mapping import Mapping
from analytics.migrations import connect
from tests.conftest import serve_app

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects: status, headers (lower-case names), body."""
    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(_NoRedirect).open(url, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A server started on a store whose inbox already holds a job (queued while the app was down)."""
    workdir = tmp_path_factory.mktemp("served")
    db = workdir / "ardesk.duckdb"
    connect(str(db)).close()
    folders = folders_for(str(db))
    rows = pa.table({"cust": ["C1", "C1"], "doc": ["I-1", "I-2"], "date": ["2024-01-02", "2024-01-03"],
                     "amount": ["10", "20"]})
    mapping = Mapping(dataset="invoices", columns={"customer_id": "cust", "document_number": "doc",
                                                   "posting_date": "date", "amount": "amount"})
    job = stage_import(folders.inbox, rows, mapping, SYSTEM, source_label="queued while down")
    with serve_app(db, workdir, ARDESK_INBOX_POLL="0.2") as url:  # serve_app requests /_stcore/health only
        yield url, folders, job


def test_a_job_queued_while_the_app_was_down_is_ingested_at_start_with_no_page_open(served) -> None:
    _, folders, job = served
    deadline = time.monotonic() + 60
    while pending_jobs(folders.inbox) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pending_jobs(folders.inbox) == [], "the job still waits: the watcher did not start with the server"
    assert (folders.done / job.name).exists()  # moved to done/ only after the import committed
    assert not folders.failed.exists() or not any(folders.failed.iterdir())


def test_every_response_carries_the_security_headers(served) -> None:
    url = served[0]
    status, headers, body = _get(f"{url}/")
    assert status == 200
    script = re.search(rb'<script type="module" crossorigin src="\./(static/js/[^"]+\.js)"', body)
    assert script, "Streamlit's index.html changed: find its main script"
    responses = {path: _get(f"{url}/{path}") for path in
                 ("", "aging?segment=enterprise", "_stcore/health", script.group(1).decode(),
                  "auth/session?ticket=nonsense", "auth/sign-out", "no-such-file.png")}
    for path, (status, headers, _) in responses.items():
        assert status in (200, 303, 404), (path, status)
        csp = dict(d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";"))
        assert csp["default-src"] == "'self'", path
        assert csp["frame-ancestors"] == "'none'", path
        assert csp["object-src"] == "'none'", path
        assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"], path
        assert "*" not in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["x-frame-options"] == "DENY", path
        assert "strict-transport-security" not in headers, path  # plain http: no HSTS
    status, headers, _ = responses["auth/session?ticket=nonsense"]
    assert (status, headers["location"]) == (303, "/") and "set-cookie" not in headers  # an unknown ticket
