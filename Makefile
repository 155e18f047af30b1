# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Migrate the SQLite file under ./.ledger (or $LEDGER_DATA_DIR), make keys, create the
## demo member on first start, and serve on 127.0.0.1:8000.
run: $(STAMP)
	$(BIN)/ledger init --demo
	$(BIN)/ledger serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

## Lint, type-check and run the whole suite (PostgreSQL too when LEDGER_TEST_POSTGRES_URL is set).
test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/tokens.py

clean:
	rm -rf $(VENV) .coverage .pytest_cache .mypy_cache .ruff_cache
