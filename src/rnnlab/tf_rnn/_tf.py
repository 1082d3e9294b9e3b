"""TensorFlow, imported once and quietly: every module of the TensorFlow half takes `tf` from here.

TensorFlow's C++ side writes start-up lines (oneDNN notices, CPU feature hints, absl's "All log
messages before absl::InitializeLog") straight to file descriptor 2, even with
TF_CPP_MIN_LOG_LEVEL=3. They are captured there for the duration of the import and replayed
without the known noise, so real errors still reach the user.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read by TensorFlow at import


def _xla_cache_flag() -> str:
    """XLA's persistent compilation cache, shared by every process of this user: a queued
    experiment or a test that compiles a shape compiled before loads it instead (the same
    executable, so the same bits). RNNLAB_XLA_CACHE overrides the folder; empty turns it off."""
    folder = os.environ.get("RNNLAB_XLA_CACHE")
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "rnnlab", "xla")
    return f"--tf_xla_persistent_cache_directory={folder}" if folder else ""


if "tf_xla_persistent_cache_directory" not in os.environ.get("TF_XLA_FLAGS", ""):
    os.environ["TF_XLA_FLAGS"] = f"{os.environ.get('TF_XLA_FLAGS', '')} {_xla_cache_flag()}".strip()

_TF_NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations|"
                       r"cpu_feature_guard|rebuild TensorFlow with the appropriate compiler")


def _import_quietly():
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if not _TF_NOISE.search(line):
                    print(line, file=sys.stderr)
    return tensorflow


@contextlib.contextmanager
def _collector_paused_then_frozen():
    """Python's cyclic garbage collector off while TensorFlow and Keras import, then all they
    made moved out of its reach (gc.freeze): some 490,000 objects that live as long as the
    process, which the collector otherwise walks in each of its full passes, several during
    the import and one more at the interpreter's shutdown. benchmarks/import_time.py, back to
    back: the import about 1 s quicker, the shutdown after it 0.08 s instead of 0.8 s. It also
    keeps the import's garbage cycles, about 3,500 objects."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


from absl import logging as absl_logging  # noqa: E402  (absl comes with TensorFlow)

from rnnlab.training import available_cores  # noqa: E402

with _collector_paused_then_frozen():
    tf = sys.modules.get("tensorflow") or _import_quietly()
    keras = tf.keras  # Keras 3, through TensorFlow's import (so its start-up is quiet too)
# The Python-side loggers (AutoGraph notices, retracing warnings) only at ERROR.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
tf.autograph.set_verbosity(0)
absl_logging.set_verbosity(absl_logging.ERROR)

DTYPE = tf.float32


# The threads of one op (a matmul) are pinned, not the machine's core count (TensorFlow's
# default): Eigen cuts a large matmul's sum (the weight gradients over all stacked time steps)
# into one block per thread, so the thread count decides the order of the additions and with it
# the last bits. tests/bits_probe.py (train_memory's step shape) gave three different digests
# at a3d250d on one core, on two and with RNNLAB_CORES=4; pinned, they are the same
# (tests/tf_rnn/test_train.py checks it). Two, because the committed results were made with two
# (a 2-core machine's default) and steps this small gain little from more; on one core the two
# threads take turns.
INTRA_OP_THREADS = 2
tf.config.threading.set_intra_op_parallelism_threads(INTRA_OP_THREADS)
if "RNNLAB_CORES" in os.environ:  # a share of a shared machine: independent ops to match
    tf.config.threading.set_inter_op_parallelism_threads(available_cores())


def idle_threads_sleep() -> None:
    """Let the intra-op pool's idle threads sleep at once instead of spinning first (TensorFlow's
    ConfigProto option experimental.disable_thread_spinning, which tf.config does not expose).

    For a process that shares the machine with another training run (a sweep's workers): a
    thread spinning between the step's small kernels burns the core the other run needs.
    benchmarks/sweep_contention.py, two LSTM runs side by side on a quiet machine: 1.34-1.40x
    the work of one run at a time with it, 1.14-1.20x without (benchmarks/RESULTS.md). The
    step and its bits stay the same; a process alone gained nothing from it in a one-off check,
    so only the workers ask for it. Before TensorFlow's first op: the runtime reads its config
    once."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    eager = context.context()
    if eager._context_handle is not None:  # noqa: SLF001  (no public way to set the option)
        raise RuntimeError("idle_threads_sleep() must run before TensorFlow's first op")
    config = config_pb2.ConfigProto()
    if eager._config is not None:  # noqa: SLF001
        config.CopyFrom(eager._config)  # noqa: SLF001
    config.experimental.disable_thread_spinning = True
    eager._config = config  # noqa: SLF001


def set_determinism(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TF ops deterministic (same seed -> same bits)."""
    tf.keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
