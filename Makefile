# Gradlab: the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup deps system-deps assets lint typecheck pytest clean

run: deps
	bash scripts/install-system-deps.sh run
	bash scripts/build-assets.sh
	$(BIN)/python manage.py rundev

test: deps system-deps assets
	$(BIN)/python scripts/run_tests.py

setup: deps assets

deps: $(VENV)/.installed

$(VENV)/.installed: requirements.lock requirements-dev.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Gradlab needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	touch $@

system-deps:
	bash scripts/install-system-deps.sh test

assets:
	bash scripts/build-assets.sh

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules static/vendor var/staticfiles
