"""A cell plus the sheet's linear output layer shared over all time steps, and the factory that
builds either cell by name, optionally at the LSTM's parameter count (question 2d)."""

from __future__ import annotations

import numpy as np

from rnnlab.choices import MATCHED, TF_CELLS
from rnnlab.errors import check_positive_int, check_seed
from rnnlab.initializers import glorot_normal
from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.cells import BasicRNNCell, MyLSTMCell, RNNCell, variable
from rnnlab.tf_rnn.recurrence import Layout


class Linear(tf.Module):
    """y = x @ kernel + bias, applied to every time step (the sheet's LinearLayer, y = W_yh h).

    kernel (n_in, n_out) ~ N(0, sqrt(2 / (n_in + n_out))), bias = 0, as in the sheet.
    """

    def __init__(self, n_in: int, n_out: int, seed: int = 0, name: str | None = None):
        super().__init__(name=name)
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        rng = np.random.default_rng(check_seed(seed))
        self.kernel = variable(glorot_normal(rng, (self.n_in, self.n_out)), "kernel")
        self.bias = variable(np.zeros(self.n_out), "bias")

    @property
    def weights(self) -> dict:
        return {"kernel": self.kernel, "bias": self.bias}

    def __call__(self, x):
        """x (..., n_in) -> (..., n_out)."""
        y = tf.matmul(tf.reshape(x, [-1, self.n_in]), self.kernel) + self.bias
        dynamic = tf.shape(x)
        leading = [d if d is not None else dynamic[i] for i, d in enumerate(x.shape[:-1])]
        return tf.reshape(y, leading + [self.n_out])


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
        # A different stream than the cell's, so the output layer does not reuse its numbers.
        self.output_layer = Linear(cell.output_size, n_out, seed=check_seed(seed) + 7919)

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


# cell name -> builder(n_in, H, rnn_init, seed), and -> parameter count of cell + output layer
CELLS = {
    "lstm": lambda n_in, H, rnn_init, seed, layout: MyLSTMCell(n_in, H, seed=seed, layout=layout),
    "rnn": lambda n_in, H, rnn_init, seed, layout: BasicRNNCell(n_in, H, init=rnn_init,
                                                                seed=seed, layout=layout),
}
_PARAM_COUNT = {
    "lstm": lambda n_in, H, n_out: 4 * H * (n_in + H + 1) + H * n_out + n_out,
    "rnn": lambda n_in, H, n_out: H * (n_in + H + 1) + H * n_out + n_out,
}


def _check_cell(cell: str) -> str:
    if cell not in TF_CELLS:
        raise ValueError(f"Unknown cell {cell!r}; expected one of {TF_CELLS}.")
    return cell


def count_model_params(cell: str, n_in: int, hidden: int, n_out: int) -> int:
    """Parameters of a SequenceModel with this cell and hidden size, without building it."""
    return _PARAM_COUNT[_check_cell(cell)](n_in, hidden, n_out)


def matched_hidden_size(cell: str, n_in: int, lstm_hidden: int, n_out: int) -> int:
    """Hidden size of `cell` whose model (cell + output layer) has the parameter count closest
    to the LSTM model with `lstm_hidden` units (e.g. RNN 67 for LSTM 32 with 10 inputs and
    outputs: 5906 against 5834; within 5% from LSTM size 8 up)."""
    target = count_model_params("lstm", n_in, lstm_hidden, n_out)
    count = _PARAM_COUNT[_check_cell(cell)]
    return min(range(1, 8 * lstm_hidden + 2), key=lambda h: abs(count(n_in, h, n_out) - target))


def hidden_size(cell: str, n_in: int, n_out: int, lstm_hidden: int, rnn_hidden) -> int:
    """The hidden size the model of `cell` gets: lstm_hidden for the LSTM; for the RNN
    rnn_hidden, or the LSTM's parameter count if rnn_hidden is MATCHED."""
    if _check_cell(cell) == "lstm":
        return check_positive_int("lstm_hidden", lstm_hidden)
    if rnn_hidden == MATCHED:
        return matched_hidden_size(cell, n_in, check_positive_int("lstm_hidden", lstm_hidden),
                                   n_out)
    return check_positive_int("rnn_hidden", rnn_hidden)


def make_model(cell: str, n_in: int, n_out: int, *, lstm_hidden: int, rnn_hidden=MATCHED,
               rnn_init: str = "orthogonal", seed: int = 0,
               layout: Layout | None = None) -> SequenceModel:
    """The cell `cell` ("lstm" or "rnn") plus a linear output layer of size n_out.

    Args:
        lstm_hidden: the LSTM's units.
        rnn_hidden: the RNN's units, or MATCHED ("matched"): the size at which the RNN model
            has about as many parameters as the LSTM model of lstm_hidden units.
        rnn_init: the RNN's initial W_hh (rnnlab.choices.RNN_INITS); the LSTM has its own.
        seed: seeds the initial weights.
        layout: how the cell's recurrence is laid out on the CPU (None: the default; the
            benchmarks of the layout choices pass others).
    """
    H = hidden_size(cell, check_positive_int("n_in", n_in), check_positive_int("n_out", n_out),
                    lstm_hidden, rnn_hidden)
    return SequenceModel(CELLS[cell](n_in, H, rnn_init, check_seed(seed), layout), n_out, seed=seed)


def model_description(model: SequenceModel) -> dict:
    """What make_model needs to rebuild `model` (saved next to its weights)."""
    cell = "lstm" if isinstance(model.cell, MyLSTMCell) else "rnn"
    return {"cell": cell, "n_in": model.n_in, "n_out": model.n_out, "hidden": model.cell.n_hidden}


def rebuild_model(description: dict) -> SequenceModel:
    """An untrained model with the architecture `model_description` recorded."""
    cell, H = description["cell"], description["hidden"]
    return make_model(cell, description["n_in"], description["n_out"], lstm_hidden=H,
                      rnn_hidden=H, rnn_init="identity")
