"""A basic ReLU RNN cell, a linear output layer and the loss, in plain numpy (sheet question 1).

Conventions (as in cs231n's ``rnn_layers.py``):

- Arrays at the interface are batch-major: ``x: (B, T, D)``, ``h: (B, T, H)``. Inside, the cell
  works time-major ``(T, B, H)`` so that every time step is one contiguous ``(B, H)`` block; the
  arrays it returns may therefore be (free) transposed views of time-major buffers.
- ``fprop`` stores what ``bprop`` needs in ``self.cache``; ``bprop`` stores the parameter
  gradients in ``dW_hh``, ``dW_hx``, ``db_h`` (``dW``, ``db``) and returns the input gradient.
- ``get_params()`` yields ``(param, grad, name)``; optimisers update ``param`` in place.
- Only time is a Python loop; everything else is vectorised over the batch and, where the
  equations allow it, over all time steps at once (input projection before the loop, weight
  gradients after it).

The sheet writes column vectors (``h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b_h)``); with one row
per sequence that is ``h_t = ReLU(h_{t-1} W_hh^T + x_t W_hx^T + b_h)``, same parameters.
"""

from __future__ import annotations

import numbers

import numpy as np

INITS = ("identity", "random")

# Gain of the orthogonal W_hh for init="random". With ReLU roughly half the units are off at
# any step, so an orthogonal matrix of gain 1 keeps the hidden state's scale over the 27
# steps of the copy task without exploding; this gain trained the copy task best (see
# numpy_train.TUNED) and matches Keras' default recurrent initializer.
ORTHOGONAL_GAIN = 1.0


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _check_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"`dtype` must be a numpy float dtype. Received: dtype={dtype!r}") from None
    if dtype.kind != "f":
        raise ValueError(f"`dtype` must be a numpy float dtype. Received: dtype={dtype!r}")
    return dtype


def _check_rng(rng) -> np.random.Generator:
    """None -> fresh unseeded generator; an int -> seeded generator; a Generator as is."""
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    if not isinstance(rng, np.random.Generator):
        raise ValueError("`rng` must be a numpy.random.Generator, an int seed or None. "
                         f"Received: rng={rng!r}")
    return rng


def _glorot_normal(rng, shape, dtype) -> np.ndarray:
    """N(0, sqrt(2 / (fan_in + fan_out))) as in the sheet's framework (std, not variance)."""
    std = np.sqrt(2.0 / (shape[0] + shape[1]))
    return (std * rng.standard_normal(shape)).astype(dtype)


def _orthogonal(rng, n, gain, dtype) -> np.ndarray:
    """A random (Haar-distributed) orthogonal (n, n) matrix times `gain`."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    # Fixing the signs of diag(r) makes Q uniformly distributed rather than biased by QR.
    q *= np.sign(np.diag(r))
    return (gain * q).astype(dtype)


def _time_major(a: np.ndarray) -> np.ndarray:
    """(B, T, ...) -> C-contiguous (T, B, ...). Free when `a` is a view of a time-major buffer."""
    return np.ascontiguousarray(a.swapaxes(0, 1))


class BasicRNNCell:
    """h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b_h) with h_0 = 0.

    Args:
        n_in: input size D.
        n_hidden: hidden size H.
        init: "identity" (W_hh = I, the IRNN of Le et al. 2015, sheet question 1f) or
            "random" (W_hh orthogonal times ORTHOGONAL_GAIN).
        rng: numpy Generator (or int seed) for the initial weights.
        dtype: float dtype of parameters, activations and gradients.

    Parameters: ``W_hh: (H, H)``, ``W_hx: (H, D)``, ``b_h: (H,)``.
    """

    def __init__(self, n_in: int, n_hidden: int, init: str = "identity", rng=None,
                 dtype=np.float64):
        self.n_in = _check_positive_int("n_in", n_in)
        self.n_hidden = _check_positive_int("n_hidden", n_hidden)
        if init not in INITS:
            raise ValueError(f"`init` must be one of {INITS}. Received: init={init!r}")
        self.init = init
        self.dtype = _check_dtype(dtype)
        rng = _check_rng(rng)
        H, D = self.n_hidden, self.n_in
        self.W_hx = _glorot_normal(rng, (H, D), self.dtype)
        if init == "identity":
            self.W_hh = np.eye(H, dtype=self.dtype)
        else:
            self.W_hh = _orthogonal(rng, H, ORTHOGONAL_GAIN, self.dtype)
        self.b_h = np.zeros(H, dtype=self.dtype)
        self.dW_hh = np.zeros_like(self.W_hh)
        self.dW_hx = np.zeros_like(self.W_hx)
        self.db_h = np.zeros_like(self.b_h)
        self.cache = None

    def fprop(self, x: np.ndarray) -> np.ndarray:
        """Run the cell over all time steps.

        Args:
            x: (B, T, D) inputs.
        Returns:
            h: (B, T, H) hidden states h_1..h_T (a view of a time-major buffer).
        """
        B, T, D = x.shape
        if D != self.n_in:
            raise ValueError(f"expected inputs of size {self.n_in}, got x of shape {x.shape}")
        H = self.n_hidden
        x_tm = _time_major(x.astype(self.dtype, copy=False))  # (T, B, D)
        # hs[0] is h_0 = 0 and hs[t] is h_t, so h_{t-1} of every step is hs[:-1] in one block.
        hs = np.empty((T + 1, B, H), dtype=self.dtype)
        hs[0] = 0.0
        # The input projection does not depend on the recurrence: one matmul for all steps,
        # written straight into the state buffer, which the loop then completes in place.
        np.matmul(x_tm.reshape(T * B, D), self.W_hx.T, out=hs[1:].reshape(T * B, H))
        hs[1:] += self.b_h
        W_hh_T = self.W_hh.T
        recurrent = np.empty((B, H), dtype=self.dtype)
        # maximum against a zero array takes numpy's fast SIMD path (3-5x faster than a scalar 0).
        zeros = np.zeros((B, H), dtype=self.dtype)
        for t in range(1, T + 1):
            np.matmul(hs[t - 1], W_hh_T, out=recurrent)
            hs[t] += recurrent
            np.maximum(hs[t], zeros, out=hs[t])
        self.cache = (x_tm, hs)
        return hs[1:].swapaxes(0, 1)

    def bprop(self, dh: np.ndarray, compute_dx: bool = True) -> np.ndarray | None:
        """Backpropagation through time (the sheet's equations, all sequences at once).

        Args:
            dh: (B, T, H) gradient of the loss w.r.t. h_1..h_T from the layer above (dy_t).
            compute_dx: skip the input gradient when nothing needs it (e.g. one-hot inputs).
        Returns:
            dx: (B, T, D) gradient w.r.t. the inputs (None if compute_dx is False).
        Sets dW_hh (H, H), dW_hx (H, D), db_h (H,): summed over time steps and the batch.
        """
        if self.cache is None:
            raise RuntimeError("bprop called before fprop")
        x_tm, hs = self.cache
        T, B, D = x_tm.shape
        H = self.n_hidden
        dh_tm = _time_major(dh)  # (T, B, H)
        # The forward ReLU mask: h_t > 0 exactly where the pre-activation was > 0. A float
        # mask multiplies ~3x faster than a boolean one inside the loop.
        mask = (hs[1:] > 0).astype(self.dtype)
        da = np.empty((T, B, H), dtype=self.dtype)  # d(h-hat)_t, derivative before the ReLU
        carry = np.zeros((B, H), dtype=self.dtype)  # W_hh^T d(h-hat)_{t+1}, zero at t = T
        for t in range(T - 1, -1, -1):
            np.add(dh_tm[t], carry, out=da[t])  # dh_t = dy_t + W_hh^T dh-hat_{t+1}
            da[t] *= mask[t]  # the same units the forward ReLU switched off pass nothing back
            if t > 0:
                np.matmul(da[t], self.W_hh, out=carry)
        # The sheet's "+=" over time, done as one matmul over all stacked (t, b) rows.
        da_rows = da.reshape(T * B, H)
        np.matmul(da_rows.T, hs[:-1].reshape(T * B, H), out=self.dW_hh)
        np.matmul(da_rows.T, x_tm.reshape(T * B, D), out=self.dW_hx)
        np.sum(da_rows, axis=0, out=self.db_h)
        self.cache = None
        if not compute_dx:
            return None
        return (da_rows @ self.W_hx).reshape(T, B, D).swapaxes(0, 1)

    def get_params(self):
        """Yields (param, grad, name) for W_hh, W_hx, b_h."""
        yield self.W_hh, self.dW_hh, "W_hh"
        yield self.W_hx, self.dW_hx, "W_hx"
        yield self.b_h, self.db_h, "b_h"


class LinearLayer:
    """y_t = W h_t + b, the same weights at every time step.

    Args:
        n_in: input size H.
        n_out: output size V.
        rng: numpy Generator (or int seed) for the initial weights.
        dtype: float dtype.

    Parameters: ``W: (V, H)``, ``b: (V,)``.
    """

    def __init__(self, n_in: int, n_out: int, rng=None, dtype=np.float64):
        self.n_in = _check_positive_int("n_in", n_in)
        self.n_out = _check_positive_int("n_out", n_out)
        self.dtype = _check_dtype(dtype)
        rng = _check_rng(rng)
        self.W = _glorot_normal(rng, (self.n_out, self.n_in), self.dtype)
        self.b = np.zeros(self.n_out, dtype=self.dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.cache = None

    def fprop(self, h: np.ndarray) -> np.ndarray:
        """h: (B, T, H) -> y: (B, T, V) (a view of a time-major buffer)."""
        B, T, H = h.shape
        if H != self.n_in:
            raise ValueError(f"expected inputs of size {self.n_in}, got h of shape {h.shape}")
        # Time-major, because the cell's output is a view of a time-major buffer: no copy.
        h_tm = _time_major(h.astype(self.dtype, copy=False))
        y_tm = h_tm.reshape(T * B, H) @ self.W.T
        y_tm += self.b
        self.cache = h_tm
        return y_tm.reshape(T, B, self.n_out).swapaxes(0, 1)

    def bprop(self, dy: np.ndarray) -> np.ndarray:
        """dy: (B, T, V) -> dh: (B, T, H); sets dW (V, H) and db (V,) summed over time and batch."""
        if self.cache is None:
            raise RuntimeError("bprop called before fprop")
        h_tm = self.cache
        T, B, H = h_tm.shape
        dy_rows = _time_major(dy.astype(self.dtype, copy=False)).reshape(T * B, self.n_out)
        np.matmul(dy_rows.T, h_tm.reshape(T * B, H), out=self.dW)
        np.sum(dy_rows, axis=0, out=self.db)
        self.cache = None
        return (dy_rows @ self.W).reshape(T, B, H).swapaxes(0, 1)

    def get_params(self):
        """Yields (param, grad, name) for W, b."""
        yield self.W, self.dW, "W"
        yield self.b, self.db, "b"


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
    B = logits.shape[0]
    idx = np.asarray(targets)[..., None].astype(np.intp, copy=False)
    # log-softmax via the log-sum-exp of max-shifted logits: finite for any finite logits.
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=-1, keepdims=True)
    log_p_target = np.take_along_axis(shifted, idx, axis=-1) - np.log(sum_exp)
    loss = -float(log_p_target.sum(dtype=np.float64)) / B
    dlogits = exp
    dlogits /= sum_exp
    np.put_along_axis(dlogits, idx, np.take_along_axis(dlogits, idx, axis=-1) - 1.0, axis=-1)
    dlogits /= B
    return loss, dlogits


def global_norm(grads) -> float:
    """sqrt of the sum of squares of all entries of all arrays (accumulated in float64)."""
    total = 0.0
    for g in grads:
        # float64 so that squares of large float32 gradients cannot overflow to inf.
        flat = g.ravel().astype(np.float64, copy=False)
        total += float(np.dot(flat, flat))
    return float(np.sqrt(total))


def clip_gradients(grads, threshold) -> float:
    """Clip by the global norm over all arrays (Pascanu et al. 2013), in place.

    if ||g|| > threshold: g *= threshold / ||g||, with ||g|| the norm of all entries together,
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
