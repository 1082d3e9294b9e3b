"""Running dvc from rnnlab's workflows (compare, capacity, the plots template).

Every call goes through this environment's dvc, with this environment's bin directory first on
PATH: DVC's queue workers start `dvc` by name and the stages run `python stages/...`, so without
it `python -m rnnlab.capacity` from a shell where the venv is not activated would queue
experiments that no worker ever picks up. Commands are argument lists, never shell strings.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any


def environment(**extra: str) -> dict[str, str]:
    """os.environ (plus `extra`) with the running interpreter's bin directory first on PATH."""
    env = dict(os.environ, **extra)
    bin_dir = str(Path(sys.executable).parent)
    path = env.get("PATH", "").split(os.pathsep)
    if path[:1] != [bin_dir]:
        env["PATH"] = os.pathsep.join([bin_dir, *path])
    return env


def dvc(*args: str, check: bool = True, quiet: bool = False,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one dvc command, echoing it (or silencing its output with quiet=True); `env` adds
    environment variables."""
    if not quiet:
        print(f"$ dvc {' '.join(args)}", flush=True)
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run(["dvc", *args], check=check, stdout=out, stderr=out,
                          env=environment(**(env or {})))


def dvc_output(*args: str, check: bool = False) -> str:
    """Run one dvc command and return its stdout (its stderr goes to ours)."""
    return subprocess.run(["dvc", *args], stdout=subprocess.PIPE, text=True, check=check,
                          env=environment()).stdout


def describe_failure(exc: subprocess.CalledProcessError) -> str:
    """What failed, for the one-line exit message: "`dvc exp show --json` failed with exit 1"."""
    command = exc.cmd if isinstance(exc.cmd, str) else shlex.join(exc.cmd)
    return f"`{command}` failed with exit {exc.returncode}"


def set_args(overrides: dict) -> list[str]:
    """`-S key=value` arguments of `dvc exp run` for {params.yaml key: value}."""
    args = []
    for key, value in overrides.items():
        if isinstance(value, bool) or value is None:  # YAML true, false and null
            text = "null" if value is None else str(value).lower()
        else:
            text = str(value)
        args += ["-S", f"{key}={text}"]
    return args


def key_value(text: str) -> tuple[str, Any]:
    """`section.key=value` (a `-S` option) -> (key, value), the value read as params.yaml would
    read it. Raises argparse.ArgumentTypeError."""
    import argparse

    from rnnlab.errors import ConfigError
    from rnnlab.pipeline.params import parse_yaml

    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise argparse.ArgumentTypeError(f"expected section.key=value, got {text!r}")
    try:
        return key, parse_yaml(value, f"-S {key}")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
