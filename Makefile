# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
# test processes: one a core (pytest-xdist; each worker has a database of its own)
JOBS   ?= auto

.PHONY: run test install install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## Set up, load the demo organisation and serve the back office on http://127.0.0.1:5000
run: install
	$(BIN)/laurel init --demo
	$(BIN)/laurel serve --port $(PORT)

## Run every test: lint, then the suite on SQLite, then on PostgreSQL when
## LAUREL_TEST_POSTGRES_URL is set (.ci/run sets it and starts PostgreSQL): there only the
## tests that use the database, the others having run on SQLite and doing the same anywhere.
test: install-test
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider -n $(JOBS)
	@if [ -n "$$LAUREL_TEST_POSTGRES_URL" ]; then \
	  echo "== the tests that use the database, again on PostgreSQL ($$LAUREL_TEST_POSTGRES_URL)"; \
	  LAUREL_TEST_DATABASE_URL="$$LAUREL_TEST_POSTGRES_URL" $(BIN)/pytest -q -p no:cacheprovider -n $(JOBS) --database-tests-only; \
	else \
	  echo "LAUREL_TEST_POSTGRES_URL is not set: the suite ran on SQLite only"; \
	fi

lint: install-test
	$(BIN)/ruff check .

## Benchmarks print their figures; they are not part of the test suite.
bench: install
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_run.py
	$(BIN)/python bench/bench_api.py

clean:
	rm -rf $(VENV) instance *.egg-info
