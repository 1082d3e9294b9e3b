"""rnnlab.tf_rnn._tf: TensorFlow imported quietly, and out of the garbage collector's way; its
idle threads asleep when a sweep's worker asks."""

import gc
import subprocess
import sys

from rnnlab.tf_rnn import _tf

FRESH_IMPORT = """
import gc
import rnnlab.tf_rnn._tf
print(gc.isenabled(), gc.get_freeze_count())
"""


def test_a_fresh_import_is_quiet_and_leaves_the_collector_on_with_tensorflow_frozen():
    done = subprocess.run([sys.executable, "-c", FRESH_IMPORT], capture_output=True, text=True,
                          check=True)
    enabled, frozen = done.stdout.split()
    assert enabled == "True"  # collecting again: the process's own garbage is freed
    assert int(frozen) > 100_000  # TensorFlow's and Keras's objects, out of its passes
    assert not [line for line in done.stderr.splitlines()
                if "oneDNN" in line or "cpu_feature_guard" in line], done.stderr


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
