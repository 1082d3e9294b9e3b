"""Tests of the numpy RNN (rnnlab.numpy_rnn, rnnlab.numpy_train): gradients, clipping,
shapes, initialisation, accuracy counting, learning, determinism, divergence and arguments."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rnnlab.data import copy_task
from rnnlab.errors import DivergenceError
from rnnlab.numpy_rnn import (
    ORTHOGONAL_GAIN,
    BasicRNNCell,
    LinearLayer,
    blas_threads,
    clip_gradients,
    cross_entropy_loss,
    softmax,
)
from rnnlab.numpy_train import (
    SGD,
    Adam,
    RNNClassifier,
    evaluate_recall,
    exploding_gradients,
    gradient_check,
    train_classifier,
)

PARAM_NAMES = {"W_hh", "W_hx", "b_h", "W", "b"}


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("seed,init", [(0, "random"), (1, "orthogonal"), (2, "identity")])
def test_gradient_check_every_entry(seed, init):
    result = gradient_check(seed, init=init)
    assert set(result["rel_error"]) == PARAM_NAMES
    assert result["max_rel_error"] <= 1e-6, result
    assert result["max_rel_error"] == max(result["rel_error"].values())


def test_gradient_check_detects_a_wrong_gradient(monkeypatch):
    """The check must be able to fail: break db_h on purpose."""
    original = BasicRNNCell.bprop

    def broken(self, dh, compute_dx=True):
        dx = original(self, dh, compute_dx)
        self.db_h *= 1.01
        return dx

    monkeypatch.setattr(BasicRNNCell, "bprop", broken)
    result = gradient_check(0)
    assert result["rel_error"]["b_h"] > 1e-3
    assert result["rel_error"]["W_hh"] <= 1e-6


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow")


def test_gradients_equal_tensorflow_autodiff():
    tf = _tf()
    rng = np.random.default_rng(3)
    B, T, D, H = 4, 7, 5, 8
    cell = BasicRNNCell(D, H, init="random", rng=rng)
    out = LinearLayer(H, D, rng=rng)
    cell.b_h[:] = 0.1 * rng.standard_normal(H)
    out.b[:] = 0.1 * rng.standard_normal(D)
    x = rng.standard_normal((B, T, D))
    y = rng.integers(0, D, size=(B, T))

    loss, dlogits = cross_entropy_loss(out.fprop(cell.fprop(x)), y)
    dx = cell.bprop(out.bprop(dlogits))
    ours = {name: g for layer in (cell, out) for _, g, name in layer.get_params()}
    ours["x"] = dx

    # The same equations in TensorFlow ops, differentiated by GradientTape.
    weights = {name: tf.Variable(p) for layer in (cell, out) for p, _, name in layer.get_params()}
    x_tf = tf.Variable(x)
    with tf.GradientTape() as tape:
        h = tf.zeros((B, H), dtype=tf.float64)
        logits = []
        for t in range(T):
            h = tf.nn.relu(h @ tf.transpose(weights["W_hh"])
                           + x_tf[:, t] @ tf.transpose(weights["W_hx"]) + weights["b_h"])
            logits.append(h @ tf.transpose(weights["W"]) + weights["b"])
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.stack(logits, 1))
        loss_tf = tf.reduce_sum(ce) / B
    names = list(weights) + ["x"]
    theirs = dict(zip(names, tape.gradient(loss_tf, list(weights.values()) + [x_tf])))

    assert loss == pytest.approx(float(loss_tf), rel=1e-12)
    for name in names:
        expected = theirs[name].numpy()
        err = np.max(np.abs(ours[name] - expected)) / np.max(np.abs(expected))
        assert err <= 1e-9, (name, err)


# ----------------------------------------------------------------------------- clipping

def _grads(rng):
    return [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal((2, 2))]


def _norm(grads):
    return np.sqrt(sum(np.sum(g * g) for g in grads))


def test_clip_above_threshold_scales_globally_in_place():
    grads = _grads(np.random.default_rng(0))
    before = [g.copy() for g in grads]
    ids = [id(g) for g in grads]
    norm = _norm(grads)
    threshold = norm / 3
    returned = clip_gradients(grads, threshold)
    assert returned == pytest.approx(norm)
    assert _norm(grads) == pytest.approx(threshold)
    assert [id(g) for g in grads] == ids
    # One factor for all arrays: the direction of the whole gradient is kept.
    for g, b in zip(grads, before):
        np.testing.assert_allclose(g, b * (threshold / norm))


@pytest.mark.parametrize("threshold", ["above", None, 0.0, -1.0])
def test_clip_leaves_small_gradients_and_disabled_clipping_alone(threshold):
    grads = _grads(np.random.default_rng(1))
    before = [g.copy() for g in grads]
    norm = _norm(grads)
    threshold = norm * 1.5 if threshold == "above" else threshold
    assert clip_gradients(grads, threshold) == pytest.approx(norm)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)


def test_clip_zero_gradient_stays_zero():
    grads = [np.zeros((3, 3)), np.zeros(4, dtype=np.float32)]
    with np.errstate(all="raise"):  # no 0/0 anywhere
        assert clip_gradients(grads, 5.0) == 0.0
    assert all(np.all(g == 0) for g in grads)


# ----------------------------------------------------------------------------- layers

def test_fprop_shapes_and_dtypes():
    rng = np.random.default_rng(0)
    cell = BasicRNNCell(10, 7, rng=rng, dtype=np.float32)
    out = LinearLayer(7, 10, rng=rng, dtype=np.float32)
    x = rng.standard_normal((3, 6, 10))
    h = cell.fprop(x)
    y = out.fprop(h)
    assert h.shape == (3, 6, 7) and h.dtype == np.float32
    assert y.shape == (3, 6, 10) and y.dtype == np.float32
    assert np.all(h >= 0)
    dh = out.bprop(np.ones_like(y))
    assert dh.shape == (3, 6, 7)
    assert cell.bprop(dh).shape == (3, 6, 10)
    assert cell.dW_hh.shape == (7, 7) and cell.dW_hx.shape == (7, 10) and cell.db_h.shape == (7,)


def test_h0_is_zero():
    rng = np.random.default_rng(1)
    cell = BasicRNNCell(4, 6, init="random", rng=rng)
    cell.b_h[:] = rng.standard_normal(6)
    x = rng.standard_normal((2, 3, 4))
    h = cell.fprop(x)
    # h_1 = ReLU(W_hx x_1 + b_h): nothing from a previous state, whatever W_hh is.
    np.testing.assert_allclose(h[:, 0], np.maximum(x[:, 0] @ cell.W_hx.T + cell.b_h, 0))
    cell.W_hh *= 100.0
    np.testing.assert_allclose(cell.fprop(x)[:, 0], h[:, 0])
    # And the second step does use h_1.
    np.testing.assert_allclose(
        h[:, 1], np.maximum(h[:, 0] @ (cell.W_hh / 100).T + x[:, 1] @ cell.W_hx.T + cell.b_h, 0))
    # Zero input and zero bias keep the state at zero for ever.
    cell.b_h[:] = 0
    assert np.all(cell.fprop(np.zeros((2, 5, 4))) == 0)


def test_identity_and_random_init():
    rng = np.random.default_rng(2)
    cell = BasicRNNCell(300, 200, init="identity", rng=rng)
    np.testing.assert_array_equal(cell.W_hh, np.eye(200))
    np.testing.assert_array_equal(cell.b_h, 0)
    assert cell.W_hx.std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert abs(cell.W_hx.mean()) < 0.01

    # "random": a random permutation matrix, orthogonal with entries >= 0 (0 or the gain).
    cell = BasicRNNCell(10, 50, init="random", rng=rng)
    np.testing.assert_array_equal(cell.W_hh @ cell.W_hh.T, ORTHOGONAL_GAIN ** 2 * np.eye(50))
    assert set(np.unique(cell.W_hh)) == {0.0, ORTHOGONAL_GAIN}
    assert not np.array_equal(cell.W_hh, ORTHOGONAL_GAIN * np.eye(50))
    # "orthogonal": Haar-random orthogonal, with entries of both signs.
    cell = BasicRNNCell(10, 50, init="orthogonal", rng=rng)
    np.testing.assert_allclose(cell.W_hh @ cell.W_hh.T, ORTHOGONAL_GAIN ** 2 * np.eye(50),
                               atol=1e-12)
    assert cell.W_hh.min() < 0 < cell.W_hh.max()
    out = LinearLayer(300, 200, rng=rng)
    assert out.W.shape == (200, 300) and out.W.std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    np.testing.assert_array_equal(out.b, 0)


def test_same_rng_seed_same_weights():
    a = BasicRNNCell(5, 6, init="random", rng=np.random.default_rng(7))
    b = BasicRNNCell(5, 6, init="random", rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.W_hh, b.W_hh)
    np.testing.assert_array_equal(a.W_hx, b.W_hx)


@pytest.mark.parametrize("kwargs", [
    dict(n_in=0, n_hidden=5), dict(n_in=5, n_hidden=-1), dict(n_in=2.5, n_hidden=5),
    dict(n_in=True, n_hidden=5), dict(n_in=5, n_hidden=5, init="glorot"),
    dict(n_in=5, n_hidden=5, dtype=np.int32), dict(n_in=5, n_hidden=5, dtype="nonsense"),
    dict(n_in=5, n_hidden=5, rng="seed"),
])
def test_cell_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        BasicRNNCell(**kwargs)


@pytest.mark.parametrize("args", [(0, 3), (3, 0), (3, "3")])
def test_linear_rejects_bad_arguments(args):
    with pytest.raises(ValueError, match="Received"):
        LinearLayer(*args)


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


# ----------------------------------------------------------------------------- loss

def test_cross_entropy_matches_definition_and_is_stable():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((3, 5, 6))
    y = rng.integers(0, 6, size=(3, 5))
    loss, dlogits = cross_entropy_loss(logits, y)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    picked = np.take_along_axis(p, y[..., None], -1)[..., 0]
    assert loss == pytest.approx(-np.log(picked).sum() / 3)  # summed over time, batch mean
    np.testing.assert_allclose(dlogits, (p - np.eye(6)[y]) / 3, atol=1e-15)
    np.testing.assert_allclose(softmax(logits), p)

    with np.errstate(over="raise", invalid="raise", divide="raise"):  # exp may underflow
        big_loss, big_d = cross_entropy_loss(logits * 1e4, y)
    assert np.isfinite(big_loss) and np.all(np.isfinite(big_d))


def test_optimizers_first_step():
    p, g = np.array([1.0, -2.0]), np.array([0.5, -4.0])
    SGD(0.1).step([(p, g, "p")])
    np.testing.assert_allclose(p, [0.95, -1.6])
    p = np.array([1.0, -2.0])
    Adam(0.01).step([(p, g, "p")])  # the first Adam step moves every entry by ~lr
    np.testing.assert_allclose(p, [0.99, -1.99], rtol=1e-6)
    p, opt = np.array([0.0]), SGD(1.0, momentum=0.5)
    for _ in range(2):
        opt.step([(p, np.array([1.0]), "p")])
    np.testing.assert_allclose(p, [-2.5])  # -1, then -1 - (0.5 + 1)


# ----------------------------------------------------------------------------- accuracy

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


# ----------------------------------------------------------------------------- training

def _small_task(seed=0):
    rng = np.random.default_rng(seed)
    return copy_task(3000, 5, 8, rng), copy_task(500, 5, 8, rng)


def test_small_copy_task_learns():
    (x, y), (xt, yt) = _small_task()
    model = RNNClassifier(10, 50, init="random", rng=0)
    history = train_classifier(model, x, y, optimizer="adam", learning_rate=3e-3, batch_size=32,
                               steps=1500, clip_norm=5.0, seed=0)
    result = evaluate_recall(model, xt, yt, recall_start=6)
    assert result["test_accuracy"] >= 0.6, result  # chance is 1/8
    assert len(history["step"]) == len(history["loss"])
    assert 180 <= len(history["step"]) <= 220  # about 200 logged points
    assert history["step"][-1] == 1500
    assert history["loss"][-1] < 0.5 * history["loss"][0]


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


def test_huge_learning_rate_without_clipping_diverges():
    (x, y), _ = _small_task()
    model = RNNClassifier(10, 16, init="identity", rng=0)
    with pytest.raises(DivergenceError, match="diverged|NaN"):
        train_classifier(model, x, y, optimizer="sgd", learning_rate=1e6, batch_size=16,
                         steps=200, clip_norm=None, seed=0)


def test_state_dict_round_trip(tmp_path):
    model = RNNClassifier(10, 12, init="random", rng=3)
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


def test_exploding_gradients_small():
    result = exploding_gradients(0, max_seq_len=60)
    assert list(result["seq_len"]) == list(range(1, 60))
    no_clip, clip = result["grad_no_clip"], result["grad_clip"]
    assert np.all(np.isfinite(no_clip)) and np.all(clip <= no_clip * (1 + 1e-12))
    assert np.any(clip < no_clip)  # clipping did something (here from length 21 on)
    assert no_clip[-1] > no_clip[0]  # the summed loss's gradient grows with the length


def test_blas_threads_restores_setting():
    from rnnlab.numpy_rnn import _openblas_thread_api

    api = _openblas_thread_api()
    if api is None:
        pytest.skip("no OpenBLAS found in this process")
    before = api[0]()
    with blas_threads(1):
        assert api[0]() == 1
    assert api[0]() == before
    # The above proves nothing when OpenBLAS already runs one thread: from an outer setting
    # of 2, the inner block must switch to 1 and then restore 2 (and the outer one `before`).
    with blas_threads(2):
        assert api[0]() == 2
        with blas_threads(1):
            assert api[0]() == 1
        assert api[0]() == 2
    assert api[0]() == before


def test_sharded_over_cores_equals_single_thread(monkeypatch):
    """Large steps are split over the cores (batch shards, blocks of stacked rows): the split
    must not change the results beyond float64 round-off."""
    import rnnlab.numpy_rnn as numpy_rnn

    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 7, 5))
    y = rng.integers(0, 5, size=(64, 7))

    def run():
        cell = BasicRNNCell(5, 8, init="orthogonal", rng=np.random.default_rng(0))
        out = LinearLayer(8, 5, rng=np.random.default_rng(1))
        h = cell.fprop(x)
        _, dlogits = cross_entropy_loss(out.fprop(h), y)
        dx = cell.bprop(out.bprop(dlogits))
        return [h.copy(), dx] + [g for layer in (cell, out) for _, g, _ in layer.get_params()]

    single = run()
    monkeypatch.setattr(numpy_rnn, "PARALLEL_MIN_MACS", 0)
    monkeypatch.setattr(numpy_rnn, "_n_cores", lambda: 2)
    assert len(numpy_rnn._shards(64, 1)) == 2
    sharded = run()
    np.testing.assert_array_equal(sharded[0], single[0])  # rows never interact: bitwise equal
    for a, b in zip(sharded[1:], single[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
