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
- Speed: numpy's BLAS runs on one thread (blas_threads); large steps are instead split over
  the cores by this module's own threads (sequences of the batch for the time loops, blocks
  of rows for the big products), which keeps working when another job shares the machine.

The sheet writes column vectors (``h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b_h)``); with one row
per sequence that is ``h_t = ReLU(h_{t-1} W_hh^T + x_t W_hx^T + b_h)``, same parameters.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rnnlab.errors import check_positive_int

INITS = ("identity", "random", "orthogonal")

# Gain of the recurrent matrix for init="random" and "orthogonal". Both matrices are
# orthogonal, so a gain of 1 neither grows nor shrinks the state they carry from step to step;
# other gains scale it geometrically over the 27 steps of the copy task (tried 0.8-1.4 with
# "orthogonal": 1.0 trained best).
ORTHOGONAL_GAIN = 1.0


# ----------------------------------------------------------------------------- BLAS threads

@functools.lru_cache(maxsize=1)
def _openblas_thread_api():
    """(get, set) of the number of threads of the OpenBLAS numpy loaded, or None.

    numpy's wheels bundle OpenBLAS under a prefixed name; its library is found among the
    shared objects mapped into this process (Linux). Elsewhere the limit is a no-op.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", ""), ("openblas", "64_")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                return get, set_
    return None


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit numpy's BLAS (OpenBLAS) to `n` threads inside the block; None leaves it alone.

    Why training uses one thread: a recurrent step's matmuls take microseconds, too little to
    split, and on a machine shared with another job a multi-threaded BLAS call waits whenever
    one of its threads is descheduled. Measured on this 2-core machine next to a TensorFlow
    job: a B=64, H=50 step 1 ms on one thread against up to 8 ms on two; even at B=256,
    H=256 one thread took 185 ms per step and two 400-1600 ms.
    """
    api = _openblas_thread_api() if n else None
    if api is None:
        yield
        return
    get, set_ = api
    before = get()
    set_(int(n))
    try:
        yield
    finally:
        set_(before)


# ----------------------------------------------------------------------------- batch shards

# Work (multiply-adds) from which a product or a time step is split over the cores: below it,
# handing work to another thread costs more than it saves (the copy task's B=64, H=50 step
# stays on one thread; B=256, H=256 is split).
PARALLEL_MIN_MACS = 1 << 21


def _n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_n_cores(), thread_name_prefix="rnnlab")


def _shards(n_rows: int, macs: int) -> list[slice]:
    """Contiguous row slices, one per core if `macs` of work justify it, else [all rows]."""
    n = min(_n_cores(), n_rows // 32) if macs >= PARALLEL_MIN_MACS else 1
    if n <= 1:
        return [slice(None)]
    bounds = [n_rows * i // n for i in range(n + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _map_shards(fn, shards) -> None:
    """fn(rows) for every slice, on the thread pool when there is more than one.

    Why our own threads rather than BLAS's (limited to one here): numpy releases the
    GIL in BLAS calls and large ufunc loops, and the shards of a batch never interact inside
    a time loop, so two threads meet once per loop instead of after every small matmul. A
    descheduled thread therefore delays only its own half, where a multi-threaded BLAS call
    stalls completely. On one busy core this costs nothing; on two free cores it halves it.
    """
    if len(shards) == 1:
        fn(shards[0])
        return
    with blas_threads(1):  # one BLAS thread per shard, whatever the caller set
        for future in [_pool().submit(fn, rows) for rows in shards]:
            future.result()


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b with the rows of `a` (and of the result) split over the cores when large."""
    shards = _shards(a.shape[0], a.shape[0] * a.shape[1] * b.shape[1])
    if len(shards) == 1:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    _map_shards(lambda rows: np.matmul(a[rows], b, out=out[rows]), shards)
    return out


def _sum_outer(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a.T @ b, i.e. sum_i outer(a_i, b_i) over the rows; when large, each core sums a block of
    rows and the partial sums are added (the weight gradients over stacked time steps)."""
    shards = _shards(a.shape[0], a.shape[0] * a.shape[1] * b.shape[1])
    if len(shards) == 1:
        return np.matmul(a.T, b, out=out)
    parts = [None] * len(shards)

    def part(i: int) -> None:
        parts[i] = a[shards[i]].T @ b[shards[i]]

    _map_shards(part, range(len(shards)))
    return np.add.reduce(parts, out=out)


def _check_dtype(dtype) -> np.dtype:
    message = f"`dtype` must be a numpy float dtype. Received: dtype={dtype!r}"
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(message) from None
    if dtype.kind != "f":
        raise ValueError(message)
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
    """A Haar-random orthogonal (n, n) matrix times `gain` (Keras' recurrent default)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    # Fixing the signs of diag(r) makes Q uniformly distributed rather than biased by QR.
    q *= np.sign(np.diag(r))
    return (gain * q).astype(dtype)


def _permutation(rng, n, gain, dtype) -> np.ndarray:
    """A random (n, n) permutation matrix times `gain`: orthogonal with entries >= 0.

    Why it suits a ReLU RNN: h_{t-1} >= 0, so P h_{t-1} >= 0 too and the ReLU passes the
    carried state unchanged; the cycles of P then act as shift registers, a ready-made delay
    line for the copy task. A Haar-random orthogonal matrix mixes signs, the ReLU cuts about
    half of the state at every step, and on the L = 13 copy task training stalls after
    ~6 recalled positions (0.53 accuracy after 300 s, against 0.96 after 5 s with P).
    """
    return (gain * np.eye(n)[rng.permutation(n)]).astype(dtype)


def _time_major(a: np.ndarray) -> np.ndarray:
    """(B, T, ...) -> C-contiguous (T, B, ...). Free when `a` is a view of a time-major buffer."""
    return np.ascontiguousarray(a.swapaxes(0, 1))


class BasicRNNCell:
    """h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b_h) with h_0 = 0.

    Args:
        n_in: input size D.
        n_hidden: hidden size H.
        init: W_hh at the start: "identity" (I, the IRNN of Le et al. 2015, sheet question
            1f), "random" (a random permutation matrix, i.e. a random orthogonal matrix with
            entries >= 0, see _permutation) or "orthogonal" (Haar-random orthogonal, as
            Keras initialises SimpleRNN); both random ones times ORTHOGONAL_GAIN.
        rng: numpy Generator (or int seed) for the initial weights.
        dtype: float dtype of parameters, activations and gradients.

    Parameters: ``W_hh: (H, H)``, ``W_hx: (H, D)``, ``b_h: (H,)``.
    """

    def __init__(self, n_in: int, n_hidden: int, init: str = "identity", rng=None,
                 dtype=np.float64):
        self.n_in = check_positive_int("n_in", n_in)
        self.n_hidden = check_positive_int("n_hidden", n_hidden)
        if init not in INITS:
            raise ValueError(f"`init` must be one of {INITS}. Received: init={init!r}")
        self.init = init
        self.dtype = _check_dtype(dtype)
        rng = _check_rng(rng)
        H, D = self.n_hidden, self.n_in
        self.W_hx = _glorot_normal(rng, (H, D), self.dtype)
        if init == "identity":
            self.W_hh = np.eye(H, dtype=self.dtype)
        elif init == "random":
            self.W_hh = _permutation(rng, H, ORTHOGONAL_GAIN, self.dtype)
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
        if D != self.n_in or T == 0:
            raise ValueError(f"expected (B, T >= 1, {self.n_in}) inputs, got x of shape {x.shape}")
        H = self.n_hidden
        # Bias trick: a constant-1 input feature whose weights are b_h, so the input
        # projection and the bias (and in bprop dW_hx and db_h) are one matmul each.
        x1 = np.empty((T, B, D + 1), dtype=self.dtype)
        x1[..., :D] = x.swapaxes(0, 1)
        x1[..., D] = 1.0
        W_in = np.concatenate([self.W_hx.T, self.b_h[None, :]])  # (D+1, H)
        # hs[t] is h_{t+1} (h_1..h_T, time-major): h_0 = 0 is never stored, as the loop starts
        # at h_1 and bprop needs h_0 nowhere (it drops out of dW_hh).
        hs = np.empty((T, B, H), dtype=self.dtype)
        # The input projection does not depend on the recurrence: one matmul for all steps,
        # written straight into the state buffer, which the loop then completes in place.
        _matmul(x1.reshape(T * B, D + 1), W_in, out=hs.reshape(T * B, H))
        # np.dot into a preallocated buffer with a C-contiguous right operand is the cheapest
        # small matmul numpy offers: 25-40% faster per step than matmul with a transposed view.
        W_hh_T = np.ascontiguousarray(self.W_hh.T)

        def recur(rows: slice) -> None:  # the time loop for some sequences of the batch
            h = hs[:, rows]
            recurrent = np.empty_like(h[0])
            # maximum against a zero array takes numpy's fast SIMD path (3-5x faster than 0).
            zeros = np.zeros_like(recurrent)
            np.maximum(h[0], zeros, out=h[0])  # h_1: h_0 = 0, so W_hh h_0 adds nothing
            for t in range(1, T):
                np.dot(h[t - 1], W_hh_T, out=recurrent)
                h[t] += recurrent
                np.maximum(h[t], zeros, out=h[t])

        _map_shards(recur, _shards(B, B * H * H))
        self.cache = (x1, hs)
        return hs.swapaxes(0, 1)

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
        x1, hs = self.cache
        T, B, D1 = x1.shape
        H = self.n_hidden
        dh_tm = _time_major(dh)  # (T, B, H), free for the LinearLayer's output
        da = np.empty((T, B, H), dtype=self.dtype)  # d(h-hat)_t, derivative before the ReLU

        def backprop(rows: slice) -> None:  # the time loop for some sequences of the batch
            d, dy = da[:, rows], dh_tm[:, rows]
            carry = np.zeros_like(d[0])  # W_hh^T d(h-hat)_{t+1}, zero at t = T
            # The forward ReLU's mask: h_t > 0 exactly where its input was > 0.
            mask = hs[:, rows] > 0
            for t in range(T - 1, -1, -1):
                np.add(dy[t], carry, out=d[t])  # dh_t = dy_t + W_hh^T dh-hat_{t+1}
                d[t] *= mask[t]  # the units the forward ReLU switched off pass nothing back
                if t > 0:
                    np.dot(d[t], self.W_hh, out=carry)

        _map_shards(backprop, _shards(B, B * H * H))
        # The sheet's "+=" over time, done as one matmul over all stacked (t, b) rows: the
        # d(h-hat) of steps 2..T against h_1..h_{T-1} (step 1 is left out of dW_hh: h_0 = 0).
        da_rows = da.reshape(T * B, H)
        _sum_outer(da_rows[B:], hs[:-1].reshape((T - 1) * B, H), out=self.dW_hh)
        dW_in = _sum_outer(da_rows, x1.reshape(T * B, D1))  # (H, D+1): [dW_hx | db_h], bias trick
        self.dW_hx[...] = dW_in[:, :-1]
        self.db_h[...] = dW_in[:, -1]
        self.cache = None
        if not compute_dx:
            return None
        return (da_rows @ self.W_hx).reshape(T, B, D1 - 1).swapaxes(0, 1)

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
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        self.dtype = _check_dtype(dtype)
        rng = _check_rng(rng)
        self.W = _glorot_normal(rng, (self.n_out, self.n_in), self.dtype)
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
        h_rows = _time_major(h.astype(self.dtype, copy=False)).reshape(T * B, H)
        y_rows = _matmul(h_rows, self.W.T)  # (T*B, V)
        y_rows += self.b
        # Returned class-major ((V, T, B) in memory): the softmax then reduces over V with fast
        # elementwise operations instead of many tiny length-V reductions (2x faster loss).
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
        _sum_outer(dy_cols.T, h_rows, out=self.dW)
        np.sum(dy_cols, axis=1, out=self.db)
        self.cache = None
        return _matmul(dy_cols.T, self.W).reshape(T, B, self.n_in).swapaxes(0, 1)

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
