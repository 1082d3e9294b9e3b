"""Small array helpers shared by the numpy layers."""

from __future__ import annotations

import numpy as np


def check_float_dtype(dtype) -> np.dtype:
    """`dtype` as a numpy float dtype; ValueError otherwise."""
    message = f"`dtype` must be a numpy float dtype. Received: dtype={dtype!r}"
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(message) from None
    if dtype.kind != "f":
        raise ValueError(message)
    return dtype


def time_major(a: np.ndarray) -> np.ndarray:
    """(B, T, ...) -> C-contiguous (T, B, ...). Free when `a` is a view of a time-major buffer."""
    return np.ascontiguousarray(a.swapaxes(0, 1))


def as_generator(rng) -> np.random.Generator:
    """None -> a fresh unseeded generator; an int -> a seeded one; a Generator as it is."""
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    if not isinstance(rng, np.random.Generator):
        raise ValueError("`rng` must be a numpy.random.Generator, an int seed or None. "
                         f"Received: rng={rng!r}")
    return rng
