# Every check has one entry point here; CI (.ci/run) calls `make test`, as the README shows.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

venv: $(UV) ## create or update .venv from uv.lock
	$(UV) sync --locked --all-groups --python $(PYTHON) --quiet

demo: venv ## run the whole loop end to end on the embedded services and print a summary
	$(VENV)/bin/lessonloop demo

up: venv ## serve API + portal + workers on :8000 (Ctrl-C stops everything)
	$(VENV)/bin/lessonloop up --port 8000

test: venv ## run the whole test suite (real PostgreSQL, Redis, Chromium)
	$(PY) -m pytest -q

lint: venv ## ruff
	$(VENV)/bin/ruff check .

eval: venv ## simulated learners: curator vs random cold path vs fixed order
	$(VENV)/bin/lessonloop model simulate

bench: venv ## benchmarks; writes docs/benchmarks.md
	$(PY) -m loadtests.bench

chaos: venv ## the long chaos run (docs/reliability.md)
	$(PY) -m loadtests.chaos

clean: ## remove the environments and the local data folder
	rm -rf $(VENV) $(TOOLS) .lessonloop

.PHONY: help venv demo up test lint eval bench chaos clean
