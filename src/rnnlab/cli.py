"""The wrapper every stage script runs in: readable errors, quiet TensorFlow, clean Ctrl-C."""

from __future__ import annotations

import os
import re
import resource
import sys
import tempfile
import time
from typing import Callable

from rnnlab.errors import RnnlabError

# TensorFlow reads these at import: set them before any stage imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


# Start-up lines TensorFlow's C++ side writes to stderr even with TF_CPP_MIN_LOG_LEVEL=3.
_TF_NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations|"
                       r"cpu_feature_guard|rebuild TensorFlow with the appropriate compiler")


def import_tensorflow():
    """Import TensorFlow with its start-up log noise filtered out; other stderr lines pass.

    The noise is written by C++ straight to file descriptor 2, so it is captured there (not in
    sys.stderr) for the duration of the import and replayed without the known noise lines.
    """
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if not _TF_NOISE.search(line):
                    print(line, file=sys.stderr)
    return tf


def run_stage(name: str, main: Callable[[], str]) -> None:
    """Run a stage's `main()`; it returns the one-line result the user sees at the end.

    Known failures (bad params, bad data, divergence) print one `name: error: ...` line and exit
    non-zero; Ctrl-C prints one line instead of a traceback. Outputs are written atomically by
    the library, so an interrupted stage never leaves a partial file.
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
