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

.PHONY: install system-packages cohort study test ui lint lock clean

install: $(STAMP)

# Torch first, at constraints.txt's version: without an NVIDIA driver the CPU build from PyTorch's
# CPU index (the default index's build when that cannot be reached), with one PyPI's (CUDA) build;
# pip keeps it when installing the project. TORCH_BUILD=cpu|default overrides the detection.
$(STAMP): pyproject.toml constraints.txt scripts/install_torch.sh
	test -x $(PY) || python3 -m venv $(VENV)
	scripts/install_torch.sh $(PY) constraints.txt
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

cohort: $(STAMP)
	$(PY) -m cmrbias_dagster.cli generate-cohort --profile $(PROFILE) --out $(COHORT)

# Progress on the terminal, each run's full output in the log folder it names (`cmrbias study --help`).
study: cohort
	$(VENV)/bin/cmrbias study

# The Debian packages the tests need (chromium, postgresql): installed when missing and this is root
# with apt-get, otherwise make stops, naming them and the command to run.
system-packages:
	scripts/system_packages.sh

test: system-packages $(STAMP)
	$(PY) -m pytest -q

# Fails the runs of killed processes, frees their pool slots, sets the pool limit to the training
# resource's slots (docs/scaling.md), then starts `dagster dev`.
ui: $(STAMP)
	$(VENV)/bin/cmrbias ui --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# constraints.txt from the tested .venv: every installed package at its exact version, torch without
# its local build label (2.13.0+cpu -> 2.13.0) so a GPU machine resolves the same version.
lock: $(STAMP)
	{ echo "# Exact versions of the tested .venv (pip freeze, without the project; torch without its"; \
	  echo "# build label), passed with -c to every pip install. Made by \`make lock\`: to refresh, upgrade"; \
	  echo "# packages in .venv, run \`make test\`, then \`make lock\`."; \
	  $(PY) -m pip freeze --exclude-editable | sed 's/^torch==\([^+]*\)+.*/torch==\1/'; \
	} > constraints.txt.new
	mv constraints.txt.new constraints.txt
	touch $(STAMP)

clean:
	rm -rf data/work/* .dagster_home/storage .dagster_home/history .dagster_home/schedules
