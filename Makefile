# rnnlab: every target sets up .venv itself, so a fresh clone needs only Python 3.11+ and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Stages run `python stages/...`: put the venv first so dvc finds the right interpreter.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export TF_CPP_MIN_LOG_LEVEL := 3
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup repro test bench compare plots capacity clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("rnnlab needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,plots]'
	@touch $(STAMP)

repro: setup
	$(BIN)/dvc repro

test: setup
	$(BIN)/python -m pytest -n 2

bench: setup
	$(BIN)/python benchmarks/run.py

compare: setup
	$(BIN)/python -m rnnlab.compare

plots: setup
	$(BIN)/python -m rnnlab.plots_page show

capacity: setup
	$(BIN)/python -m rnnlab.capacity --jobs $(JOBS) $(if $(QUICK),--quick,)

clean-venv:
	rm -rf $(VENV)
