# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck unit bench clean catalogues messages

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e './client[photos]' -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) messages

## Compile the gettext catalogues (zh-CN, en) that the service and the console read.
messages: $(STAMP)
	$(BIN)/python -m ledger.i18n.catalogues compile

## After changing texts for people: extract them, update both catalogues, then write the
## Chinese in ledger/i18n/locales/zh_CN/LC_MESSAGES/ledger.po (the check lists what is missing).
catalogues: $(STAMP)
	$(BIN)/python -m ledger.i18n.catalogues update
	-$(BIN)/python -m ledger.i18n.catalogues check
	$(BIN)/python -m ledger.i18n.catalogues compile

## Migrate the SQLite file under ./.ledger (or $LEDGER_DATA_DIR), make keys, create the
## demo member on first start, and serve on 127.0.0.1:8000.
run: $(STAMP) messages
	$(BIN)/ledger init --demo
	$(BIN)/ledger serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) messages
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

## Lint, type-check and run the whole suite (PostgreSQL too when LEDGER_TEST_POSTGRES_URL is set).
test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/tokens.py

clean:
	rm -rf $(VENV) .coverage .pytest_cache .mypy_cache .ruff_cache
