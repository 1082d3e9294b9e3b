"""Recurrent cells in TensorFlow 2, written from their equations (question 2 of the sheet).

Cells are `tf.Module`s holding `tf.Variable`s; nothing here is built on Keras layers.

* `BasicRNNCell`: h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b), the cell of question 1.
* `MyLSTMCell`:  the LSTM with Keras's weight layout (gate blocks i, f, c, o), so weights
  can be copied to and from `keras.layers.LSTM`.
* `SequenceModel`: a cell plus a linear output layer shared over all time steps.
* `make_cell` / `make_model`: build either cell by name, optionally parameter-matched.
* `get_loss_sin`, `get_loss_memory`: the two task losses.
* `get_train_step`: the compiled training step (TF2 counterpart of the sheet's get_train_op).

Layouts. Cells take batch-major input x (batch, time, features) and return batch-major
outputs (batch, time, hidden). Internally the recurrence runs time-major, and the
variables follow Keras: the input weights are `kernel (n_in, k*H)`, the recurrent weights
`recurrent_kernel (H, k*H)`, so a step is `x_t @ kernel + h_{t-1} @ recurrent_kernel + bias`
(the transposes of the sheet's W_hx and W_hh).

Speed (a CPU, float32; measured in benchmarks/bench_tf.py). Both cells share one recipe,
see `_lstm_sequence` and `_relu_rnn_sequence`:
  * the backward pass is BPTT written out by hand under `tf.custom_gradient` (as in the
    numpy implementation) instead of TensorFlow differentiating a while loop;
  * the forward loop stores, per step, exactly the factors BPTT needs, so the backward loop
    is a few element-wise ops and one matmul per step;
  * one matmul per step computes all four LSTM gates (4H columns), and one tanh activates
    them (sigmoid(z) = (1 + tanh(z/2)) / 2, see below);
  * the weight gradients are single matmuls over all stacked time steps after the loop;
  * the loops and the whole training step are compiled with XLA (jit_compile), which fuses
    each step's element-wise work; measured here, this wins at both benchmark shapes.
(Computing the input projection x_t @ kernel of all steps as one matmul before the loop, as
one would without XLA, measured a little slower than doing it inside the compiled loop.)
Result: a training step 1.3-1.5x faster than keras.layers.LSTM + Dense at the sheet's shapes.
"""

from __future__ import annotations

import collections
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow's first import

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rnnlab.errors import check_positive_int  # noqa: E402

__all__ = [
    "RNNCell", "BasicRNNCell", "MyLSTMCell", "MyLSTMState", "Linear", "SequenceModel",
    "CELLS", "OPTIMIZERS", "make_cell", "make_model", "count_model_params",
    "get_loss_sin", "get_loss_memory", "memory_loss_per_step", "get_train_step",
    "Adam", "MomentumSGD", "make_optimizer",
]

MyLSTMState = collections.namedtuple("MyLSTMState", ["cell", "hidden"])
MyLSTMState.__doc__ = "State of MyLSTMCell: cell state c and hidden state h, each (batch, H)."

DTYPE = tf.float32

# XLA switches, read when a function is traced. JIT_LOOPS compiles the forward and backward
# loops (also when a model is called outside a training step, e.g. for evaluation); XLA fuses
# each step's element-wise work, which is where a CPU spends its time at these sizes.
# JIT_TRAIN_STEP compiles the whole training step (forward, BPTT, clipping, optimizer).
# Measured (benchmarks/bench_tf.py, 2 cores) against keras.layers.LSTM + Dense: step 1.4x
# (sine shape) / 1.25x (memory shape); loops only 1.5x / 1.15x; no XLA 0.8x / 0.7x.
# The price is compilation: ~3-5 s per new input shape for a training step.
JIT_LOOPS = True
JIT_TRAIN_STEP = True


# ----------------------------------------------------------------------------- validation

def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Received an invalid value for argument `seed`, expected a "
                         f"non-negative integer, got {seed!r}.")
    return int(seed)


# ----------------------------------------------------------------------------- initialisers
# Weights are drawn with a seeded numpy generator, so a seed alone fixes the initial model,
# independent of TensorFlow's global random state.

def _glorot_uniform(rng, shape):
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape)


def _orthogonal(rng, shape, gain=1.0):
    """A (rows, cols) matrix with orthonormal rows or columns, times `gain` (as Keras)."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the decomposition unique (uniformly distributed q)
    if rows < cols:
        q = q.T
    return gain * q


def _shape(x):
    """x's dimensions: static ints where known, scalar tensors otherwise."""
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape)]


def _stack(array, n_steps, element_shape):
    """array.stack() with the static shape (n_steps, *element_shape) where it is known."""
    out = array.stack()
    out.set_shape([n_steps] + list(element_shape))
    return out


def _steps(x, extra=0):
    """Static number of time steps of a time-major x (plus `extra`), or None."""
    return None if x.shape[0] is None else x.shape[0] + extra


def _variable(value, name):
    return tf.Variable(np.asarray(value, dtype=np.float32), name=name, dtype=DTYPE)


# ----------------------------------------------------------------------------- LSTM core

def _gate_columns(n_hidden: int, sigmoid_value: float, tanh_value: float):
    """A (4H,) vector: `sigmoid_value` on the i, f, o columns, `tanh_value` on the c columns."""
    s = tf.fill([n_hidden], tf.constant(sigmoid_value, DTYPE))
    return tf.concat([s, s, tf.fill([n_hidden], tf.constant(tanh_value, DTYPE)), s], axis=0)


# The forward loop evaluates all four gates with ONE tanh, using sigmoid(z) = (1 + tanh(z/2)) / 2:
# with the i, f, o columns of the pre-activation scaled by 1/2 (`_gate_columns(H, 0.5, 1.0)`),
# a = tanh(scaled z) = [2i - 1, 2f - 1, g, 2o - 1]. (On a CPU, XLA's tanh is several times
# faster than its sigmoid, and one op over 4H columns beats four over H.)
#
# BPTT of one step (s' = s (1 - s) for a sigmoid s, tanh'(z) = 1 - g^2):
#   dh_t = dh_out_t + dz_{t+1} @ rk^T                   gradient reaching h_t
#   dc_t = dc_{t+1} f_{t+1} + dh_t r_t                  r_t = o (1 - tanh(c_t)^2)
#   dz_t = [dc_t, dc_t, dc_t, dh_t] * p_t               gradient of the 4H gate inputs, with
#   p_t  = [g i', c_{t-1} f', i (1 - g^2), tanh(c_t) o']
# p_t, r_t and f_t depend on the forward pass only, so the forward loop stores them (it has
# every ingredient at hand) and the backward loop is four element-wise ops and one matmul.
# In terms of a: i' = (1 - a_i^2) / 4, so p_t = [g, c_{t-1}, i, tanh(c_t)] * (1 - a^2) *
# [1/4, 1/4, 1, 1/4] over all 4H columns at once.

def _lstm_forward_loop(x, h0, c0, ks, rks, bs):
    """The LSTM recurrence on half-scaled pre-activations, keeping what BPTT needs.

    x: (T, B, n_in) time-major input; ks (n_in, 4H), rks (H, 4H), bs (4H,): kernel,
    recurrent kernel and bias with the sigmoid columns halved. Returns hs (T+1, B, H) with
    h0 at index 0, c_T (B, H), and the per-step BPTT factors p (T, B, 4H), r and f (T, B, H).
    """
    n_steps = tf.shape(x)[0]
    derivative_scale = _gate_columns(h0.shape[-1], 0.25, 1.0)

    def body(t, h, c, hs, ps, rs, fs):
        a = tf.tanh(tf.matmul(x[t], ks) + tf.matmul(h, rks) + bs)
        a_i, a_f, g, a_o = tf.split(a, 4, axis=1)
        i, f, o = 0.5 * (1.0 + a_i), 0.5 * (1.0 + a_f), 0.5 * (1.0 + a_o)
        c_new = f * c + i * g
        tanh_c = tf.tanh(c_new)
        h = o * tanh_c
        p = tf.concat([g, c, i, tanh_c], axis=1) * (1.0 - a * a) * derivative_scale
        r = o * (1.0 - tanh_c * tanh_c)
        return (t + 1, h, c_new, hs.write(t + 1, h), ps.write(t, p), rs.write(t, r),
                fs.write(t, f))

    hs = tf.TensorArray(DTYPE, size=n_steps + 1).write(0, h0)
    factors = [tf.TensorArray(DTYPE, size=n_steps) for _ in range(3)]
    _, _, c_last, hs, ps, rs, fs = tf.while_loop(lambda t, *_: t < n_steps, body,
                                                 [tf.constant(0), h0, c0, hs, *factors],
                                                 maximum_iterations=n_steps)
    n = _steps(x)
    return (_stack(hs, _steps(x, 1), h0.shape), c_last,
            _stack(ps, n, [h0.shape[0], 4 * h0.shape[1]]), _stack(rs, n, h0.shape),
            _stack(fs, n, h0.shape))


def _lstm_backward_loop(dhs, dc_last, ps, rs, fs, rk):
    """BPTT through the LSTM recurrence, last step first (equations above).

    dhs: (T, B, H) gradient of the outputs h_t; dc_last: gradient of c_T; ps, rs, fs: the
    factors stored by the forward loop. Returns dz (T, B, 4H), the gradient of the gate
    inputs of every step, and the gradients of the initial h and c.
    """
    n_steps = tf.shape(dhs)[0]

    def body(t, dh_rec, dc, dzs):
        dh = dhs[t] + dh_rec
        dc = dc + dh * rs[t]
        dz = tf.concat([dc, dc, dc, dh], axis=1) * ps[t]
        return t - 1, tf.matmul(dz, rk, transpose_b=True), dc * fs[t], dzs.write(t, dz)

    _, dh0, dc0, dzs = tf.while_loop(lambda t, *_: t >= 0, body,
                                     [n_steps - 1, tf.zeros_like(dhs[0]), dc_last,
                                      tf.TensorArray(DTYPE, size=n_steps)],
                                     maximum_iterations=n_steps)
    return _stack(dzs, _steps(dhs), ps.shape[1:]), dh0, dc0


_lstm_forward_jit = tf.function(_lstm_forward_loop, jit_compile=True, autograph=False)
_lstm_backward_jit = tf.function(_lstm_backward_loop, jit_compile=True, autograph=False)


def _weight_gradients(x, hs, dz, kernel):
    """Gradients of x, kernel, recurrent kernel and bias from the stacked gate gradients dz
    (T, B, k*H): each is ONE matmul (or sum) over all T*B rows, after the loop.
    hs: (T+1, B, H) hidden states with h0 first, so hs[:-1] holds h_{t-1} for every step t."""
    x_flat = tf.reshape(x, [-1, x.shape[-1]])
    dz_flat = tf.reshape(dz, [-1, dz.shape[-1]])
    d_kernel = tf.matmul(x_flat, dz_flat, transpose_a=True)
    d_recurrent = tf.matmul(tf.reshape(hs[:-1], [-1, hs.shape[-1]]), dz_flat, transpose_a=True)
    d_bias = tf.reduce_sum(dz_flat, axis=0)
    d_x = tf.reshape(tf.matmul(dz_flat, kernel, transpose_b=True), _shape(x))
    return d_x, d_kernel, d_recurrent, d_bias


@tf.custom_gradient
def _lstm_sequence(x, h0, c0, kernel, rk, bias):
    """Runs the LSTM over all steps of x (T, B, n_in), time-major, from (h0, c0).

    Returns (hs (T, B, H), c_T (B, H)); h_T is hs[-1]. The gradient is hand-written BPTT.
    """
    scale = _gate_columns(rk.shape[0], 0.5, 1.0)  # folded into the weights, not activations
    forward = _lstm_forward_jit if JIT_LOOPS else _lstm_forward_loop
    # stop_gradient: autodiff must not trace through the loop (the gradient is `grad` below)
    hs, c_last, ps, rs, fs = forward(*[tf.stop_gradient(a) for a in
                                       (x, h0, c0, kernel * scale, rk * scale, bias * scale)])

    def grad(dhs, dc_last):
        if dhs is None:
            dhs = tf.zeros_like(hs[1:])
        if dc_last is None:
            dc_last = tf.zeros_like(c0)
        backward = _lstm_backward_jit if JIT_LOOPS else _lstm_backward_loop
        dz, dh0, dc0 = backward(*[tf.stop_gradient(a) for a in (dhs, dc_last, ps, rs, fs, rk)])
        d_x, d_kernel, d_rk, d_bias = _weight_gradients(x, hs, dz, kernel)
        return d_x, dh0, dc0, d_kernel, d_rk, d_bias

    return (hs[1:], c_last), grad


# ----------------------------------------------------------------------------- ReLU RNN core

def _relu_forward_loop(x, h0, kernel, rk, bias):
    """h_t = ReLU(x_t @ kernel + h_{t-1} @ rk + bias); returns hs (T+1, B, H), h0 first."""
    n_steps = tf.shape(x)[0]

    def body(t, h, hs):
        h = tf.nn.relu(tf.matmul(x[t], kernel) + tf.matmul(h, rk) + bias)
        return t + 1, h, hs.write(t + 1, h)

    hs = tf.TensorArray(DTYPE, size=n_steps + 1).write(0, h0)
    _, _, hs = tf.while_loop(lambda t, *_: t < n_steps, body, [tf.constant(0), h0, hs],
                             maximum_iterations=n_steps)
    return _stack(hs, _steps(x, 1), h0.shape)


def _relu_backward_loop(dhs, hs, rk):
    """The sheet's BPTT (question 1b), last step first:
    dh_t = dy_t + W_hh^T dh^_{t+1};  dh^_t = dh_t where the forward ReLU passed (h_t > 0), else 0.
    Returns dh^ (T, B, H), the gradient of the pre-activations, and the gradient of h0.
    """
    n_steps = tf.shape(dhs)[0]

    def body(t, dh_rec, das):
        da = tf.where(hs[t + 1] > 0, dhs[t] + dh_rec, 0.0)
        return t - 1, tf.matmul(da, rk, transpose_b=True), das.write(t, da)

    _, dh0, das = tf.while_loop(lambda t, *_: t >= 0, body,
                                [n_steps - 1, tf.zeros_like(dhs[0]),
                                 tf.TensorArray(DTYPE, size=n_steps)],
                                maximum_iterations=n_steps)
    return _stack(das, _steps(dhs), dhs.shape[1:]), dh0


_relu_forward_jit = tf.function(_relu_forward_loop, jit_compile=True, autograph=False)
_relu_backward_jit = tf.function(_relu_backward_loop, jit_compile=True, autograph=False)


@tf.custom_gradient
def _relu_rnn_sequence(x, h0, kernel, rk, bias):
    """h_t = ReLU(x_t @ kernel + h_{t-1} @ rk + bias) over all steps of x (T, B, n_in);
    returns hs (T, B, H). The gradient is the sheet's BPTT, written out."""
    forward = _relu_forward_jit if JIT_LOOPS else _relu_forward_loop
    hs = forward(*[tf.stop_gradient(a) for a in (x, h0, kernel, rk, bias)])

    def grad(dhs):
        backward = _relu_backward_jit if JIT_LOOPS else _relu_backward_loop
        da, dh0 = backward(*[tf.stop_gradient(a) for a in (dhs, hs, rk)])
        d_x, d_kernel, d_rk, d_bias = _weight_gradients(x, hs, da, kernel)
        return d_x, dh0, d_kernel, d_rk, d_bias

    return hs[1:], grad


# ----------------------------------------------------------------------------- cells

class RNNCell(tf.Module):
    """Interface of a recurrent cell.

    `cell(x, state=None)` runs the cell over x (batch, time, n_in) from `state`
    (zero state if None) and returns (outputs (batch, time, output_size), final_state).
    Subclasses implement `zero_state` and `call_time_major`, and list their variables in
    `weights` (a name -> tf.Variable dict in a fixed order).
    """

    def __init__(self, n_in: int, n_hidden: int, name: str | None = None):
        super().__init__(name=name)
        self.n_in = check_positive_int("n_in", n_in)
        self.n_hidden = check_positive_int("n_hidden", n_hidden)

    @property
    def output_size(self) -> int:
        return self.n_hidden

    @property
    def weights(self) -> dict:
        raise NotImplementedError

    @property
    def n_params(self) -> int:
        return int(sum(np.prod(v.shape) for v in self.weights.values()))

    def zero_state(self, batch_size):
        raise NotImplementedError

    def call_time_major(self, x, state):
        """x: (time, batch, n_in) -> (outputs (time, batch, H), final_state)."""
        raise NotImplementedError

    def _check_input(self, x):
        x = tf.convert_to_tensor(x, dtype=DTYPE)
        if x.shape.rank != 3:
            raise ValueError(f"{type(self).__name__} expects an input of shape "
                             f"(batch, time, {self.n_in}), got shape {x.shape}.")
        if x.shape[-1] is not None and x.shape[-1] != self.n_in:
            raise ValueError(f"{type(self).__name__} was built for n_in={self.n_in} input "
                             f"features, got an input of shape {x.shape}.")
        if x.shape[1] == 0:
            raise ValueError(f"{type(self).__name__} needs at least one time step, got "
                             f"an input of shape {x.shape}.")
        return x

    def time_major_outputs(self, x, state=None):
        """x (batch, time, n_in), checked -> (outputs (time, batch, H), final state); a None
        state starts from zeros."""
        x = self._check_input(x)
        if state is None:
            state = self.zero_state(tf.shape(x)[0])
        return self.call_time_major(tf.transpose(x, [1, 0, 2]), state)

    def __call__(self, x, state=None):
        outputs, final_state = self.time_major_outputs(x, state)
        return tf.transpose(outputs, [1, 0, 2]), final_state


class BasicRNNCell(RNNCell):
    """The ReLU RNN of question 1: h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b_h).

    Variables (Keras layout, transposes of the sheet's matrices): `kernel (n_in, H)` = W_hx^T,
    `recurrent_kernel (H, H)` = W_hh^T, `bias (H,)` = b_h.

    Args:
        n_in, n_hidden: input and hidden sizes.
        init: "random" -> W_hh a random orthogonal matrix times `gain`;
              "identity" -> W_hh = identity (the IRNN of Le, Jaitly & Hinton, question 1f).
              W_hx ~ N(0, sqrt(2 / (n_in + H))) and b_h = 0 either way, as in the sheet.
        gain: scale of the random orthogonal W_hh.
        seed: seeds the numpy generator that draws the initial weights.
    """

    INITS = ("random", "identity")

    def __init__(self, n_in: int, n_hidden: int, init: str = "random", seed: int = 0,
                 gain: float = 1.0, name: str | None = None):
        super().__init__(n_in, n_hidden, name=name)
        if init not in self.INITS:
            raise ValueError(f"Received an invalid value for argument `init`, expected one "
                             f"of {self.INITS}, got {init!r}.")
        if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
            raise ValueError(f"Received an invalid value for argument `gain`, expected a "
                             f"positive number, got {gain!r}.")
        self.init = init
        rng = np.random.default_rng(_check_seed(seed))
        H = self.n_hidden
        std = math.sqrt(2.0 / (self.n_in + H))
        self.kernel = _variable(rng.normal(0.0, std, size=(self.n_in, H)), "kernel")
        recurrent = np.eye(H) if init == "identity" else _orthogonal(rng, (H, H), gain)
        self.recurrent_kernel = _variable(recurrent, "recurrent_kernel")
        self.bias = _variable(np.zeros(H), "bias")

    @property
    def weights(self) -> dict:
        return {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel,
                "bias": self.bias}

    def zero_state(self, batch_size):
        return tf.zeros([batch_size, self.n_hidden], DTYPE)

    def call_time_major(self, x, state):
        h0 = tf.convert_to_tensor(state, DTYPE)
        hs = _relu_rnn_sequence(x, h0, *[tf.convert_to_tensor(v) for v in self.weights.values()])
        return hs, hs[-1]


class MyLSTMCell(RNNCell):
    """LSTM cell written from its equations, in Keras's weight layout.

        [z_i, z_f, z_c, z_o] = x_t @ kernel + h_tm1 @ recurrent_kernel + bias
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_c)
        c_t = f * c_tm1 + i * g;  h_t = o * tanh(c_t)

    Variables: `kernel (n_in, 4H)`, `recurrent_kernel (H, 4H)`, `bias (4H,)`, column blocks
    in gate order i, f, c, o (as keras.layers.LSTM, so weights copy over one-to-one).
    Initialised as Keras does: Glorot-uniform kernel, orthogonal recurrent kernel, zero
    bias except the forget gate's, which starts at 1 (unit_forget_bias).

    The state is MyLSTMState(cell=c, hidden=h); `__call__` returns the hidden outputs of all
    steps and the final MyLSTMState.
    """

    def __init__(self, n_in: int, n_hidden: int, seed: int = 0, name: str | None = None):
        super().__init__(n_in, n_hidden, name=name)
        rng = np.random.default_rng(_check_seed(seed))
        H = self.n_hidden
        self.kernel = _variable(_glorot_uniform(rng, (self.n_in, 4 * H)), "kernel")
        self.recurrent_kernel = _variable(_orthogonal(rng, (H, 4 * H)), "recurrent_kernel")
        bias = np.zeros(4 * H)
        bias[H:2 * H] = 1.0
        self.bias = _variable(bias, "bias")

    @property
    def weights(self) -> dict:
        return {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel,
                "bias": self.bias}

    def zero_state(self, batch_size):
        zeros = tf.zeros([batch_size, self.n_hidden], DTYPE)
        return MyLSTMState(cell=zeros, hidden=zeros)

    def call_time_major(self, x, state):
        if not isinstance(state, MyLSTMState):
            if isinstance(state, (tuple, list)) and len(state) == 2:
                state = MyLSTMState(*state)
            else:
                raise ValueError("MyLSTMCell expects its state as MyLSTMState(cell, hidden), "
                                 f"got {type(state).__name__}.")
        c_tm1 = tf.convert_to_tensor(state.cell, DTYPE)
        h_tm1 = tf.convert_to_tensor(state.hidden, DTYPE)
        hs, c_last = _lstm_sequence(x, h_tm1, c_tm1,
                                    *[tf.convert_to_tensor(v) for v in self.weights.values()])
        return hs, MyLSTMState(cell=c_last, hidden=hs[-1])


# ----------------------------------------------------------------------------- models

class Linear(tf.Module):
    """y = x @ kernel + bias, applied to every time step (the sheet's LinearLayer, y = W_yh h).

    kernel (n_in, n_out) ~ N(0, sqrt(2 / (n_in + n_out))), bias = 0, as in the sheet.
    """

    def __init__(self, n_in: int, n_out: int, seed: int = 0, name: str | None = None):
        super().__init__(name=name)
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        rng = np.random.default_rng(_check_seed(seed))
        std = math.sqrt(2.0 / (self.n_in + self.n_out))
        self.kernel = _variable(rng.normal(0.0, std, size=(self.n_in, self.n_out)), "kernel")
        self.bias = _variable(np.zeros(self.n_out), "bias")

    @property
    def weights(self) -> dict:
        return {"kernel": self.kernel, "bias": self.bias}

    def __call__(self, x):
        y = tf.matmul(tf.reshape(x, [-1, self.n_in]), self.kernel) + self.bias
        return tf.reshape(y, _shape(x)[:-1] + [self.n_out])


class SequenceModel(tf.Module):
    """A recurrent cell followed by a linear layer shared over all time steps.

    `model(x)` maps x (batch, time, n_in) to y (batch, time, n_out);
    `model.run(x, state)` also returns the cell's final state (for feeding back outputs).
    """

    def __init__(self, cell: RNNCell, n_out: int, seed: int = 0, name: str | None = None):
        super().__init__(name=name)
        if not isinstance(cell, RNNCell):
            raise ValueError(f"SequenceModel needs an RNNCell, got {type(cell).__name__}.")
        self.cell = cell
        # a different stream than the cell's, so the output layer does not reuse its numbers
        self.output_layer = Linear(cell.output_size, n_out, seed=_check_seed(seed) + 7919)

    @property
    def n_in(self) -> int:
        return self.cell.n_in

    @property
    def n_out(self) -> int:
        return self.output_layer.n_out

    @property
    def weights(self) -> dict:
        """name -> tf.Variable, in a fixed order ("cell/kernel", ..., "output/bias")."""
        out = {f"cell/{k}": v for k, v in self.cell.weights.items()}
        out.update({f"output/{k}": v for k, v in self.output_layer.weights.items()})
        return out

    @property
    def variables_list(self) -> list:
        return list(self.weights.values())

    @property
    def n_params(self) -> int:
        return int(sum(np.prod(v.shape) for v in self.variables_list))

    def get_weights(self) -> dict:
        """name -> numpy array copy of every weight (e.g. for numpy.savez)."""
        return {k: v.numpy() for k, v in self.weights.items()}

    def set_weights(self, weights) -> None:
        """Load arrays saved by `get_weights` (a dict or an NpzFile); names and shapes must
        match."""
        names = set(self.weights)
        missing, unknown = names - set(weights), set(weights) - names
        if missing or unknown:
            raise ValueError(f"set_weights: missing {sorted(missing)}, unexpected "
                             f"{sorted(unknown)} (expected {list(self.weights)}).")
        for k, var in self.weights.items():
            value = np.asarray(weights[k])
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"set_weights: '{k}' has shape {value.shape}, the model "
                                 f"expects {tuple(var.shape)}.")
            var.assign(value.astype(np.float32))

    def run(self, x, state=None):
        """x (batch, time, n_in) -> (y (batch, time, n_out), final cell state)."""
        hs, final_state = self.cell.time_major_outputs(x, state)
        # Project before transposing back: n_out is narrower than H, so the transpose is cheaper.
        return tf.transpose(self.output_layer(hs), [1, 0, 2]), final_state

    def __call__(self, x, state=None):
        return self.run(x, state)[0]


# ----------------------------------------------------------------------------- factories

def _lstm_cell(n_in, hidden, *, init, seed):
    return MyLSTMCell(n_in, hidden, seed=seed)  # `init` selects the RNN's W_hh only


def _rnn_cell(n_in, hidden, *, init, seed):
    return BasicRNNCell(n_in, hidden, init=init, seed=seed)


CELLS = {"rnn": _rnn_cell, "lstm": _lstm_cell}

# cell name -> (n_in, H, n_out) -> parameter count of cell + output layer
_PARAM_COUNT = {
    "rnn": lambda n_in, H, n_out: H * (n_in + H + 1) + H * n_out + n_out,
    "lstm": lambda n_in, H, n_out: 4 * H * (n_in + H + 1) + H * n_out + n_out,
}


def count_model_params(name: str, n_in: int, hidden: int, n_out: int) -> int:
    """Parameters of make_model(name, ...) without building it."""
    return _PARAM_COUNT[_check_cell_name(name)](n_in, hidden, n_out)


def _check_cell_name(name):
    if name not in CELLS:
        raise ValueError(f"Unknown cell {name!r}; expected one of {sorted(CELLS)}.")
    return name


def matched_hidden_size(name: str, n_in: int, lstm_hidden: int, n_out: int) -> int:
    """Hidden size of cell `name` whose model (cell + output layer) has as many parameters as
    the LSTM model with `lstm_hidden` units (closest count; e.g. RNN 67 for LSTM 32, in=out=10)."""
    target = count_model_params("lstm", n_in, lstm_hidden, n_out)
    count = _PARAM_COUNT[_check_cell_name(name)]
    best = min(range(1, 8 * lstm_hidden + 2), key=lambda h: abs(count(n_in, h, n_out) - target))
    return best


def make_cell(name: str, n_in: int, hidden: int, *, n_out: int, match_params: bool = False,
              init: str = "random", seed: int = 0) -> RNNCell:
    """Build the cell `name` ("rnn" or "lstm") with `hidden` units.

    With match_params=True a non-LSTM cell gets the hidden size at which the whole model
    (cell + linear output layer of size n_out) has the parameter count closest to that of the
    LSTM model with `hidden` units (within 5% from LSTM size 8 up; e.g. RNN 67 for LSTM 32
    with 10 inputs and outputs: 5906 vs 5834); the LSTM is unchanged. `init` ("random"/"identity")
    sets the RNN's recurrent matrix; the LSTM always uses Keras's initialisers.
    """
    _check_cell_name(name)
    check_positive_int("n_in", n_in)
    check_positive_int("hidden", hidden)
    check_positive_int("n_out", n_out)
    if init not in BasicRNNCell.INITS:
        raise ValueError(f"Received an invalid value for argument `init`, expected one of "
                         f"{BasicRNNCell.INITS}, got {init!r}.")
    if match_params and name != "lstm":
        hidden = matched_hidden_size(name, n_in, hidden, n_out)
    return CELLS[name](n_in, hidden, init=init, seed=_check_seed(seed))


def make_model(name: str, n_in: int, hidden: int, *, n_out: int, match_params: bool = False,
               init: str = "random", seed: int = 0) -> SequenceModel:
    """make_cell(...) plus a linear output layer of size n_out shared over time steps."""
    cell = make_cell(name, n_in, hidden, n_out=n_out, match_params=match_params, init=init,
                     seed=seed)
    return SequenceModel(cell, n_out, seed=seed)


# ----------------------------------------------------------------------------- losses

def get_loss_sin(pred, target):
    """Mean squared error over batch and time steps.

    pred: (batch, time) or (batch, time, 1); target: (batch, time). Column t of the target
    is the value the model should output at step t (the next sample; no shifting here).
    """
    pred = tf.convert_to_tensor(pred, DTYPE)
    target = tf.convert_to_tensor(target, DTYPE)
    if pred.shape.rank == target.shape.rank + 1 and pred.shape[-1] == 1:
        pred = pred[..., 0]
    if not pred.shape.is_compatible_with(target.shape):
        raise ValueError(f"get_loss_sin: prediction shape {pred.shape} does not match target "
                         f"shape {target.shape}.")
    return tf.reduce_mean(tf.square(pred - target))


def _per_sequence_ce(logits, labels):
    logits = tf.convert_to_tensor(logits, DTYPE)
    labels = tf.cast(labels, tf.int32)
    if logits.shape.rank != 3 or labels.shape.rank != 2:
        raise ValueError(f"memory loss: expected logits (batch, time, classes) and labels "
                         f"(batch, time), got {logits.shape} and {labels.shape}.")
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(ce, axis=1)  # (batch,)


def get_loss_memory(logits, labels):
    """Cross-entropy of the memory task, SUMMED over the batch elements (as the sheet asks).

    Each element's loss is its cross-entropy averaged over its time steps; the batch loss is
    the sum of these, so it grows with the batch size. Divide by the batch size (or use
    `memory_loss_per_step`) for the per-step mean cross-entropy, which is what training
    histories and metrics report, comparable with the memoryless baseline L ln(8) / (2L+B+1).
    """
    return tf.reduce_sum(_per_sequence_ce(logits, labels))


get_loss_memory.sums_over_batch = True  # train() divides by the batch size for reporting


def memory_loss_per_step(logits, labels):
    """Per-step mean cross-entropy (= get_loss_memory / batch size)."""
    return tf.reduce_mean(_per_sequence_ce(logits, labels))


# ----------------------------------------------------------------------------- optimisers

class _Optimizer(tf.Module):
    """Shared parts: an iteration counter, slot variables, and the learning-rate schedule.

    With decay_steps > 0 the learning rate follows a cosine from `learning_rate` down to
    `learning_rate * decay_to` over decay_steps updates (and stays there); decay_to = 1 keeps
    it constant.
    """

    n_slots = 0

    def __init__(self, learning_rate: float, decay_steps: int = 0, decay_to: float = 1.0,
                 name: str | None = None):
        super().__init__(name=name)
        self.learning_rate = float(learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_to = float(decay_to)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self._slots = None

    def _slots_for(self, variables):
        if self._slots is None:
            self._slots = [[tf.Variable(tf.zeros_like(v), trainable=False)
                            for _ in range(self.n_slots)] for v in variables]
        return self._slots

    def current_learning_rate(self):
        """The learning rate of the update being made (call after counting it)."""
        if self.decay_steps <= 0 or self.decay_to == 1.0:
            return tf.constant(self.learning_rate, DTYPE)
        progress = tf.minimum(tf.cast(self.iterations - 1, DTYPE) / self.decay_steps, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
        return self.learning_rate * (self.decay_to + (1.0 - self.decay_to) * cosine)


class Adam(_Optimizer):
    """Adam (Kingma & Ba) with bias correction; beta_1 0.9, beta_2 0.999, eps 1e-7 (Keras's)."""

    n_slots = 2
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7

    def apply(self, grads, variables):
        self.iterations.assign_add(1)
        t = tf.cast(self.iterations, DTYPE)
        step = (self.current_learning_rate() * tf.sqrt(1.0 - self.beta_2 ** t)
                / (1.0 - self.beta_1 ** t))
        for g, v, (m, s) in zip(grads, variables, self._slots_for(variables)):
            m.assign(self.beta_1 * m + (1.0 - self.beta_1) * g)
            s.assign(self.beta_2 * s + (1.0 - self.beta_2) * tf.square(g))
            v.assign_sub(step * m / (tf.sqrt(s) + self.epsilon))


class MomentumSGD(_Optimizer):
    """Gradient descent with (heavy-ball) momentum 0.9: u = 0.9 u - lr g; w += u."""

    n_slots = 1
    momentum = 0.9

    def apply(self, grads, variables):
        self.iterations.assign_add(1)
        lr = self.current_learning_rate()
        for g, v, (u,) in zip(grads, variables, self._slots_for(variables)):
            u.assign(self.momentum * u - lr * g)
            v.assign_add(u)


OPTIMIZERS = {"adam": Adam, "momentum": MomentumSGD}


def make_optimizer(name: str, learning_rate: float, decay_steps: int = 0,
                   decay_to: float = 1.0):
    """OPTIMIZERS[name] with a (cosine-decayed, if decay_to < 1) learning rate."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}.")
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)
            and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}.")
    if not (isinstance(decay_to, (int, float)) and 0 < decay_to <= 1):
        raise ValueError(f"decay_to must be in (0, 1], got {decay_to!r}.")
    return OPTIMIZERS[name](float(learning_rate), decay_steps=decay_steps, decay_to=decay_to)


# ----------------------------------------------------------------------------- training step

def get_train_step(model: SequenceModel, loss_fn, optimizer, clip_norm: float = 5.0):
    """The compiled training step: step(x, y) -> loss (the value of loss_fn) for one batch.

    Forward, hand-written BPTT, gradient clipping by the global norm over all weights
    (clip_norm <= 0 disables it) and one optimizer update, in one tf.function.
    """
    if not (isinstance(clip_norm, (int, float)) and math.isfinite(clip_norm)):
        raise ValueError(f"clip_norm must be a number (0 = no clipping), got {clip_norm!r}.")
    variables = model.variables_list
    clip_norm = float(clip_norm)

    @tf.function(jit_compile=JIT_TRAIN_STEP)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(model(x), y)
        grads = tape.gradient(loss, variables)
        if clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, clip_norm)
        optimizer.apply(grads, variables)
        return loss

    return step
