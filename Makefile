# promptrun: `make demo` runs the whole system on this machine; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test lint typecheck pytest demo stop bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check runtime tests benchmarks examples
	$(BIN)/ruff format --check runtime tests benchmarks examples

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest

test: lint typecheck pytest

demo: venv
	$(BIN)/python examples/demo.py

stop: venv
	$(BIN)/python examples/demo.py --stop

bench: venv
	$(BIN)/python benchmarks/run.py

bench-quick: venv
	$(BIN)/python benchmarks/run.py --quick

clean:
	rm -rf $(VENV) .demo .bench .mypy_cache .ruff_cache
