# rnnlab: every target sets up .venv itself, so a fresh clone needs only Python 3.11+ and pip.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
# Every package `make setup` installs, pinned with hashes (`make lock` writes it; see there).
LOCK     := requirements/lock.txt
TEMPLATE := .dvc/tmp/rnnlab_plots_template.html
# Stages run `python stages/...`: put the venv first so dvc finds the right interpreter.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export TF_CPP_MIN_LOG_LEVEL := 3
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
SEEDS    ?= 3
# XLA's compilation cache (~/.cache/rnnlab/xla) only grows; the targets that run TensorFlow first
# keep its most recently used programs within this many MiB and remove the rest (rnnlab.xla_cache).
XLA_CACHE_MAX_MIB ?= 1024

.PHONY: setup lock lint repro test test-fast bench compare plots capacity ablation papers deps clean-venv \
        prune-xla-cache

setup: $(STAMP) $(TEMPLATE)

# Installs exactly $(LOCK), hash-checked (pip, setuptools and wheel included), then the project
# itself without dependencies or build isolation. check_lock.py first stops with one line if the
# lock disagrees with pyproject.toml, and at the end confirms the venv holds exactly the lock's
# pins. The new venv's own pip installs only the lock's uv (hash-checked); uv then makes the venv
# exactly the lock (`uv pip sync` also removes what the lock no longer holds). uv downloads and
# installs in parallel: `make setup` took 31 s against 67 s with pip, both with empty caches
# (benchmarks/RESULTS.md, "Installing the lock"). Bytecode is compiled at install, as pip does,
# since every TensorFlow process would otherwise compile its imports anew where
# PYTHONDONTWRITEBYTECODE is set. --no-config: no uv.toml of the user's moves where the lock's
# files come from.
UV_INTO_VENV := $(BIN)/uv pip --quiet --no-config
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit("rnnlab needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python tools/check_lock.py
	@$(BIN)/python tools/check_lock.py --entry uv > $(VENV)/lock-uv.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/lock-uv.txt
	$(UV_INTO_VENV) sync --python $(BIN)/python --require-hashes --compile-bytecode $(LOCK)
	$(UV_INTO_VENV) install --python $(BIN)/python --no-deps --no-build-isolation -e .
	@$(BIN)/python tools/check_lock.py --installed
	@touch $(STAMP)

# Re-resolves pyproject.toml (dependencies, extras test and dev) and requirements/build.in into
# $(LOCK): universal markers (Linux x86_64 and aarch64 are what is tested), Python 3.11+, hashes
# from PyPI. By default every version installed in .venv is kept (its `pip freeze` is the
# constraints file) and the lock's other pins (e.g. tensorflow for aarch64) are preferred, so only
# what pyproject.toml newly asks for moves. `make lock UPGRADE=1` lets everything move to the
# newest allowed versions. Then `make setup test` and commit the lock.
LOCK_CONSTRAINTS := $(VENV)/lock-constraints.txt
lock:
	@test -x $(BIN)/uv || { echo "make lock: no $(BIN)/uv; run make setup (or $(BIN)/python -m pip install uv)" >&2; exit 1; }
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^#' > $(LOCK_CONSTRAINTS)
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra test --extra dev --universal --python-version 3.11 --generate-hashes --no-config --quiet $(if $(UPGRADE),--upgrade,--constraints $(LOCK_CONSTRAINTS)) --output-file $(LOCK)
	@sed -i '1i # Written by `make lock$(if $(UPGRADE), UPGRADE=1,)` (see the Makefile)$(if $(UPGRADE),,; $(LOCK_CONSTRAINTS) held the `pip freeze --exclude-editable` of .venv). Install it with make setup.' $(LOCK)
	@$(BIN)/python tools/check_lock.py && echo "wrote $(LOCK); now make setup test, then commit it"

lint: setup
	$(BIN)/ruff check src stages tests benchmarks tools

# The offline page template behind plain `dvc plots show` / `dvc plots diff` (no CDN needed).
$(TEMPLATE): $(STAMP)
	$(BIN)/python -m rnnlab.workflows.plots_template

prune-xla-cache: setup
	@$(BIN)/rnnlab xla-cache --quiet --max-mib $(XLA_CACHE_MAX_MIB)

repro: setup prune-xla-cache
	$(BIN)/dvc repro

test: setup prune-xla-cache
	$(BIN)/python -m pytest -n 2 --dist worksteal

test-fast: setup prune-xla-cache
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not slow"

bench: setup prune-xla-cache
	$(BIN)/rnnlab bench

compare: setup prune-xla-cache
	$(BIN)/rnnlab compare --seeds $(SEEDS) --jobs $(JOBS)

plots: setup
	$(BIN)/dvc plots show

capacity: setup prune-xla-cache
	$(BIN)/rnnlab capacity --jobs $(JOBS) $(if $(QUICK),--quick,)

ablation: setup prune-xla-cache
	$(BIN)/rnnlab ablation --jobs $(JOBS)

papers: setup prune-xla-cache
	$(BIN)/rnnlab papers --jobs $(JOBS)

deps: setup
	$(BIN)/rnnlab deps

clean-venv:
	rm -rf $(VENV)
