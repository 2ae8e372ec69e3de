# AR Desk: `make run` serves the app, `make test` runs the whole suite. Both start from a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PORT ?= 8501
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run cluster test lint bench lock clean-data system-test-deps

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

## cluster: HAProxy on http://localhost:$(CLUSTER_PORT) in front of two app processes sharing the PostgreSQL store ARDESK_DB
# Session affinity by cookie (config/haproxy.cfg); the instances share one cookie secret, made per start.
CLUSTER_PORT ?= 8500
CLUSTER_APP1_PORT ?= 8511
CLUSTER_APP2_PORT ?= 8512
cluster: $(VENV)/.runtime
	@case "$$ARDESK_DB" in postgresql*) ;; *) echo "make cluster needs ARDESK_DB=postgresql+psycopg://USER@HOST/DATABASE:" \
		"the instances share one PostgreSQL store (a DuckDB file serves one process; 'ardesk db copy' moves one)" >&2; exit 2;; esac
	@command -v haproxy >/dev/null || { echo "make cluster needs HAProxy: apt-get install haproxy (make system-test-deps does)" >&2; exit 2; }
	$(VENV)/bin/ardesk demo --if-empty
	$(VENV)/bin/ardesk users bootstrap
	@export STREAMLIT_SERVER_COOKIE_SECRET=$$(python3 -c 'import secrets; print(secrets.token_hex(32))'); \
	trap 'kill $$(jobs -p) 2>/dev/null; wait' EXIT INT TERM; \
	for port in $(CLUSTER_APP1_PORT) $(CLUSTER_APP2_PORT); do \
		$(VENV)/bin/streamlit run server.py --server.port $$port --server.address 127.0.0.1 --server.headless true \
			--browser.gatherUsageStats false --client.toolbarMode viewer & \
	done; \
	ARDESK_PROXY_BIND=":$(CLUSTER_PORT)" ARDESK_APP1="127.0.0.1:$(CLUSTER_APP1_PORT)" \
		ARDESK_APP2="127.0.0.1:$(CLUSTER_APP2_PORT)" haproxy -db -f config/haproxy.cfg & \
	wait -n

## system-test-deps: Debian's chromium for the browser tests, postgresql for the portability tests, haproxy for the cluster test,
## poppler-utils (pdftoppm, pdftotext) for the monthly pack's PDF tests
system-test-deps:
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

## test: lint, the architecture's import contracts, then the whole suite (page, browser, SMTP and PostgreSQL tests included)
# ARDESK_REQUIRE_PG=1: the PostgreSQL tests fail instead of skipping when no server can be had.
# tests/conftest.py marks the tests; three parts:
# 1. the tests that serve the app or drive a browser (`served`: their steps wait on real time), alone,
#    one worker per core, each taking half the files in order and, once done, tests from the end of the
#    other's half (worksteal);
# 2. the 5-minute soak (20 sessions of a served app), with the engine's tests on DuckDB and the AppTests
#    beside it at a lower priority, nice 10 (their steps do not wait on real time, but a test's own
#    subprocesses must still get some CPU beside the soak);
# 3. the engine's tests again on PostgreSQL (ARDESK_TEST_ENGINE=postgresql: tests/conftest.py gives them
#    databases on the throwaway server and deselects the rest). Not beside the served tests: the
#    server's own processes are not niced, and the browser steps then time out.
TEST_WORKERS ?= 2
PYTEST := env ARDESK_REQUIRE_PG=1 $(PY) -m pytest -q -p no:cacheprovider
SOAK_LOG := test-artifacts/soak.log
test: $(VENV)/.dev system-test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache
	@mkdir -p test-artifacts; echo "-- served app and browser tests"; \
	$(PYTEST) -n $(TEST_WORKERS) --dist worksteal -m served --ignore=tests/test_soak.py; served=$$?; \
	echo "-- the soak ($(SOAK_LOG)); the engine's tests on DuckDB and the AppTests beside it:"; \
	$(PYTEST) tests/test_soak.py > $(SOAK_LOG) 2>&1 & soak=$$!; \
	nice -n 10 $(PYTEST) -n $(TEST_WORKERS) --dist worksteal -m "not served" --ignore=tests/test_soak.py; rest=$$?; \
	wait $$soak; soaked=$$?; echo "-- the soak:"; cat $(SOAK_LOG); \
	echo "-- the engine's tests on PostgreSQL (ARDESK_TEST_ENGINE=postgresql):"; \
	env ARDESK_TEST_ENGINE=postgresql $(PYTEST) -n $(TEST_WORKERS) --dist worksteal --ignore=tests/test_soak.py; \
	on_postgresql=$$?; \
	[ $$served = 0 ] && [ $$rest = 0 ] && [ $$soaked = 0 ] && [ $$on_postgresql = 0 ]

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
