# The two commands of the README:
#   make run    create the environment, install rlkit, run the main job (writes runs/default/)
#   make test   the whole test suite (what .ci/run calls)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench-envs clean

$(PY): pyproject.toml scripts/find-python
	@set -e; py=$$(scripts/find-python); echo "using $$py ($$($$py --version))"; \
	  $$py -m venv $(VENV); \
	  $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --quiet -e ".[dev]"; \
	  touch $(PY)

run: $(PY)
	$(PY) -m experiments.train

test: $(PY)
	$(PY) -m pytest -q -n 2 tests

lint: $(PY)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench-envs: $(PY)
	$(PY) -m experiments.benchmarks.env_throughput

clean:
	rm -rf $(VENV) runs
