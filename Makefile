# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv, installs agentrel, runs `agentrel demo` (no keys, no services)
#   make test   creates .venv, installs the dev extras, runs ruff, mypy --strict and pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_ARGS ?=

.PHONY: demo test lint typecheck pytest bench clean dist wheel-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[cli,tenacity]'
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/agentrel demo $(DEMO_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench examples tools
	$(BIN)/ruff format --check src tests bench examples tools

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist .venv-wheel

# The release artefacts: sdist and wheel in dist/, their metadata checked (twine check
# --strict, then tools/check_dist.py: contents, name, version, extras, entry points).
dist: $(VENV)/.installed-dev
	rm -rf dist
	$(BIN)/python -m build --sdist --wheel --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/python tools/check_dist.py dist

# The test suite against the installed wheel (with [all]) in a fresh venv, not the source
# tree: what a user who runs pip install agentrel-otel gets. Builds with `make dist` first.
wheel-test: dist
	.ci/wheel-test

# The host libraries' own test suites (tenacity, stamina, backoff, LangGraph, langgraph-prebuilt,
# the OpenAI Agents SDK, openai-python), from their sdists at the installed versions, run once
# without and once with agentrel switched on; fails when a test passes only without agentrel.
# Its own venv: the hosts' test dependencies stay out of .venv. Versions follow .venv's when
# it exists. docs/reliability.md, "The host libraries' own test suites".
HOST_VENV ?= .venv-host
HOST_SUITES_ARGS ?=

$(HOST_VENV)/.installed: pyproject.toml tools/host_suites/requirements.txt
	$(PYTHON) -m venv $(HOST_VENV)
	$(HOST_VENV)/bin/python -m pip install --quiet --upgrade pip
	if [ -x $(BIN)/python ]; then $(BIN)/python -m pip freeze --exclude-editable \
	  > $(HOST_VENV)/constraints.txt; else : > $(HOST_VENV)/constraints.txt; fi
	$(HOST_VENV)/bin/python -m pip install --quiet -e '.[dev]' \
	  -r tools/host_suites/requirements.txt -c $(HOST_VENV)/constraints.txt
	touch $@

.PHONY: host-suites
host-suites: $(HOST_VENV)/.installed
	$(HOST_VENV)/bin/python tools/host_suites/run.py $(HOST_SUITES_ARGS)

# The ops kit, checked by the tools that read it, without Docker and without .venv (PyYAML for
# the generator's --check; promtool and amtool; node with tools/dashboard-check/node_modules,
# installed from its package-lock.json when missing). docs/operations.md, "Without Docker".
PROMTOOL ?= promtool
AMTOOL ?= amtool
NODE ?= node
NPM ?= npm

.PHONY: check-ops
check-ops:
	$(PYTHON) tools/ops/generate.py --check
	$(PROMTOOL) check config deploy/prometheus/prometheus.yml
	$(PROMTOOL) check config deploy/prometheus/prometheus.local.yml
	$(PROMTOOL) check rules prometheus/agentrel.rules.yml prometheus/agentrel.alerts.yml
	$(PROMTOOL) test rules prometheus/tests/*.test.yml
	$(AMTOOL) check-config deploy/alertmanager/alertmanager.yml
	cd tools/dashboard-check && \
	  if [ ! -x node_modules/.bin/tsc ]; then $(NPM) ci --no-audit --no-fund; fi && \
	  $(NODE) generate.mjs && $(NODE) node_modules/.bin/tsc --noEmit -p build/tsconfig.json

# The version matrix (tools/matrix): the integration and core tests at every dependency's
# lower bound, at the newest releases, on the httpx-era OpenAI/Anthropic SDKs, and on
# Python 3.10-3.13; each cell in its own venv under .venv-matrix/. docs/compatibility.md.
MATRIX_ARGS ?=

.PHONY: matrix
matrix:
	$(PYTHON) tools/matrix/run.py $(MATRIX_ARGS)
