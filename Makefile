# One command runs what CI runs: `make check` (format check, lint, type check, tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo check test lint typecheck format system-deps wheel-smoke bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(VENV)/.installed

## demo: set up and run the supervisor on its embedded simulated world (writes demo-out/)
demo: $(VENV)/.installed
	$(BIN)/mlops-supervisor demo --out demo-out

## check: set up and run everything CI runs
check: system-deps $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n auto --durations=20
	PYTHON=$(BIN)/python bash scripts/wheel-smoke.sh

test: $(VENV)/.installed-dev
	$(BIN)/pytest -n auto

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## wheel-smoke: the built wheel installs in a clean venv and runs demo and eval outside the repo
wheel-smoke: $(VENV)/.installed
	PYTHON=$(BIN)/python bash scripts/wheel-smoke.sh

system-deps:
	bash scripts/install-system-deps.sh

bench: $(VENV)/.installed-dev system-deps
	$(BIN)/python benchmarks/bench_decision_latency.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
