# SFD Synchro — the two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The app on its embedded default (SQLite, file-system broker, the Sage stub): web, worker, beat, stub.
run: install
	./bin/run

## The whole suite. Groups whose service is missing are skipped and named at the end.
test: install
	$(BIN)/pytest

## The benchmarks (bench/README.md): PostgreSQL from DATABASE_URL (default postgres@127.0.0.1:5432), where a
## throwaway database <name>_bench is created and dropped; its own stub; one JSON line per benchmark. BENCH_SCALE=0.01
## for a quick run.
bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/ test-results/
