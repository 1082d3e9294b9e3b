"""Optimisers, the training loop, recall accuracy and saving the numpy RNNClassifier
(rnnlab.numpy_rnn.optimizers, .train, .model)."""

from __future__ import annotations

import copy
import os
import pickle
import platform
import subprocess
import sys

import numpy as np
import pytest

from rnnlab.choices import NUMPY_OPTIMIZERS
from rnnlab.errors import DivergenceError
from rnnlab.numpy_rnn.loss import cross_entropy_loss
from rnnlab.numpy_rnn.model import RNNClassifier
from rnnlab.numpy_rnn.optimizers import OPTIMIZERS, SGD, Adam, make_optimizer
from rnnlab.numpy_rnn.train import evaluate_recall, train_classifier
from rnnlab.pipeline.sequences import copy_task


def test_optimizer_table_offers_exactly_the_allowed_names():
    assert tuple(OPTIMIZERS) == NUMPY_OPTIMIZERS


def test_optimizers_first_step():
    p, g = np.array([1.0, -2.0]), np.array([0.5, -4.0])
    SGD(0.1).step([(p, g, "p")])
    np.testing.assert_allclose(p, [0.95, -1.6])
    p = np.array([1.0, -2.0])
    Adam(0.01).step([(p, g, "p")])  # the first Adam step moves every entry by ~lr
    np.testing.assert_allclose(p, [0.99, -1.99], rtol=1e-6)


def test_optimizer_and_training_arguments_are_checked():
    with pytest.raises(ValueError, match="learning_rate"):
        SGD(-1.0)
    with pytest.raises(ValueError, match="beta1"):
        Adam(1e-3, beta1=1.0)
    model = RNNClassifier(10, 4, rng=0)
    x, y = copy_task(8, 3, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="optimizer"):
        train_classifier(model, x, y, optimizer="rmsprop", learning_rate=0.1, batch_size=4,
                         steps=1, clip_norm=5.0, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        train_classifier(model, x, y, optimizer="sgd", learning_rate=0.1, batch_size=0,
                         steps=1, clip_norm=5.0, seed=0)


class _FixedModel:
    """Stands in for RNNClassifier: returns the logits it was given."""

    vocab_size, dtype = 10, np.float64

    def __init__(self, logits):
        self.logits = logits
        self.seen = 0

    def forward(self, x_onehot):
        out = self.logits[self.seen:self.seen + len(x_onehot)]
        self.seen += len(x_onehot)
        return out


def test_accuracy_counts_only_recalled_positions():
    L = 4
    x, y = copy_task(6, L, 8, np.random.default_rng(5))
    predicted = y.copy()
    predicted[:, :L + 1] = 3  # every blank and the delimiter wrong...
    result = evaluate_recall(_FixedModel(10.0 * np.eye(10)[predicted]), x, y, L + 1)
    assert result["test_accuracy"] == 1.0  # ...does not count
    assert result["accuracy_by_position"] == [1.0] * L

    predicted = y.copy()
    predicted[:3, L + 2] = (y[:3, L + 2] + 1) % 8  # 3 of 6 wrong at the 2nd recalled position
    predicted[:, L + 4] = (y[:, L + 4] + 1) % 8  # all wrong at the 4th
    result = evaluate_recall(_FixedModel(10.0 * np.eye(10)[predicted]), x, y, L + 1,
                             batch_size=4)  # evaluated in two chunks
    assert result["accuracy_by_position"] == [1.0, 0.5, 1.0, 0.0]
    assert result["test_accuracy"] == pytest.approx(2.5 / 4)
    assert result["test_loss"] > 0


def _small_task(seed=0):
    rng = np.random.default_rng(seed)
    return copy_task(3000, 5, 8, rng), copy_task(500, 5, 8, rng)


def test_small_copy_task_learns_and_logs_windows_and_checkpoints():
    (x, y), (xt, yt) = _small_task()
    model = RNNClassifier(10, 50, init="permutation", rng=0)
    windows, checkpoints = [], []

    def checkpoint(done):
        checkpoints.append((done, evaluate_recall(model, xt, yt, 6)["test_accuracy"]))
        return False

    history = train_classifier(model, x, y, optimizer="adam", learning_rate=3e-3, batch_size=32,
                               steps=1500, clip_norm=5.0, seed=0,
                               on_window=lambda step, loss: windows.append((step, loss)),
                               checkpoint_every=500, on_checkpoint=checkpoint)
    result = evaluate_recall(model, xt, yt, recall_start=6)
    assert result["test_accuracy"] >= 0.6, result  # chance is 1/8
    assert len(history["step"]) == len(history["loss"]) == 188  # windows of ceil(1500/200) = 8
    assert history["step"][-1] == 1500 and history["loss"][-1] < 0.5 * history["loss"][0]
    assert windows == list(zip(history["step"], history["loss"], strict=True))
    assert [step for step, _ in checkpoints] == [500, 1000, 1500]
    assert checkpoints[-1][1] == result["test_accuracy"]


def test_a_checkpoint_can_stop_training():
    (x, y), _ = _small_task()
    history = train_classifier(RNNClassifier(10, 8, rng=0), x, y, optimizer="adam",
                               learning_rate=1e-3, batch_size=16, steps=100, clip_norm=5.0,
                               seed=0, checkpoint_every=30, on_checkpoint=lambda done: done >= 60)
    assert history["step"][-1] == 60


def test_same_seed_same_weights():
    (x, y), _ = _small_task()
    states = []
    for seed in (0, 0, 1):
        model = RNNClassifier(10, 16, init="identity", rng=0)
        train_classifier(model, x, y, optimizer="adam", learning_rate=1e-3, batch_size=16,
                         steps=60, clip_norm=5.0, seed=seed)
        states.append(model.state_dict())
    for name in states[0]:
        np.testing.assert_array_equal(states[0][name], states[1][name])
    assert any(not np.array_equal(states[0][n], states[2][n]) for n in states[0])


@pytest.mark.parametrize("cores", [1, 3, 8])
def test_a_large_step_has_the_same_bits_on_any_number_of_cores(monkeypatch, cores):
    """B = H = 256 is split over the cores (rnnlab.numpy_rnn._threads); the weights after a few
    steps must not depend on how many there are (they did: 1, 3 and 8 each gave other bits
    than 2)."""
    from rnnlab.numpy_rnn import _threads

    def trained(n_cores):
        monkeypatch.setattr(_threads, "n_cores", lambda: n_cores)
        rng = np.random.default_rng(3)
        x, y = (rng.integers(0, 10, size=(512, 12)) for _ in range(2))
        model = RNNClassifier(10, 256, init="permutation", rng=0)
        train_classifier(model, x, y, optimizer="adam", learning_rate=1e-3, batch_size=256,
                         steps=3, clip_norm=1.0, seed=0, desc="")
        return model.state_dict()

    on_two, on_other = trained(2), trained(cores)
    for name in on_two:
        np.testing.assert_array_equal(on_two[name], on_other[name], err_msg=name)


def test_huge_learning_rate_without_clipping_diverges():
    (x, y), _ = _small_task()
    model = RNNClassifier(10, 16, init="identity", rng=0)
    with pytest.raises(DivergenceError, match="diverged|NaN"):
        train_classifier(model, x, y, optimizer="sgd", learning_rate=1e6, batch_size=16,
                         steps=200, clip_norm=None, seed=0)


def test_state_dict_round_trip(tmp_path):
    model = RNNClassifier(10, 12, init="permutation", rng=3)
    path = tmp_path / "model.npz"
    np.savez(path, **model.state_dict())
    with np.load(path) as state:
        loaded = RNNClassifier.from_state_dict(state)
    assert set(model.state_dict()) == {"cell.W_hh", "cell.W_hx", "cell.b_h", "out.W", "out.b"}
    x = np.eye(10, dtype=np.float32)[np.random.default_rng(0).integers(0, 10, (2, 5))]
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert loaded.n_params == model.n_params == 12 * 12 + 12 * 10 + 12 + 10 * 12 + 10
    with pytest.raises(ValueError, match="shape"):
        RNNClassifier(10, 13, rng=0).load_state_dict(model.state_dict())


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_one_update_of_the_flat_parameters_is_the_update_of_each_array(optimizer):
    """flat_params() is one array over all parameters (and one over all gradients), which the
    layers' arrays are views of; an optimiser updates it entry for entry as it updates
    params() array by array, to the last bit."""
    x = np.eye(10, dtype=np.float32)[np.random.default_rng(0).integers(0, 10, (4, 6))]
    y = np.random.default_rng(1).integers(0, 10, (4, 6))
    models = [RNNClassifier(10, 8, init="gaussian", rng=2) for _ in range(2)]
    optimizers = [make_optimizer(optimizer, 1e-2) for _ in models]
    for _ in range(3):
        for model, opt, params in zip(models, optimizers,
                                      (models[0].params(), models[1].flat_params()),
                                      strict=True):
            model.backward(cross_entropy_loss(model.forward(x), y)[1])
            opt.step(params)
    for (p, _, name), (q, _, _) in zip(models[0].params(), models[1].params(), strict=True):
        np.testing.assert_array_equal(p, q, err_msg=name)
    flat, flat_grads, _ = models[1].flat_params()[0]
    assert flat.size == models[1].n_params
    for p, g, _ in models[1].params():
        assert np.shares_memory(p, flat) and np.shares_memory(g, flat_grads)


# Counts the minor page faults of 50 training steps at the copy task's bench size (B = 32: the
# states, BPTT deltas, ReLU mask and the output layer's dh are 170 KiB each, above glibc's
# 128 KiB mmap threshold). "train" first runs train_classifier for a step, which must set
# the allocator; "default" leaves it alone.
_FAULTS_OF_STEPS = """
import resource, sys
import numpy as np
from rnnlab.numpy_rnn.model import RNNClassifier
from rnnlab.numpy_rnn.optimizers import Adam
from rnnlab.numpy_rnn.train import train_classifier, train_step

rng = np.random.default_rng(0)
ids, y = rng.integers(0, 10, (32, 27)), rng.integers(0, 10, (32, 27))
model, optimizer = RNNClassifier(10, 50, rng=0), Adam()
if sys.argv[1] == "train":
    train_classifier(model, ids, y, optimizer="adam", learning_rate=1e-3, batch_size=32,
                     steps=1, clip_norm=1.0, seed=0, desc="")
x = np.eye(10, dtype=np.float32)[ids]
for _ in range(10):  # the first steps allocate what later ones reuse
    train_step(model, optimizer, x, y, 1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    train_step(model, optimizer, x, y, 1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_after_train_classifier_training_steps_fault_in_no_pages():
    """rnnlab.numpy_rnn._memory: once train_classifier has run (it calls keep_freed_memory()),
    a step reuses the last step's memory; without it (the control), every step has its large
    arrays mapped anew and faults their pages in. Fresh processes: the setting is
    process-wide."""
    # glibc's defaults in the child: no malloc settings of the caller's environment
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}

    def faults(mode):
        run = subprocess.run([sys.executable, "-c", _FAULTS_OF_STEPS, mode], check=True,
                             capture_output=True, text=True, env=env)
        return int(run.stdout)

    assert faults("train") < 50  # fewer than one per step
    assert faults("default") > 50 * 40  # a 170 KiB array alone is 42 pages


def test_malloc_settings_of_the_environment_are_left_alone(monkeypatch):
    from rnnlab.numpy_rnn._memory import user_set_malloc

    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    assert not user_set_malloc()
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000")
    assert user_set_malloc()
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX2")
    assert not user_set_malloc()
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert user_set_malloc()


def test_copies_of_a_model_train_through_their_own_flat_parameters():
    """copy.deepcopy and pickle keep a copy's layer arrays views of the copy's own flat
    buffers (copying numpy views one by one would cut them off), and leave the original
    alone; copy.copy shares everything; rebinding an array is refused."""
    (x, y), _ = _small_task()
    model = RNNClassifier(10, 16, init="identity", rng=0)
    before = model.state_dict()
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        train_classifier(clone, x, y, optimizer="adam", learning_rate=1e-2, batch_size=16,
                         steps=5, clip_norm=5.0, seed=0, desc="")
        flat, flat_grads, _ = clone.flat_params()[0]
        for (p, g, name), (q, _, _) in zip(clone.params(), model.params(), strict=True):
            assert np.shares_memory(p, flat) and np.shares_memory(g, flat_grads), name
            assert not np.shares_memory(p, q), name
            np.testing.assert_array_equal(q, before[name])
        assert any(not np.array_equal(clone.state_dict()[n], before[n]) for n in before)
    shallow = copy.copy(model)
    assert shallow.cell is model.cell and shallow.flat_params()[0][0] is model.flat_params()[0][0]
    model.cell.W_hh = model.cell.W_hh.copy()
    with pytest.raises(RuntimeError, match="no longer a view"):
        model.flat_params()
