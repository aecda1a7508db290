# The README's two commands: `make study` (the whole study on the embedded default) and `make test`.
PROFILE ?= quick
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COHORT := data/raw/synthetic_$(PROFILE)
PORT ?= 3000

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export CMRBIAS_PROFILE := $(PROFILE)
# nnU-Net: few worker processes on small machines.
export nnUNet_def_n_proc ?= 2

.PHONY: install cohort study test ui lint clean

install: $(STAMP)

# Torch first, pinned by constraints.txt, so pip keeps the CPU build on CPU machines instead of
# pulling a multi-GB CUDA build; on a GPU machine the same pin resolves to PyPI's CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

cohort: $(STAMP)
	$(PY) -m cmrbias_dagster.cli generate-cohort --profile $(PROFILE) --out $(COHORT)

study: cohort
	$(PY) -m cmrbias_dagster.study_runner

test: $(STAMP)
	$(PY) -m pytest -q

ui: $(STAMP)
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf data/work/* .dagster_home/storage .dagster_home/history .dagster_home/schedules
