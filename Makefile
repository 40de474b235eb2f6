# statement-bot: `make run` starts the bot, `make test` installs everything and runs the suite.
PYTHON ?= python3
VENV := .venv
SYNAPSE_VENV := .venv-synapse
BIN := $(VENV)/bin
SYNAPSE_VERSION ?= 1.163.2
DB ?= var/statement-bot.db

.PHONY: run test install install-test synapse lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Synapse lives in its own virtualenv: a test-only tool, never a dependency of the bot.
$(SYNAPSE_VENV)/.installed:
	$(PYTHON) -m venv $(SYNAPSE_VENV)
	$(SYNAPSE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SYNAPSE_VENV)/bin/pip install --quiet 'matrix-synapse==$(SYNAPSE_VERSION)'
	touch $@

synapse: $(SYNAPSE_VENV)/.installed

run: install
	@mkdir -p $(dir $(DB))
	$(BIN)/statement-bot --db $(DB) import samples/statements
	$(BIN)/statement-bot --db $(DB) run

test: install-test synapse
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python benchmarks/store.py --count 10000

clean:
	rm -rf $(VENV) $(SYNAPSE_VENV) build *.egg-info
