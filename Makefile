# Turnout: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PACKAGES := libs/common services/checkin services/followup services/analytics deploy/local

.PHONY: run test lint lint-js typecheck compose-check unit bench clean frontend browser-deps

$(STAMP): requirements-dev.txt services/requirements.lock $(addsuffix /pyproject.toml,$(PACKAGES))
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

# Front-end packages come from npm with a lockfile; the copy step puts the few
# files the pages load under each service's static/vendor (not committed).
FRONTENDS := $(wildcard services/checkin/frontend/package.json services/analytics/frontend/package.json)

frontend:
	@for pkg in $(FRONTENDS); do \
	  dir=$$(dirname $$pkg); \
	  if [ ! -d $$dir/node_modules ] || [ $$dir/package-lock.json -nt $$dir/node_modules ]; then \
	    npm ci --prefix $$dir --no-audit --no-fund --loglevel=error || exit 1; \
	  fi; \
	  (cd $$dir && node copy-vendor.mjs >/dev/null) || exit 1; \
	done

# Browser tests drive Debian's Chromium (a Playwright browser download fails here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium (run as root, or install it yourself)"; exit 1; }; }

## make run: the whole stack locally (broker, database, every service, demo data).
run: $(STAMP) frontend
	$(PY) -m turnout_local run

## make test: lint, type checks, compose validation and every test.
test: $(STAMP) lint lint-js typecheck compose-check frontend browser-deps
	bash scripts/pytest.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pre-commit validate-config .pre-commit-config.yaml

# ESLint (flat config: eslint.config.mjs) over our own browser JS, from the root
# package.json's lockfile; vendored npm copies and node_modules are not linted.
lint-js:
	@if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then \
	  npm ci --no-audit --no-fund --loglevel=error || exit 1; \
	fi
	npx --no-install eslint .

typecheck: $(STAMP)
	$(VENV)/bin/mypy --cache-dir .mypy_cache

compose-check: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash deploy/check-compose.sh

unit: $(STAMP)
	$(VENV)/bin/pytest tests -m "not integration and not e2e"

bench: $(STAMP)
	$(PY) bench/checkin_load.py
	$(PY) bench/kiosk_roster.py
	$(PY) bench/followup_send.py
	$(PY) bench/analytics_dashboard.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
