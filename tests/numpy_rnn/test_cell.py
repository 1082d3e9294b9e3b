"""BasicRNNCell (rnnlab.numpy_rnn.cell): BPTT against finite differences and TensorFlow
autodiff, shapes, h_0 = 0, the four inits and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.numpy_rnn.cell import BasicRNNCell
from rnnlab.numpy_rnn.gradcheck import gradient_check
from rnnlab.numpy_rnn.linear import LinearLayer
from rnnlab.numpy_rnn.loss import cross_entropy_loss

PARAM_NAMES = {"W_hh", "W_hx", "b_h", "W", "b"}
INITS = ("gaussian", "identity", "orthogonal", "permutation")


@pytest.mark.parametrize("seed,init", list(enumerate(INITS)))
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


def test_gradients_equal_tensorflow_autodiff():
    from rnnlab.tf_rnn._tf import tf

    rng = np.random.default_rng(3)
    B, T, D, H = 4, 7, 5, 8
    cell = BasicRNNCell(D, H, init="permutation", rng=rng)
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
    theirs = dict(zip(names, tape.gradient(loss_tf, list(weights.values()) + [x_tf]), strict=True))

    assert loss == pytest.approx(float(loss_tf), rel=1e-12)
    for name in names:
        expected = theirs[name].numpy()
        err = np.max(np.abs(ours[name] - expected)) / np.max(np.abs(expected))
        assert err <= 1e-9, (name, err)


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
    cell = BasicRNNCell(4, 6, init="permutation", rng=rng)
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


def test_gaussian_init_is_the_sheets_random_init():
    # The sheet's framework draws W_hh ~ N(0, sqrt(2 / (H + H))), i.e. std sqrt(1/H).
    cell = BasicRNNCell(10, 500, init="gaussian", rng=0)
    assert cell.W_hh.std() == pytest.approx(np.sqrt(1 / 500), rel=0.01)  # 0.0447
    assert abs(cell.W_hh.mean()) < 0.001
    assert cell.W_hh.min() < 0 < cell.W_hh.max()
    # Not orthogonal: W W^T is far from I at this scale.
    assert np.abs(cell.W_hh @ cell.W_hh.T - np.eye(500)).max() > 0.1


def test_identity_permutation_and_orthogonal_inits():
    rng = np.random.default_rng(2)
    cell = BasicRNNCell(300, 200, init="identity", rng=rng)
    np.testing.assert_array_equal(cell.W_hh, np.eye(200))
    np.testing.assert_array_equal(cell.b_h, 0)
    assert cell.W_hx.std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert abs(cell.W_hx.mean()) < 0.01
    # "permutation": a random permutation matrix, orthogonal with entries 0 or 1.
    cell = BasicRNNCell(10, 50, init="permutation", rng=rng)
    np.testing.assert_array_equal(cell.W_hh @ cell.W_hh.T, np.eye(50))
    assert set(np.unique(cell.W_hh)) == {0.0, 1.0}
    assert not np.array_equal(cell.W_hh, np.eye(50))
    # "orthogonal": Haar-random orthogonal, with entries of both signs.
    cell = BasicRNNCell(10, 50, init="orthogonal", rng=rng)
    np.testing.assert_allclose(cell.W_hh @ cell.W_hh.T, np.eye(50), atol=1e-12)
    assert cell.W_hh.min() < 0 < cell.W_hh.max()


def test_same_rng_seed_same_weights():
    a = BasicRNNCell(5, 6, init="gaussian", rng=np.random.default_rng(7))
    b = BasicRNNCell(5, 6, init="gaussian", rng=7)
    np.testing.assert_array_equal(a.W_hh, b.W_hh)
    np.testing.assert_array_equal(a.W_hx, b.W_hx)


@pytest.mark.parametrize("kwargs", [
    dict(n_in=0, n_hidden=5), dict(n_in=5, n_hidden=-1), dict(n_in=2.5, n_hidden=5),
    dict(n_in=True, n_hidden=5), dict(n_in=5, n_hidden=5, init="glorot"),
    dict(n_in=5, n_hidden=5, init="random"),  # renamed: gaussian or permutation
    dict(n_in=5, n_hidden=5, dtype=np.int32), dict(n_in=5, n_hidden=5, dtype="nonsense"),
    dict(n_in=5, n_hidden=5, rng="seed"),
])
def test_cell_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        BasicRNNCell(**kwargs)
