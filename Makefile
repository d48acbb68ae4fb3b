# SFD Synchro — the two commands of the README, `make run` and `make test`, and the edit loop's `make test-fast`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast install lint format bench messages clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The app on its embedded default (SQLite, file-system broker, the Sage stub): web, worker, beat, stub.
run: install
	-./bin/check-ocr
	./bin/run

## The whole suite, what CI runs. Groups whose service is missing are skipped and named at the end.
test: install
	-./bin/check-ocr
	$(BIN)/pytest

## The edit loop: the suite without the slow tests and the browser journeys (markers in pyproject.toml). Run
## `make test` before pushing: CI runs the whole suite.
test-fast: install
	$(BIN)/pytest -m "not slow and not browser"

## The benchmarks (bench/README.md): PostgreSQL from DATABASE_URL (default postgres@127.0.0.1:5432), where a
## throwaway database <name>_bench is created and dropped; its own stubs; Redis from BENCH_REDIS_URL or
## CELERY_BROKER_URL (required by the rows with real workers); one JSON line per benchmark. BENCH_SCALE=0.01
## for a quick run.
bench: install
	$(BIN)/python -m bench

## The French catalogue, locale/fr/LC_MESSAGES/django.po and the django.mo compiled from it (both committed): run
## it after adding or changing a message. The code's messages are French already, so each msgstr repeats its msgid
## (msgen), plural forms included: that is what gives them French's rule, where 0 and 1 take the singular. A reworded
## message is not left fuzzy but given its new text. Needs GNU gettext (xgettext, msgattrib, msgen, msgfmt).
MESSAGES_PO := locale/fr/LC_MESSAGES/django.po
MESSAGES_IGNORE := tests bench loadtest static staticfiles var build test-results sfd_synchro.egg-info
messages: install
	$(BIN)/python manage.py makemessages --locale fr --no-location --no-obsolete --no-wrap \
		$(foreach path,$(MESSAGES_IGNORE),--ignore $(path))
	msgattrib --clear-fuzzy --empty --no-wrap --output-file $(MESSAGES_PO) $(MESSAGES_PO)
	msgen --no-wrap --output-file $(MESSAGES_PO) $(MESSAGES_PO)
	sed -i '/^"POT-Creation-Date: /d' $(MESSAGES_PO)
	msgfmt --check-format --output-file $(MESSAGES_PO:.po=.mo) $(MESSAGES_PO)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/ test-results/
