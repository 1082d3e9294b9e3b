# rnnlab: every target sets up .venv itself, so a fresh clone needs only Python 3.11+ and pip.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
TEMPLATE := .dvc/tmp/rnnlab_plots_template.html
# Stages run `python stages/...`: put the venv first so dvc finds the right interpreter.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export TF_CPP_MIN_LOG_LEVEL := 3
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
SEEDS    ?= 3

.PHONY: setup repro test test-fast bench compare plots capacity deps clean-venv

setup: $(STAMP) $(TEMPLATE)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("rnnlab needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The offline page template behind plain `dvc plots show` / `dvc plots diff` (no CDN needed).
$(TEMPLATE): $(STAMP)
	$(BIN)/python -m rnnlab.workflows.plots_template

repro: setup
	$(BIN)/dvc repro

test: setup
	$(BIN)/python -m pytest -n 2 --dist worksteal

test-fast: setup
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not slow"

bench: setup
	$(BIN)/python benchmarks/run.py

compare: setup
	$(BIN)/python -m rnnlab.workflows.compare --seeds $(SEEDS) --jobs $(JOBS)

plots: setup
	$(BIN)/dvc plots show

capacity: setup
	$(BIN)/python -m rnnlab.workflows.capacity --jobs $(JOBS) $(if $(QUICK),--quick,)

deps: setup
	$(BIN)/python -m rnnlab.pipeline.code_deps

clean-venv:
	rm -rf $(VENV)
