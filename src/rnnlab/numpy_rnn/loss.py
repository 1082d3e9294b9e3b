"""Softmax cross-entropy over the time steps of a sequence, with its gradient (numpy)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so exp() cannot overflow."""
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def cross_entropy_loss(logits: np.ndarray, targets: np.ndarray):
    """Softmax cross-entropy, summed over time steps and averaged over the batch.

    That is the sheet's per-sequence loss (a sum over its time steps), averaged over the B
    sequences of a mini-batch so the step size does not depend on the batch size.

    Args:
        logits: (B, T, V) unnormalised scores.
        targets: (B, T) integer class ids in [0, V).
    Returns:
        loss: float, sum_t -log p(target_t) averaged over the batch.
        dlogits: (B, T, V) gradient of the loss w.r.t. logits, (softmax - one_hot) / B.
    """
    B, T, _ = logits.shape
    # the (B, T, 1) entries of the targets, as np.take_along_axis(a, targets[..., None], -1)
    # indexes them; built once here for its three uses
    target = (np.arange(B).reshape(B, 1, 1), np.arange(T).reshape(1, T, 1),
              np.asarray(targets)[..., None].astype(np.intp, copy=False))
    # log-softmax via the log-sum-exp of max-shifted logits: finite for any finite logits.
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=-1, keepdims=True)
    log_p_target = shifted[target] - np.log(sum_exp)
    loss = -float(log_p_target.sum(dtype=np.float64)) / B
    dlogits = exp
    dlogits /= sum_exp
    dlogits[target] = dlogits[target] - 1.0
    dlogits /= B
    return loss, dlogits
