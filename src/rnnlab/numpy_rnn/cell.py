"""The sheet's ReLU RNN cell in numpy: fprop over all time steps and its BPTT (question 1a/b).

    h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b_h),  h_0 = 0

Conventions (as in cs231n's ``rnn_layers.py``):

- Arrays at the interface are batch-major: ``x: (B, T, D)``, ``h: (B, T, H)``. Inside, the cell
  works time-major ``(T, B, H)`` so that every time step is one contiguous ``(B, H)`` block; the
  arrays it returns may therefore be (free) transposed views of time-major buffers.
- ``fprop`` stores what ``bprop`` needs in ``self.cache``; ``bprop`` stores the parameter
  gradients in ``dW_hh``, ``dW_hx``, ``db_h`` and returns the input gradient.
- ``get_params()`` yields ``(param, grad, name)``; optimisers update ``param`` in place.
- Only time is a Python loop; everything else is vectorised over the batch and, where the
  equations allow it, over all time steps at once (input projection before the loop, weight
  gradients after it). Large steps are split over the cores (see ``_threads``).

The sheet writes column vectors; with one row per sequence the same step reads
``h_t = ReLU(h_{t-1} W_hh^T + x_t W_hx^T + b_h)``, same parameters.
"""

from __future__ import annotations

import numpy as np

from rnnlab.choices import RNN_INITS
from rnnlab.errors import check_positive_int
from rnnlab.initializers import glorot_normal, recurrent_matrix
from rnnlab.numpy_rnn._arrays import as_generator, check_float_dtype, time_major
from rnnlab.numpy_rnn._threads import map_shards, matmul, shards, sum_outer


class BasicRNNCell:
    """h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b_h) with h_0 = 0.

    Args:
        n_in: input size D.
        n_hidden: hidden size H.
        init: W_hh at the start, one of rnnlab.choices.RNN_INITS: "gaussian" (the sheet's
            random init, N(0, sqrt(1/H))), "identity" (IRNN, question 1f), "orthogonal" (Haar)
            or "permutation" (a random permutation matrix); see rnnlab.initializers.
        rng: numpy Generator (or int seed) for the initial weights.
        dtype: float dtype of parameters, activations and gradients.

    Parameters: ``W_hh: (H, H)``, ``W_hx: (H, D)`` ~ N(0, sqrt(2 / (D + H))), ``b_h: (H,)`` = 0.
    """

    def __init__(self, n_in: int, n_hidden: int, init: str = "identity", rng=None,
                 dtype=np.float64):
        self.n_in = check_positive_int("n_in", n_in)
        self.n_hidden = check_positive_int("n_hidden", n_hidden)
        if init not in RNN_INITS:
            raise ValueError(f"`init` must be one of {RNN_INITS}. Received: init={init!r}")
        self.init = init
        self.dtype = check_float_dtype(dtype)
        rng = as_generator(rng)
        self.W_hx = glorot_normal(rng, (self.n_hidden, self.n_in)).astype(self.dtype)
        self.W_hh = recurrent_matrix(init, rng, self.n_hidden).astype(self.dtype)
        self.b_h = np.zeros(self.n_hidden, dtype=self.dtype)
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
        matmul(x1.reshape(T * B, D + 1), W_in, out=hs.reshape(T * B, H))
        # np.dot into a preallocated buffer with a C-contiguous right operand is the cheapest
        # small matmul numpy offers (cheaper per step than matmul with a transposed view).
        W_hh_T = np.ascontiguousarray(self.W_hh.T)

        def recur(rows: slice) -> None:  # the time loop for some sequences of the batch
            # one (B, H) view per step, made once: indexing a list is cheaper than an array
            h = list(hs[:, rows])
            recurrent = np.empty_like(h[0])
            # maximum against a zero array takes numpy's fast SIMD path (faster than a scalar 0).
            zeros = np.zeros_like(recurrent)
            np.maximum(h[0], zeros, out=h[0])  # h_1: h_0 = 0, so W_hh h_0 adds nothing
            for h_tm1, h_t in zip(h[:-1], h[1:], strict=True):
                np.dot(h_tm1, W_hh_T, out=recurrent)
                h_t += recurrent
                np.maximum(h_t, zeros, out=h_t)

        map_shards(recur, shards(B, B * H * H))
        self.cache = (x1, hs)
        return hs.swapaxes(0, 1)

    def bprop(self, dh: np.ndarray, compute_dx: bool = True) -> np.ndarray | None:
        """Backpropagation through time (the sheet's equations, all sequences at once).

            dh_t  = dy_t + W_hh^T dh^_{t+1}          (dh^_{T+1} = 0)
            dh^_t = dh_t where the forward ReLU passed (h_t > 0), else 0
            dW_hh += dh^_t h_{t-1}^T;  dW_hx += dh^_t x_t^T;  db_h += dh^_t;  dx_t = W_hx^T dh^_t

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
        da = self.bptt_deltas(time_major(dh), hs)
        # The sheet's "+=" over time, done as one matmul over all stacked (t, b) rows: the
        # dh^ of steps 2..T against h_1..h_{T-1} (step 1 is left out of dW_hh: h_0 = 0).
        da_rows = da.reshape(T * B, H)
        sum_outer(da_rows[B:], hs[:-1].reshape((T - 1) * B, H), out=self.dW_hh)
        dW_in = sum_outer(da_rows, x1.reshape(T * B, D1))  # (H, D+1): [dW_hx | db_h], bias trick
        self.dW_hx[...] = dW_in[:, :-1]
        self.db_h[...] = dW_in[:, -1]
        self.cache = None
        if not compute_dx:
            return None
        return (da_rows @ self.W_hx).reshape(T, B, D1 - 1).swapaxes(0, 1)

    def bptt_deltas(self, dy: np.ndarray, hs: np.ndarray) -> np.ndarray:
        """The BPTT time loop: dh^_t for every step, last step first.

        Args:
            dy: (T, B, H) time-major gradient arriving at h_1..h_T from the layer above.
            hs: (T, B, H) time-major hidden states h_1..h_T of the forward pass.
        Returns:
            da: (T, B, H) dh^_t, the gradient of the pre-activations (after the ReLU's mask).
        """
        T, B, H = hs.shape
        da = np.empty((T, B, H), dtype=self.dtype)

        def backprop(rows: slice) -> None:  # the time loop for some sequences of the batch
            # per-step (B, H) views, last step first, made once (as in fprop's loop)
            d, dy_rows = list(da[::-1, rows]), list(dy[::-1, rows])
            # 1 where h_t > 0 (the forward ReLU passed), else 0, in the gradients' dtype: a
            # product with a bool mask would cast the mask to floats again at every step
            mask = list(np.greater(hs[:, rows], 0).astype(self.dtype)[::-1])
            carry = np.zeros_like(d[0])  # W_hh^T dh^_{t+1}, zero at t = T
            for d_t, dy_t, mask_t in zip(d, dy_rows, mask, strict=True):
                np.add(dy_t, carry, out=d_t)  # dh_t = dy_t + W_hh^T dh^_{t+1}
                d_t *= mask_t  # the units the forward ReLU switched off pass nothing back
                if d_t is not d[-1]:  # t > 1: dh^_1 has no earlier step to reach
                    np.dot(d_t, self.W_hh, out=carry)

        map_shards(backprop, shards(B, B * H * H))
        return da

    def get_params(self):
        """Yields (param, grad, name) for W_hh, W_hx, b_h."""
        yield self.W_hh, self.dW_hh, "W_hh"
        yield self.W_hx, self.dW_hx, "W_hx"
        yield self.b_h, self.db_h, "b_h"
