"""The wrapper every stage script runs in: readable errors, a clean Ctrl-C, one summary line."""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import Callable

from rnnlab.errors import RnnlabError

# Read by TensorFlow and DVC at import: set before any stage imports them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def run_stage(name: str, main: Callable[[], str]) -> None:
    """Run a stage's `main()`; it returns the one-line result the user sees at the end.

    Known failures (bad params, bad data, divergence) print one `name: error: ...` line and exit
    non-zero; Ctrl-C prints one line instead of a traceback. Outputs are written atomically by
    the library, so an interrupted stage never leaves a partial result file.
    """
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
    print(f"{name}: {summary} [{time.perf_counter() - start:.1f} s, peak memory {peak_mb:.0f} MB]",
          flush=True)
