"""Recurrent cells in TensorFlow 2, written from their equations (question 2 of the sheet).

Cells are `tf.Module`s holding `tf.Variable`s; nothing here is built on Keras layers. Their
recurrences (and hand-written BPTT) live in `rnnlab.tf_rnn.cores`.

* `RNNCell`: the interface. `cell(x, state=None)` runs over x (batch, time, n_in) and returns
  (outputs (batch, time, H), final state).
* `BasicRNNCell`: h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b), the cell of question 1.
* `MyLSTMCell`: the LSTM in Keras's weight layout (gate blocks i, f, c, o), so weights copy to
  and from `keras.layers.LSTM`; its state is `MyLSTMState(cell, hidden)`.
"""

from __future__ import annotations

import collections

import numpy as np

from rnnlab.choices import RNN_INITS
from rnnlab.errors import check_positive_int, check_seed
from rnnlab.initializers import glorot_normal, glorot_uniform, orthogonal, recurrent_matrix
from rnnlab.tf_rnn._tf import DTYPE, tf
from rnnlab.tf_rnn.cores import lstm_sequence, relu_rnn_sequence

MyLSTMState = collections.namedtuple("MyLSTMState", ["cell", "hidden"])
MyLSTMState.__doc__ = "State of MyLSTMCell: cell state c and hidden state h, each (batch, H)."


def variable(value, name: str) -> tf.Variable:
    """A float32 tf.Variable holding `value` (a numpy array)."""
    return tf.Variable(np.asarray(value, dtype=np.float32), name=name, dtype=DTYPE)


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
        init: W_hh at the start, one of rnnlab.choices.RNN_INITS (see rnnlab.initializers);
            W_hx ~ N(0, sqrt(2 / (n_in + H))) and b_h = 0 whatever it is, as in the sheet.
        seed: seeds the numpy generator that draws the initial weights.
    """

    def __init__(self, n_in: int, n_hidden: int, init: str = "orthogonal", seed: int = 0,
                 name: str | None = None):
        super().__init__(n_in, n_hidden, name=name)
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

    @property
    def weights(self) -> dict:
        return {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel,
                "bias": self.bias}

    def zero_state(self, batch_size):
        return tf.zeros([batch_size, self.n_hidden], DTYPE)

    def call_time_major(self, x, state):
        h0 = tf.convert_to_tensor(state, DTYPE)
        hs = relu_rnn_sequence(x, h0, *[tf.convert_to_tensor(v) for v in self.weights.values()])
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
        rng = np.random.default_rng(check_seed(seed))
        H = self.n_hidden
        self.kernel = variable(glorot_uniform(rng, (self.n_in, 4 * H)), "kernel")
        self.recurrent_kernel = variable(orthogonal(rng, (H, 4 * H)), "recurrent_kernel")
        bias = np.zeros(4 * H)
        bias[H:2 * H] = 1.0
        self.bias = variable(bias, "bias")

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
        hs, c_last = lstm_sequence(x, h_tm1, c_tm1,
                                   *[tf.convert_to_tensor(v) for v in self.weights.values()])
        return hs, MyLSTMState(cell=c_last, hidden=hs[-1])
