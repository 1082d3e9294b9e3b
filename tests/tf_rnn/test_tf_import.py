"""rnnlab.tf_rnn._tf: TensorFlow imported quietly, and out of the garbage collector's way; its
idle threads asleep when a sweep's worker asks."""

import gc
import subprocess
import sys

from helpers import benchmark_module

from rnnlab.tf_rnn import _tf

FRESH_IMPORT = """
import gc, os
import rnnlab.tf_rnn._tf
print(gc.isenabled(), gc.get_freeze_count())
print(os.environ.get("TF_XLA_FLAGS", ""))
"""


def test_a_fresh_import_is_quiet_and_leaves_the_collector_on_with_tensorflow_frozen(tmp_path):
    """Also: the XLA cache a benchmark gives a child process (benchmarks/common.py,
    env_with_xla_cache) is the one the child uses, though this process, having imported
    rnnlab.tf_rnn._tf, has its own folder in TF_XLA_FLAGS for the child to inherit (unless
    the suite runs with the cache off: RNNLAB_XLA_CACHE empty)."""
    env = benchmark_module("common").env_with_xla_cache(str(tmp_path / "xla"))
    done = subprocess.run([sys.executable, "-c", FRESH_IMPORT], capture_output=True, text=True,
                          check=True, env=env)
    counts, flags = done.stdout.splitlines()[-2:]
    enabled, frozen = counts.split()
    assert enabled == "True"  # collecting again: the process's own garbage is freed
    assert int(frozen) > 100_000  # TensorFlow's and Keras's objects, out of its passes
    assert not [line for line in done.stderr.splitlines()
                if "oneDNN" in line or "cpu_feature_guard" in line], done.stderr
    assert [f for f in flags.split() if "persistent_cache_directory" in f] == [
        f"--tf_xla_persistent_cache_directory={tmp_path / 'xla'}"]


def test_a_collector_the_caller_turned_off_stays_off():
    gc.disable()
    try:
        with _tf._collector_paused_then_frozen():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


IDLE_THREADS_SLEEP = """
from tensorflow.python.eager import context
from rnnlab.tf_rnn._tf import idle_threads_sleep, tf
idle_threads_sleep()
tf.constant(1.0) + 1  # the runtime starts with the option
print(context.context().config.experimental.disable_thread_spinning)
try:
    idle_threads_sleep()
except RuntimeError as error:
    print(error)
"""


def test_idle_threads_sleep_sets_the_option_and_refuses_once_tensorflow_runs():
    done = subprocess.run([sys.executable, "-c", IDLE_THREADS_SLEEP], capture_output=True,
                          text=True, check=True)
    assert done.stdout.splitlines() == [
        "True", "idle_threads_sleep() must run before TensorFlow's first op"]
