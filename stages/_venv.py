"""Imported first by every stage script, before rnnlab: a stage that DVC starts with a `python`
that lacks rnnlab (`.venv/bin/dvc repro` from a shell where the environment is not activated
runs the system's `python`) ends with one line that says what to do, not an import traceback."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("rnnlab") is None:
    sys.exit(f"{Path(sys.argv[0]).stem}: error: this `python` ({sys.executable}) does not have "
             f"rnnlab installed; activate the project's environment first "
             f"(`source .venv/bin/activate`, or `make setup` if there is no .venv), then run "
             f"the command again")
