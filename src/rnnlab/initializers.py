"""Initial weights, drawn in numpy from a seeded Generator (both halves use them, so a seed
alone fixes a model, independent of TensorFlow's global random state).

Every function returns a float64 array; the layers cast it to their dtype.
"""

from __future__ import annotations

import numpy as np

from rnnlab.choices import RNN_INITS


def glorot_normal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """N(0, sqrt(2 / (fan_in + fan_out))), the sheet framework's init (the std, not the
    variance)."""
    return np.sqrt(2.0 / (shape[0] + shape[1])) * rng.standard_normal(shape)


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)): Keras's default kernel init."""
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape)


def orthogonal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal rows or columns, uniformly (Haar) distributed:
    Keras's default recurrent init. For (H, 4H) each gate block gets part of one orthogonal set."""
    rows, cols = shape
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    # QR's sign convention biases q; fixing the signs of diag(r) makes it Haar-distributed.
    q *= np.sign(np.diag(r))
    return q.T if rows < cols else q


def permutation(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random (n, n) permutation matrix: orthogonal with entries >= 0.

    Why it suits a ReLU RNN: h_{t-1} >= 0, so P h_{t-1} >= 0 too and the ReLU passes the carried
    state unchanged; the cycles of P act as shift registers, a ready-made delay line for copying.
    A Haar-orthogonal matrix mixes signs and the ReLU cuts about half the state at every step.
    """
    return np.eye(n)[rng.permutation(n)]


def recurrent_matrix(init: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """The initial (n, n) W_hh of a ReLU RNN for `init`, one of rnnlab.choices.RNN_INITS."""
    if init not in RNN_INITS:
        raise ValueError(f"`init` must be one of {RNN_INITS}. Received: init={init!r}")
    return _RECURRENT[init](rng, n)


_RECURRENT = {
    "gaussian": lambda rng, n: glorot_normal(rng, (n, n)),  # std sqrt(2 / 2n) = sqrt(1/n)
    "identity": lambda rng, n: np.eye(n),
    "orthogonal": lambda rng, n: orthogonal(rng, (n, n)),
    "permutation": permutation,
}
