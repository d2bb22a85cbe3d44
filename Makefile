# The two quick-start commands are `make lab` and `make test`; both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cs3sync-installed

.PHONY: install lab test soak lint format bench clean

# (Re)install when the project metadata changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,dev,bench]"
	touch $(STAMP)

install: $(STAMP)

## JupyterLab on the embedded CS3 emulator with demo data.
lab: $(STAMP)
	$(PY) -m cs3sync lab $(ARGS)

## The whole test suite (unit, integration against the emulator, fault tests).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## kill -9 soak (not in `make test`): SOAK_ARGS="--cycles 20 --profile ocis --seed N"; exit 1 on any loss.
soak: $(STAMP)
	$(PY) tests/soak.py $(SOAK_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check cs3sync contents tests benchmarks
	$(PY) -m ruff format --check cs3sync contents tests benchmarks
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff check --fix cs3sync contents tests benchmarks
	$(PY) -m ruff format cs3sync contents tests benchmarks

## Side-by-side benchmarks; QUICK=1 for the short run; BENCH_ARGS=--snapshot measures the last commit.
bench: $(STAMP)
	$(PY) -m benchmarks $(if $(QUICK),--quick,) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
