# drlab: `make lab-up` starts the default lab, `make test` runs every test.
# Both set themselves up on a fresh machine: .venv with the pinned Python packages, and
# Azurite from npm (`npm ci`). When that is already done they skip it.

PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.drlab-installed
NODE_STAMP := node_modules/.drlab-installed
PYTEST_ARGS ?=

.PHONY: install lab-up lab-down lab-status test unit integration e2e bench lint format clean

install:
	@$(MAKE) --no-print-directory -j2 $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing Python packages into $(VENV)"
	@$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@echo "installing Azurite (npm ci)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lab-up: install
	$(BIN)/drlab up

lab-down: install
	$(BIN)/drlab down

lab-status: install
	$(BIN)/drlab status

# The whole suite, unit to e2e, in parallel.
test: install
	$(BIN)/pytest -n auto --dist loadscope $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest -n auto --dist loadscope tests/unit $(PYTEST_ARGS)

integration: install
	$(BIN)/pytest -n auto --dist loadscope tests/integration $(PYTEST_ARGS)

e2e: install
	$(BIN)/pytest -n auto --dist loadscope tests/e2e $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) node_modules .pytest_cache
