"""The exploding-gradient study (rnnlab.numpy_rnn.exploding) and the thread helpers
(rnnlab.numpy_rnn._threads)."""

from __future__ import annotations

import numpy as np

from rnnlab.numpy_rnn import _threads
from rnnlab.numpy_rnn.cell import BasicRNNCell
from rnnlab.numpy_rnn.exploding import exploding_gradients
from rnnlab.numpy_rnn.linear import LinearLayer
from rnnlab.numpy_rnn.loss import cross_entropy_loss


def test_exploding_gradients_small():
    result = exploding_gradients(0, max_seq_len=60)
    assert list(result["seq_len"]) == list(range(1, 60))
    no_clip, clip = result["grad_no_clip"], result["grad_clip"]
    assert np.all(np.isfinite(no_clip)) and np.all(clip <= no_clip * (1 + 1e-12))
    assert np.any(clip < no_clip)  # clipping did something (here from length 21 on)
    assert no_clip[-1] > no_clip[0]  # the summed loss's gradient grows with the length


def _blas_threads_now() -> int:
    return _threads._blas().info()[0]["num_threads"]


def test_blas_threads_limits_and_restores():
    before = _blas_threads_now()
    # Nested inside 2 threads, so the inner limit means something on a one-thread BLAS too.
    with _threads.blas_threads(2):
        assert _blas_threads_now() == 2
        with _threads.blas_threads(1):
            assert _blas_threads_now() == 1
        assert _blas_threads_now() == 2
    with _threads.blas_threads(None):
        assert _blas_threads_now() == before
    assert _blas_threads_now() == before


def test_sharded_over_cores_equals_single_thread(monkeypatch):
    """Large steps are split over the cores (batch shards, blocks of stacked rows): the split
    must not change the results beyond float64 round-off."""
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
    monkeypatch.setattr(_threads, "PARALLEL_MIN_MACS", 0)
    monkeypatch.setattr(_threads, "n_cores", lambda: 2)
    assert len(_threads.shards(64, 1)) == 2
    sharded = run()
    np.testing.assert_array_equal(sharded[0], single[0])  # rows never interact: bitwise equal
    for a, b in zip(sharded[1:], single[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
