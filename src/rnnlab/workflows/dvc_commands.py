"""Running dvc from rnnlab's workflows (compare, capacity, the plots template).

Every dvc command goes through this environment's dvc, with this environment's bin directory
first on PATH: the stages run `python stages/...`, so without it `python -m rnnlab.capacity`
from a shell where the venv is not activated would train with another interpreter. Commands
are argument lists, never shell strings.
The experiments themselves run in worker processes (rnnlab.workflows.queue and .worker).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
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


def dvc_output_retried(*args: str, attempts: int = 3, pause: float = 2.0) -> str:
    """stdout of a dvc command that must succeed: retried `attempts` times (DVC's own lock
    or a busy queue fail now and then), then a RuntimeError with one line saying why."""
    for attempt in range(attempts):
        proc = subprocess.run(["dvc", *args], capture_output=True, text=True, env=environment())
        if proc.returncode == 0:
            return proc.stdout
        if attempt + 1 < attempts:
            time.sleep(pause)
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")] or lines
    reason = f": {errors[-1]}" if errors else ""
    raise RuntimeError(f"`dvc {' '.join(args)}` failed {attempts} times (exit {proc.returncode})"
                       f"{reason}")


def describe_failure(exc: subprocess.CalledProcessError) -> str:
    """What failed, for the one-line exit message: "`dvc exp show --json` failed with exit 1"."""
    command = exc.cmd if isinstance(exc.cmd, str) else shlex.join(exc.cmd)
    return f"`{command}` failed with exit {exc.returncode}"


def set_values(overrides: dict) -> list[str]:
    """`key=value` strings (what `-S` takes) for {params.yaml key: value}."""
    values = []
    for key, value in overrides.items():
        if isinstance(value, bool) or value is None:  # YAML true, false and null
            text = "null" if value is None else str(value).lower()
        else:
            text = str(value)
        values.append(f"{key}={text}")
    return values


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
