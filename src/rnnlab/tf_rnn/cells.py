"""Recurrent cells in TensorFlow 2, written from their equations (question 2 of the sheet).

Cells are `tf.Module`s holding `tf.Variable`s; nothing here is built on Keras layers. Their
equations (forward and hand-written BPTT steps) live in `rnnlab.tf_rnn.lstm`, `.relu` and
`.gru`, driven over whole sequences by `rnnlab.tf_rnn.recurrence` with the cell's `Layout`.

* `RNNCell`: the interface. `cell(x, state=None)` runs over x (batch, time, n_in) and returns
  (outputs (batch, time, H), final state).
* `BasicRNNCell`: h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b), the cell of question 1.
* `MyLSTMCell`: the LSTM in Keras's weight layout (gate blocks i, f, c, o), so weights copy to
  and from `keras.layers.LSTM`; its state is `MyLSTMState(cell, hidden)`.
* `MyGRUCell`: the GRU in Keras's layout (blocks z, r, h; reset gate after the recurrent
  matmul), so weights copy to and from `keras.layers.GRU`; its state is h (batch, H).
"""

from __future__ import annotations

import collections
import math

import numpy as np

from rnnlab.choices import LSTM_VARIANTS, RNN_INITS
from rnnlab.errors import check_choice, check_number, check_positive_int, check_seed
from rnnlab.initializers import glorot_normal, glorot_uniform, orthogonal, recurrent_matrix
from rnnlab.tf_rnn import relu
from rnnlab.tf_rnn._tf import DTYPE, tf
from rnnlab.tf_rnn.gru import GRU
from rnnlab.tf_rnn.lstm import RECURRENCES, VARIANTS
from rnnlab.tf_rnn.recurrence import Layout, sequence

MyLSTMState = collections.namedtuple("MyLSTMState", ["cell", "hidden"])
MyLSTMState.__doc__ = "State of MyLSTMCell: cell state c and hidden state h, each (batch, H)."


def variable(value, name: str) -> tf.Variable:
    """A float32 tf.Variable holding `value` (a numpy array)."""
    return tf.Variable(np.asarray(value, dtype=np.float32), name=name, dtype=DTYPE)


class RNNCell(tf.Module):
    """Interface of a recurrent cell.

    `cell(x, state=None)` runs the cell over x (batch, time, n_in) from `state`
    (zero state if None) and returns (outputs (batch, time, output_size), final_state).
    Subclasses create the variables `kernel`, `recurrent_kernel` and `bias` (Keras's layout;
    `weights` lists them) and implement `call_time_major`; `zero_state` is zeros (B, H) unless
    a subclass's state is structured. `layout` (a
    rnnlab.tf_rnn.recurrence.Layout) says how the recurrence is laid out on the CPU.
    """

    def __init__(self, n_in: int, n_hidden: int, name: str | None = None,
                 layout: Layout | None = None):
        super().__init__(name=name)
        self.n_in = check_positive_int("n_in", n_in)
        self.n_hidden = check_positive_int("n_hidden", n_hidden)
        if layout is not None and not isinstance(layout, Layout):
            raise ValueError(f"Received an invalid value for argument `layout`, expected a "
                             f"rnnlab.tf_rnn.recurrence.Layout, got {layout!r}.")
        self.layout = layout or Layout()

    @property
    def output_size(self) -> int:
        return self.n_hidden

    @property
    def weights(self) -> dict:
        """name -> tf.Variable, in Keras's order; every cell here has Keras's three."""
        return {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel,
                "bias": self.bias}

    def weight_tensors(self) -> dict:
        """name -> the current value of each weight, as a tensor (what the recurrences take)."""
        return {name: tf.convert_to_tensor(v) for name, v in self.weights.items()}

    @property
    def n_params(self) -> int:
        return int(sum(np.prod(v.shape) for v in self.weights.values()))

    def zero_state(self, batch_size):
        """The state before the first step: zeros (batch_size, H) (a cell with a structured
        state, like the LSTM's, overrides this)."""
        return tf.zeros([batch_size, self.n_hidden], DTYPE)

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
        init: W_hh at the start, one of rnnlab.choices.RNN_INITS (see rnnlab.initializers);
            W_hx ~ N(0, sqrt(2 / (n_in + H))) and b_h = 0 whatever it is, as in the sheet.
        seed: seeds the numpy generator that draws the initial weights.
        layout: default one chain in a while loop (rnnlab.tf_rnn.relu.DEFAULT_LAYOUT).
    """

    def __init__(self, n_in: int, n_hidden: int, init: str = "orthogonal", seed: int = 0,
                 name: str | None = None, layout: Layout | None = None):
        super().__init__(n_in, n_hidden, name=name, layout=layout or relu.DEFAULT_LAYOUT)
        if init not in RNN_INITS:
            raise ValueError(f"Received an invalid value for argument `init`, expected one "
                             f"of {RNN_INITS}, got {init!r}.")
        self.init = init
        rng = np.random.default_rng(check_seed(seed))
        H = self.n_hidden
        self.kernel = variable(glorot_normal(rng, (self.n_in, H)), "kernel")
        # The kernel is W_hh^T; each init draws a matrix and its transpose alike, so no .T.
        self.recurrent_kernel = variable(recurrent_matrix(init, rng, H), "recurrent_kernel")
        self.bias = variable(np.zeros(H), "bias")

    def call_time_major(self, x, state):
        hs, (h_last,) = sequence(relu.RELU, x, (_hidden_state(self, state),),
                                 self.weight_tensors(), self.layout)
        return hs, h_last


class MyLSTMCell(RNNCell):
    """LSTM cell written from its equations, in Keras's weight layout.

        [z_i, z_f, z_c, z_o] = x_t @ kernel + h_tm1 @ recurrent_kernel + bias
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_c)
        c_t = f * c_tm1 + i * g;  h_t = o * tanh(c_t)

    Variables: `kernel (n_in, 4H)`, `recurrent_kernel (H, 4H)`, `bias (4H,)`, column blocks
    in gate order i, f, c, o (as keras.layers.LSTM, so weights copy over one-to-one).
    Initialised as Keras does: Glorot-uniform kernel, orthogonal recurrent kernel, zero
    bias except the forget gate's, which starts at `forget_bias` (1: Keras's unit_forget_bias).

    `variant` (rnnlab.choices.LSTM_VARIANTS; rnnlab.tf_rnn.lstm.VARIANTS) takes a part away:
    no_forget_gate (f = 1), no_input_gate (i = 1), no_output_gate (o = 1), coupled (CIFG,
    i = 1 - f) or no_output_activation (h = o * c). A variant without a gate drops its columns:
    its kernels have 3H columns, the remaining blocks in the same order (e.g. i, c, o), so
    `n_params` counts only weights that are used; the others keep Keras's layout.

    The state is MyLSTMState(cell=c, hidden=h) and nothing else: Keras orders an LSTM's state
    [h, c], so a bare pair would be ambiguous. `__call__` returns the hidden outputs of all
    steps and the final MyLSTMState.
    """

    def __init__(self, n_in: int, n_hidden: int, seed: int = 0, name: str | None = None,
                 layout: Layout | None = None, variant: str = "vanilla",
                 forget_bias: float = 1.0):
        super().__init__(n_in, n_hidden, name=name, layout=layout)
        self.variant = check_choice("variant", variant, LSTM_VARIANTS)
        blocks = VARIANTS[variant].blocks
        self.forget_bias = check_number("forget_bias", forget_bias, -math.inf)
        if "f" not in blocks and self.forget_bias != 1.0:
            raise ValueError(f"Received an invalid value for argument `forget_bias`: the "
                             f"{variant} variant has no forget gate, got {forget_bias!r}.")
        rng = np.random.default_rng(check_seed(seed))
        H, k = self.n_hidden, len(blocks)
        self.kernel = variable(glorot_uniform(rng, (self.n_in, k * H)), "kernel")
        self.recurrent_kernel = variable(orthogonal(rng, (H, k * H)), "recurrent_kernel")
        bias = np.zeros(k * H)
        if "f" in blocks:
            start = blocks.index("f") * H
            bias[start:start + H] = self.forget_bias
        self.bias = variable(bias, "bias")

    def zero_state(self, batch_size):
        zeros = tf.zeros([batch_size, self.n_hidden], DTYPE)
        return MyLSTMState(cell=zeros, hidden=zeros)

    def call_time_major(self, x, state):
        if not isinstance(state, MyLSTMState):
            pair = (" (a plain pair is ambiguous: Keras orders an LSTM's state [h, c])"
                    if isinstance(state, (tuple, list)) else "")
            raise ValueError("MyLSTMCell expects its state as MyLSTMState(cell=c, hidden=h), "
                             f"got {type(state).__name__}{pair}.")
        h_tm1 = tf.convert_to_tensor(state.hidden, DTYPE)
        c_tm1 = tf.convert_to_tensor(state.cell, DTYPE)
        hs, (h_last, c_last) = sequence(RECURRENCES[self.variant], x, (h_tm1, c_tm1),
                                        self.weight_tensors(), self.layout)
        return hs, MyLSTMState(cell=c_last, hidden=h_last)


class MyGRUCell(RNNCell):
    """GRU cell written from its equations, in Keras's weight layout (keras.layers.GRU with
    its default reset_after=True, so weights copy over one-to-one):

        z = sigmoid(x_t Kz + b0z + h_tm1 Rz + b1z),  r = sigmoid(x_t Kr + b0r + h_tm1 Rr + b1r)
        h^ = tanh(x_t Kh + b0h + r * (h_tm1 Rh + b1h));  h_t = z * h_tm1 + (1 - z) * h^

    Variables: `kernel (n_in, 3H)`, `recurrent_kernel (H, 3H)`, column blocks z, r, h, and
    `bias (2, 3H)`: bias[0] = b0 on the input projection, bias[1] = b1 on the recurrent one.
    Initialised as Keras's GRU: Glorot-uniform kernel, orthogonal recurrent kernel, zero bias.
    The state is h (batch, H); `__call__` returns the outputs of all steps and the final h.
    """

    def __init__(self, n_in: int, n_hidden: int, seed: int = 0, name: str | None = None,
                 layout: Layout | None = None):
        super().__init__(n_in, n_hidden, name=name, layout=layout)
        rng = np.random.default_rng(check_seed(seed))
        H = self.n_hidden
        self.kernel = variable(glorot_uniform(rng, (self.n_in, 3 * H)), "kernel")
        self.recurrent_kernel = variable(orthogonal(rng, (H, 3 * H)), "recurrent_kernel")
        self.bias = variable(np.zeros((2, 3 * H)), "bias")

    def call_time_major(self, x, state):
        hs, (h_last,) = sequence(GRU, x, (_hidden_state(self, state),), self.weight_tensors(),
                                 self.layout)
        return hs, h_last


def _hidden_state(cell: RNNCell, state):
    """A one-tensor state h as a (batch, H) tensor; ValueError for anything else (e.g. Keras's
    [h] list), so that a wrong state fails here and not inside the loop."""
    if isinstance(state, (tuple, list)):
        raise ValueError(f"{type(cell).__name__} expects its state as one tensor h "
                         f"(batch, {cell.n_hidden}), got a {type(state).__name__}.")
    h = tf.convert_to_tensor(state, DTYPE)
    if h.shape.rank != 2 or h.shape[-1] not in (None, cell.n_hidden):
        raise ValueError(f"{type(cell).__name__} expects its state as one tensor h "
                         f"(batch, {cell.n_hidden}), got shape {h.shape}.")
    return h
