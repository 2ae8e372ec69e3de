# AR Desk: `make run` serves the app, `make test` runs the whole suite. Both start from a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PORT ?= 8501
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench lock clean-data system-test-deps

$(VENV)/.runtime: requirements.lock pyproject.toml
	@python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "AR Desk needs Python 3.11 or newer as python3")'
	python3 -m venv $(VENV)
	$(PIP) install -r requirements.lock 2> >(grep -v "is ignored: it is neither" >&2)
	$(PIP) install --no-deps -e . 2> >(grep -v "is ignored: it is neither" >&2)
	touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.runtime
	$(PIP) install -r requirements-dev.lock 2> >(grep -v "is ignored: it is neither" >&2)
	touch $@

## run: install, seed demo data on first start, serve on http://localhost:$(PORT)
# server.py is the app (app.py) plus the sign-in cookie routes, security headers and inbox watcher.
run: $(VENV)/.runtime
	$(VENV)/bin/ardesk demo --if-empty
	$(VENV)/bin/ardesk users bootstrap
	$(VENV)/bin/streamlit run server.py --server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false --client.toolbarMode viewer

## system-test-deps: Debian's chromium for the browser tests, postgresql for the portability tests,
## poppler-utils (pdftoppm, pdftotext) for the monthly pack's PDF tests
system-test-deps:
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

## test: lint, the architecture's import contracts, then the whole suite (page, browser, SMTP and PostgreSQL tests included)
# ARDESK_REQUIRE_PG=1: the PostgreSQL tests fail instead of skipping when no server can be had.
# The suite runs on one worker per core, each taking half the files in order and, once done, tests
# from the end of the other's half (worksteal); the 5-minute soak runs alone afterwards, as it would
# starve a test beside it.
TEST_WORKERS ?= 2
PYTEST := ARDESK_REQUIRE_PG=1 $(PY) -m pytest -q -p no:cacheprovider
test: $(VENV)/.dev system-test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache
	$(PYTEST) -n $(TEST_WORKERS) --dist worksteal --ignore=tests/test_soak.py
	$(PYTEST) tests/test_soak.py

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache

## bench: the benchmark scripts whose figures are in the README
bench: $(VENV)/.dev
	$(PY) bench/demo_generation.py --sizes 1000000 10000000
	$(PY) bench/kpis.py --sizes 1000000 10000000 --runs 15 --pandas-runs 3
	$(PY) bench/import.py --rows 10000000 --changed 10000
	$(PY) bench/pages.py --sizes 200000 1000000 --repeats 3
	$(PY) bench/worklist.py --entries 200000
	$(PY) bench/auth.py --audit-lines 1000000 --customers 100000
	$(PY) bench/segments.py --customers 100000
	$(PY) bench/sign_in_reliability.py --runs 20
	$(PY) bench/portal.py --entries 1000000 --runs 5

## lock: refresh the lock files after changing pyproject.toml (needs uv)
lock:
	uv pip compile pyproject.toml -o requirements.lock --python-version 3.11 -q
	uv pip compile pyproject.toml --extra dev -o requirements-dev.lock --python-version 3.11 -q

clean-data:
	rm -f data/ardesk.duckdb data/ardesk.duckdb.wal
