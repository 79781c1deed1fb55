# Turnout: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PACKAGES := libs/common services/checkin services/followup services/analytics deploy/local

.PHONY: run test lint typecheck compose-check unit integration e2e bench clean

$(STAMP): requirements-dev.txt services/requirements.lock $(addsuffix /pyproject.toml,$(PACKAGES))
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

## make run: the whole stack locally (broker, database, every service, demo data).
run: $(STAMP)
	$(PY) -m turnout_local run

## make test: lint, type checks, compose validation and every test.
test: $(STAMP) lint typecheck compose-check
	bash scripts/pytest.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

compose-check: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash deploy/check-compose.sh

unit: $(STAMP)
	$(VENV)/bin/pytest tests -m "not integration and not e2e"

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
