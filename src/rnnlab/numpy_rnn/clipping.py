"""Global-norm gradient clipping (the sheet's question 1d; Pascanu, Mikolov & Bengio 2013)."""

from __future__ import annotations

import numpy as np


def global_norm(grads) -> float:
    """sqrt of the sum of squares of all entries of all arrays (accumulated in float64)."""
    total = 0.0
    for g in grads:
        # float64 so that squares of large float32 gradients cannot overflow to inf.
        flat = g.ravel().astype(np.float64, copy=False)
        total += float(np.dot(flat, flat))
    return float(np.sqrt(total))


def clip_gradients(grads, threshold) -> float:
    """if ||g|| > threshold: g *= threshold / ||g||, in place, ||g|| over all arrays together,
    so the direction of the whole update is kept.

    Args:
        grads: iterable of gradient arrays, scaled in place.
        threshold: maximum global norm; None or <= 0 disables clipping.
    Returns:
        The global norm before clipping.
    """
    grads = list(grads)
    norm = global_norm(grads)
    # norm > threshold > 0 also guarantees norm != 0, so a zero gradient is never divided.
    if threshold is not None and threshold > 0 and norm > threshold:
        scale = threshold / norm
        for g in grads:
            g *= scale
    return norm
