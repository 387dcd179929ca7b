# Headcount developer commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test check lint format typecheck bench schema clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP) ## start the service on SQLite + in-process presence, with the demo event
	$(BIN)/headcount serve --demo

# The in-process layers (unit, integration) run on two workers, each with databases of
# its own (pytest-xdist, a test file per worker at a time); the end-to-end tests, whose
# server processes, kills and timed graces want the machine's cores to themselves, run
# after them, one at a time. Both always run; the target fails if either did.
test: $(STAMP) ## install test dependencies and run the whole suite
	@status=0; \
	$(BIN)/python -m pytest -n 2 --dist loadfile tests/unit tests/integration $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS) || status=$$?; \
	exit $$status

check: lint typecheck ## ruff + mypy

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(STAMP) ## apply ruff formatting and fixes
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck: $(STAMP) ## mypy --strict on src/headcount, tests and bench
	$(BIN)/mypy

schema: $(STAMP) ## regenerate schema.graphql from the live GraphQL schema (commit it)
	$(BIN)/python -m headcount.api.graphql.export

bench: $(STAMP) ## run the benchmarks against this machine's PostgreSQL and Redis
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean: ## remove the virtualenv and local databases
	rm -rf $(VENV) headcount.db headcount.db-wal headcount.db-shm
