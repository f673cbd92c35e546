# promptrun: `make demo` runs the whole system on this machine; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv deps deps-sandbox test lint typecheck pytest demo stop bench bench-quick bench-scaleout bench-code bench-hostile bench-otlp bench-tracing clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium for the dashboard's browser tests (Playwright drives it; no browser download),
# Debian's PostgreSQL server for the PostgreSQL store's tests (they start a throwaway cluster
# of their own; the packaged service is not used), and bubblewrap, the sandbox workflow code
# nodes run in (the server refuses code nodes without it; the demo's workflow has one, so
# `make demo` installs it too). As root (CI) they are installed when missing; elsewhere the
# tests that need them skip unless CI is set, and the command to install them is printed.
deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	$(APT_INSTALL)

deps-sandbox:
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	$(APT_INSTALL)

APT_INSTALL = if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing:$$missing; run 'sudo apt-get install$$missing'"; \
	  fi; \
	fi

lint: venv
	$(BIN)/ruff check runtime tests benchmarks examples
	$(BIN)/ruff format --check runtime tests benchmarks examples

typecheck: venv
	$(BIN)/mypy

pytest: venv deps
	$(BIN)/pytest

test: deps lint typecheck pytest

demo: venv deps-sandbox
	$(BIN)/python examples/demo.py

stop: venv
	$(BIN)/python examples/demo.py --stop

bench: venv
	$(BIN)/python benchmarks/run.py

bench-quick: venv
	$(BIN)/python benchmarks/run.py --quick

# /health latency while one client attacks: hostile renders, 1,100 half-open connections (~1 min).
bench-hostile: venv
	$(BIN)/python benchmarks/hostile.py

# Several server processes on PostgreSQL, and the dashboard at a million requests (~10 min).
bench-scaleout: venv deps
	$(BIN)/python benchmarks/scaleout.py

# OpenTelemetry spans a second through POST /v1/traces (OTLP protobuf, 512-span exports).
bench-otlp: venv
	$(BIN)/python benchmarks/otlp_ingest.py

bench-tracing: venv
	$(BIN)/python benchmarks/tracing_cpu.py

# A code node's start-up cost in its sandbox (and unsandboxed, for comparison).
bench-code: venv
	$(BIN)/python benchmarks/code_node.py

clean:
	rm -rf $(VENV) .demo .bench .mypy_cache .ruff_cache
