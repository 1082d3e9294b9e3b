"""The wrapper every stage script runs in: readable errors, a clean Ctrl-C, and one summary
line with where the time went (never written to metrics: metrics stay bit-identical)."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from typing import Callable

from rnnlab.errors import RnnlabError

# Read by TensorFlow and DVC at import: set before any stage imports them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

_seconds: dict[str, float] = {}
_started_here = False  # True in a worker (rnnlab.workflows.worker): no process start-up to count


def reset_phases() -> None:
    """Forget the phases counted so far: a stage run by a worker (in a fork of it) starts after
    the worker's own imports, which are no part of the stage's time."""
    global _started_here
    _seconds.clear()
    _started_here = True


@contextlib.contextmanager
def phase(name: str):
    """Count the block's wall time under `name` (import, data, train, evaluate, write, ...)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _seconds[name] = _seconds.get(name, 0.0) + time.perf_counter() - start


def add_phase(name: str, seconds: float) -> None:
    """Count `seconds` under `name` (e.g. compile time measured inside a training loop)."""
    _seconds[name] = _seconds.get(name, 0.0) + seconds


def _since_process_start() -> float | None:
    """Seconds since this process started (Linux; None elsewhere): the interpreter's start-up
    and the imports before run_stage."""
    try:
        fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time since boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def timing_line(total: float, startup: float | None) -> str:
    parts = [f"startup {startup:.1f}"] if startup is not None else []
    parts += [f"{name} {seconds:.1f}" for name, seconds in _seconds.items()]
    return f"{total:.1f} s: " + ", ".join(parts) if parts else f"{total:.1f} s"


def run_stage(name: str, main: Callable[[], str]) -> None:
    """Run a stage's `main()`; it returns the one-line result the user sees at the end.

    Known failures (bad params, bad data, divergence) print one `name: error: ...` line and exit
    non-zero; Ctrl-C prints one line instead of a traceback. Outputs are written atomically by
    the library, so an interrupted stage never leaves a partial result file.
    """
    startup = 0.0 if _started_here else _since_process_start()
    start = time.perf_counter()
    try:
        summary = main()
    except RnnlabError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; no partial outputs were written. Run `dvc repro` to resume.",
              file=sys.stderr)
        sys.exit(130)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(f"{name}: {summary} [{timing_line(time.perf_counter() - start, startup)}; "
          f"peak memory {peak_mb:.0f} MB]", flush=True)
