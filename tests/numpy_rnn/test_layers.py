"""LinearLayer, the softmax cross-entropy and global-norm clipping (rnnlab.numpy_rnn.linear,
.loss, .clipping)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.numpy_rnn.clipping import clip_gradients
from rnnlab.numpy_rnn.linear import LinearLayer
from rnnlab.numpy_rnn.loss import cross_entropy_loss, softmax


def test_linear_init_and_backward():
    rng = np.random.default_rng(0)
    out = LinearLayer(300, 200, rng=rng)
    assert out.W.shape == (200, 300) and out.W.std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    np.testing.assert_array_equal(out.b, 0)
    layer = LinearLayer(4, 3, rng=rng)
    layer.b[:] = rng.standard_normal(3)
    h = rng.standard_normal((2, 5, 4))
    y = layer.fprop(h)
    np.testing.assert_allclose(y, h @ layer.W.T + layer.b)
    dy = rng.standard_normal(y.shape)
    dh = layer.bprop(dy)
    np.testing.assert_allclose(dh, dy @ layer.W)
    np.testing.assert_allclose(layer.dW, np.einsum("btv,bth->vh", dy, h))
    np.testing.assert_allclose(layer.db, dy.sum(axis=(0, 1)))


@pytest.mark.parametrize("args", [(0, 3), (3, 0), (3, "3")])
def test_linear_rejects_bad_arguments(args):
    with pytest.raises(ValueError, match="Received"):
        LinearLayer(*args)


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
    for g, b in zip(grads, before, strict=True):
        np.testing.assert_allclose(g, b * (threshold / norm))


@pytest.mark.parametrize("threshold", ["above", None, 0.0, -1.0])
def test_clip_leaves_small_gradients_and_disabled_clipping_alone(threshold):
    grads = _grads(np.random.default_rng(1))
    before = [g.copy() for g in grads]
    norm = _norm(grads)
    threshold = norm * 1.5 if threshold == "above" else threshold
    assert clip_gradients(grads, threshold) == pytest.approx(norm)
    for g, b in zip(grads, before, strict=True):
        np.testing.assert_array_equal(g, b)


def test_clip_zero_gradient_stays_zero():
    grads = [np.zeros((3, 3)), np.zeros(4, dtype=np.float32)]
    with np.errstate(all="raise"):  # no 0/0 anywhere
        assert clip_gradients(grads, 5.0) == 0.0
    assert all(np.all(g == 0) for g in grads)
