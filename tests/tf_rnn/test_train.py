"""The TensorFlow training loop (rnnlab.tf_rnn.train): learning, Keras optimisers and the cosine
schedule, determinism, divergence and argument checks."""

from __future__ import annotations

import os
import subprocess
import sys

import bits_probe
import numpy as np
import pytest

from rnnlab.choices import TF_OPTIMIZERS
from rnnlab.errors import DivergenceError
from rnnlab.pipeline.sequences import memory_task, sine_curves
from rnnlab.tf_rnn._tf import keras, set_determinism
from rnnlab.tf_rnn.losses import MEMORY_LOSS, SINE_LOSS
from rnnlab.tf_rnn.model import make_model
from rnnlab.tf_rnn.tasks import evaluate_memory, memory_arrays, sine_arrays
from rnnlab.tf_rnn.train import make_optimizer, train


def _rng(seed=0):
    return np.random.default_rng(seed)


def _memory_data(n, L, B, seed):
    inputs, targets = memory_task(n, L, B, 8, _rng(seed))
    return memory_arrays(inputs, targets)


def test_optimizers_are_keras_with_the_cosine_schedule():
    assert {name: type(make_optimizer(name, 0.01)).__name__ for name in TF_OPTIMIZERS} == {
        "adam": "Adam", "momentum": "SGD"}
    assert make_optimizer("momentum", 0.01).momentum == 0.9
    decayed = make_optimizer("adam", 0.01, decay_steps=100, decay_to=0.05).learning_rate
    schedule = make_optimizer("adam", 0.01, decay_steps=100, decay_to=0.05)._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    # lr(t) = lr * (decay_to + (1 - decay_to) * (1 + cos(pi t / T)) / 2), then flat at the end.
    for step, expected in [(0, 0.01), (50, 0.01 * (0.05 + 0.95 * 0.5)), (100, 5e-4), (300, 5e-4)]:
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5)
    assert float(decayed) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        make_optimizer("rmsprop", 0.01)


def test_lstm_learns_small_memory_task_and_reports_per_step_losses():
    L, B = 3, 1
    x, y = _memory_data(2000, L, B, seed=0)
    test_in, test_tg = memory_task(500, L, B, 8, _rng(1))
    model = make_model("lstm", 10, 10, lstm_hidden=32, seed=0)
    checkpoints = []

    def checkpoint(done):
        checkpoints.append(done)
        return False

    history = train(model, MEMORY_LOSS, x, y, epochs=10, batch_size=50, learning_rate=1e-2,
                    seed=0, desc="test", checkpoint_every=100, on_checkpoint=checkpoint)
    result = evaluate_memory(model, test_in, test_tg, L)
    assert result["test_accuracy"] > 0.6, result            # chance is 0.125
    baseline = L * np.log(8) / (2 * L + B + 1)               # per step, not summed over 50
    assert history["loss"][0] > 0.8 * baseline > history["loss"][-1]
    assert result["test_loss"] < 0.5 * baseline
    assert len(history["step"]) == 200 and checkpoints == [100, 200, 300, 400]


def test_sine_loss_drops():
    # Batches of 10 (< 2 chains of 8 rows): one recurrence in a while loop, quick to compile.
    curves = sine_curves(500, 41, 0.15, _rng(2))
    model = make_model("lstm", 1, 1, lstm_hidden=16, seed=0)
    history = train(model, SINE_LOSS, *sine_arrays(curves), epochs=4, batch_size=10,
                    learning_rate=1e-2, seed=0, input_noise=0.05, decay_to=0.1)
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert len(history["step"]) == len(history["loss"]) == 200 and history["step"][-1] == 200


def test_same_seed_gives_identical_weights():
    set_determinism(0)
    x, y = _memory_data(300, 2, 1, seed=4)

    def run(seed):
        model = make_model("lstm", 10, 10, lstm_hidden=8, seed=seed)
        train(model, MEMORY_LOSS, x, y, epochs=2, batch_size=30, learning_rate=1e-2,
              seed=seed, input_noise=0.1, decay_to=0.5)
        return model.get_weights()

    first, second, other = run(0), run(0), run(1)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert not np.array_equal(first["cell/kernel"], other["cell/kernel"])


@pytest.mark.slow
def test_the_weights_do_not_depend_on_how_many_cores_the_machine_has():
    """TensorFlow's default intra-op pool has a thread per core, and the thread count decides
    how a large matmul's sum is cut up: before rnnlab.tf_rnn._tf pinned it, one core, two and
    four gave three different sets of weights at this shape (and one core another layout).
    A sweep's worker, whose idle threads sleep instead of spinning, gets the same weights."""
    probe = [sys.executable, bits_probe.__file__]
    # every core of the machine first, alone: the one-core run then loads its program from
    # XLA's cache (a fresh process names the step as this one did; the pytest process would
    # not) instead of compiling it too, on one core, while the others compile theirs
    # (RNNLAB_CORES=4 sizes TensorFlow's inter-op pool: a program of its own in the cache)
    here = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    assert len(here) == 32, here  # a digest, not a probe that printed nothing
    one_core = {min(os.sched_getaffinity(0))}
    runs = [subprocess.Popen(probe, stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: os.sched_setaffinity(0, one_core)),
            subprocess.Popen(probe, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "RNNLAB_CORES": "4"}),
            subprocess.Popen([*probe, "--idle-threads-sleep"], stdout=subprocess.PIPE, text=True)]
    assert [run.communicate(timeout=300)[0].strip() for run in runs] == [here, here, here]


def test_divergence_is_reported():
    curves = sine_curves(64, 21, 0.15, _rng(5)) * 1e3
    model = make_model("rnn", 1, 1, lstm_hidden=8, rnn_hidden=8, rnn_init="identity", seed=0)
    with pytest.raises(DivergenceError, match="diverged|NaN"):
        train(model, SINE_LOSS, *sine_arrays(curves), epochs=20, batch_size=16,
              learning_rate=1e4, optimizer="momentum", clip_norm=0, seed=0)


def test_train_rejects_bad_arguments():
    x, y = _memory_data(20, 2, 1, seed=6)
    model = make_model("lstm", 10, 10, lstm_hidden=4)
    for kwargs, match in [(dict(epochs=0), "epochs"), (dict(batch_size=-1), "batch_size"),
                          (dict(learning_rate=float("nan")), "learning_rate"),
                          (dict(optimizer="rmsprop"), "Unknown optimizer"),
                          (dict(input_noise=-1.0), "input_noise")]:
        args = dict(epochs=1, batch_size=4, learning_rate=1e-3) | kwargs
        with pytest.raises(ValueError, match=match):
            train(model, MEMORY_LOSS, x, y, **args)
    with pytest.raises(ValueError, match="input features"):
        train(model, MEMORY_LOSS, x[..., :3], y, epochs=1, batch_size=4, learning_rate=1e-3)
