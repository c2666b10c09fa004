# Parcel Pro: `make run` starts everything on this machine, `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install run test lint fmt migrate openapi bench purge clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: install
	@mkdir -p var
	honcho start --procfile deploy/Procfile --app-root . --no-prefix --no-colour

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	ruff check .
	ruff format --check .
	mypy

fmt: install
	ruff format .
	ruff check --fix .

migrate: install
	$(PY) -m services.identity_api migrate
	$(PY) -m services.shipping_api migrate
	$(PY) -m services.privacy_api migrate

openapi: install
	$(PY) -m services.gateway openapi

bench: install
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf var/*.db var/*.db-* var/outbox .pytest_cache .mypy_cache .ruff_cache
