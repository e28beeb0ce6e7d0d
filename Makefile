# Two commands on a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck pytest bench soak clean postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cardpos demo

lint: $(STAMP)
	$(BIN)/ruff check cardkit cardpos terminal ledger hardware-sim tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy cardkit cardpos terminal ledger hardware-sim/hwsim

pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n 4 --dist loadgroup -m 'not timing' $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q -m timing $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# Longer fault and fuzz loops than the ones make test runs.
soak: $(STAMP)
	CARDPOS_SOAK=1 $(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
