"""The numpy BPTT against central finite differences, every entry of every parameter (1b)."""

from __future__ import annotations

import numpy as np

from rnnlab.numpy_rnn.cell import BasicRNNCell
from rnnlab.numpy_rnn.loss import cross_entropy_loss
from rnnlab.numpy_rnn.model import RNNClassifier

KINK_MARGIN = 1e-3  # no pre-activation this close to the ReLU's kink (a difference would cross it)


def relative_error(analytic: np.ndarray, numeric: np.ndarray, tiny: float = 1e-3) -> float:
    """max |a - n| / max(|a| + |n|, tiny) over all entries.

    A relative error is meaningless for gradients that are (nearly) zero, where the finite
    difference is pure round-off: below |a| + |n| = tiny it becomes |a - n| / tiny, an
    absolute error scaled so that the same bound applies.
    """
    denom = np.maximum(np.abs(analytic) + np.abs(numeric), tiny)
    return float(np.max(np.abs(analytic - numeric) / denom))


def pre_activations(cell: BasicRNNCell, x: np.ndarray) -> np.ndarray:
    """(B, T, H) values inside the ReLU at every step, recomputed from the cell's states."""
    h = cell.fprop(x)
    h_prev = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)  # h_0 = 0
    return h_prev @ cell.W_hh.T + x @ cell.W_hx.T + cell.b_h


def numeric_gradient(loss_at, p: np.ndarray, delta: float) -> np.ndarray:
    """Central differences (loss(p + delta e_i) - loss(p - delta e_i)) / 2 delta, every entry i."""
    numeric = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        saved = p[i]
        p[i] = saved + delta
        plus = loss_at()
        p[i] = saved - delta
        minus = loss_at()
        p[i] = saved
        numeric[i] = (plus - minus) / (2.0 * delta)
    return numeric


def gradient_check(seed: int = 0, batch_size: int = 3, seq_len: int = 5, vocab_size: int = 4,
                   hidden: int = 6, delta: float = 1e-5, init: str = "permutation") -> dict:
    """Compare bprop with central finite differences on every entry of every parameter.

    Network: BasicRNNCell + LinearLayer + softmax cross-entropy (float64) on a batch of
    `batch_size` sequences of `seq_len` steps with Gaussian inputs (so every W_hx entry has a
    gradient) and random targets. The draw is repeated until no pre-activation lies within
    KINK_MARGIN of the ReLU kink.

    Returns:
        {"max_rel_error": float, "rel_error": {"W_hh": ..., "W_hx": ..., "b_h": ..., "W": ...,
        "b": ...}}, relative errors as defined in relative_error.
    """
    rng = np.random.default_rng(seed)
    for _ in range(100):
        model = RNNClassifier(vocab_size, hidden, init=init, rng=rng, dtype=np.float64)
        # Bias the hidden units a little so that not all of them are switched off.
        model.cell.b_h[:] = 0.1 * rng.standard_normal(hidden)
        model.out.b[:] = 0.1 * rng.standard_normal(vocab_size)
        x = rng.standard_normal((batch_size, seq_len, vocab_size))
        y = rng.integers(0, vocab_size, size=(batch_size, seq_len))
        pre = pre_activations(model.cell, x)
        if np.min(np.abs(pre)) > KINK_MARGIN and np.any(pre > 0):
            break
    else:  # pragma: no cover - 100 draws all near a kink is practically impossible
        raise RuntimeError("could not draw a gradient-check input away from the ReLU kink")

    def loss_at() -> float:
        return cross_entropy_loss(model.forward(x), y)[0]

    _, dlogits = cross_entropy_loss(model.forward(x), y)
    model.backward(dlogits)
    rel_error = {
        name.split(".", 1)[1]: relative_error(g.copy(), numeric_gradient(loss_at, p, delta))
        for p, g, name in model.params()}
    return {"max_rel_error": max(rel_error.values()), "rel_error": rel_error}
