"""The sheet's LinearLayer in numpy: y_t = W h_t + b at every time step, fprop and bprop."""

from __future__ import annotations

import numpy as np

from rnnlab.errors import check_positive_int
from rnnlab.initializers import glorot_normal
from rnnlab.numpy_rnn._arrays import as_generator, check_float_dtype, time_major
from rnnlab.numpy_rnn._threads import matmul, sum_outer


class LinearLayer:
    """y_t = W h_t + b, the same weights at every time step.

    Args:
        n_in: input size H.
        n_out: output size V.
        rng: numpy Generator (or int seed) for the initial weights.
        dtype: float dtype.

    Parameters: ``W: (V, H)`` ~ N(0, sqrt(2 / (H + V))), ``b: (V,)`` = 0, as in the sheet.
    """

    def __init__(self, n_in: int, n_out: int, rng=None, dtype=np.float64):
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        self.dtype = check_float_dtype(dtype)
        self.W = glorot_normal(as_generator(rng), (self.n_out, self.n_in)).astype(self.dtype)
        self.b = np.zeros(self.n_out, dtype=self.dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.cache = None

    def fprop(self, h: np.ndarray) -> np.ndarray:
        """h: (B, T, H) -> y: (B, T, V), a view of a (V, T, B) buffer (see below)."""
        B, T, H = h.shape
        if H != self.n_in:
            raise ValueError(f"expected inputs of size {self.n_in}, got h of shape {h.shape}")
        # Time-major rows, because the cell's output is a view of a time-major buffer: no copy.
        h_rows = time_major(h.astype(self.dtype, copy=False)).reshape(T * B, H)
        y_rows = matmul(h_rows, self.W.T)  # (T*B, V)
        y_rows += self.b
        # Returned class-major ((V, T, B) in memory): the softmax then reduces over V with fast
        # elementwise operations instead of many tiny length-V reductions.
        y = np.ascontiguousarray(y_rows.T)
        self.cache = h_rows
        return y.reshape(self.n_out, T, B).transpose(2, 1, 0)

    def bprop(self, dy: np.ndarray) -> np.ndarray:
        """dy: (B, T, V) -> dh: (B, T, H); sets dW (V, H) and db (V,) summed over time and batch."""
        if self.cache is None:
            raise RuntimeError("bprop called before fprop")
        h_rows = self.cache
        B, T, V = dy.shape
        # (V, T*B) in the order of h_rows; free when dy keeps the layout fprop produced.
        dy_cols = np.ascontiguousarray(dy.astype(self.dtype, copy=False).transpose(2, 1, 0))
        dy_cols = dy_cols.reshape(V, T * B)
        sum_outer(dy_cols.T, h_rows, out=self.dW)
        np.sum(dy_cols, axis=1, out=self.db)
        self.cache = None
        return matmul(dy_cols.T, self.W).reshape(T, B, self.n_in).swapaxes(0, 1)

    def get_params(self):
        """Yields (param, grad, name) for W, b."""
        yield self.W, self.dW, "W"
        yield self.b, self.db, "b"
