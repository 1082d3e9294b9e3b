"""A cell plus the sheet's linear output layer shared over all time steps, and the factory that
builds any cell by name (one registry, CELL_KINDS), optionally at the LSTM's parameter count
(question 2d)."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from rnnlab.choices import LSTM_VARIANTS, MATCHED, TF_CELLS
from rnnlab.errors import check_choice, check_positive_int, check_seed
from rnnlab.initializers import glorot_normal
from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.cells import BasicRNNCell, MyGRUCell, MyLSTMCell, RNNCell, variable
from rnnlab.tf_rnn.lstm import VARIANTS
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


@dataclasses.dataclass(frozen=True)
class CellKind:
    """One choice of tf_model.cell: how to build it and count its parameters.

    build(n_in, H, options, seed, layout) -> the cell; `options` holds rnn_init, lstm_variant
    and lstm_forget_bias (each kind reads its own). weight_columns(options): its kernels' columns
    per unit (gate blocks: RNN 1, GRU 3, LSTM 4 or 3 without a gate); bias_rows: 2 for Keras's
    GRU (separate input and recurrent biases), else 1. size_key: the tf_model key that sizes
    it (the LSTM's is the reference, the others may be MATCHED to it).
    """

    cell_class: type
    build: Callable
    weight_columns: Callable
    bias_rows: int
    size_key: str

    def param_count(self, n_in: int, H: int, n_out: int, options: dict) -> int:
        """Cell plus output layer: k H (n_in + H) + rows k H, and H n_out + n_out."""
        k = self.weight_columns(options)
        return k * H * (n_in + H) + self.bias_rows * k * H + H * n_out + n_out


CELL_KINDS = {
    "lstm": CellKind(
        MyLSTMCell, lambda n_in, H, o, seed, layout: MyLSTMCell(
            n_in, H, seed=seed, layout=layout, variant=o["lstm_variant"],
            forget_bias=o["lstm_forget_bias"]),
        lambda o: len(VARIANTS[o["lstm_variant"]].blocks), 1, "lstm_hidden"),
    "rnn": CellKind(
        BasicRNNCell, lambda n_in, H, o, seed, layout: BasicRNNCell(
            n_in, H, init=o["rnn_init"], seed=seed, layout=layout),
        lambda o: 1, 1, "rnn_hidden"),
    "gru": CellKind(
        MyGRUCell, lambda n_in, H, o, seed, layout: MyGRUCell(n_in, H, seed=seed, layout=layout),
        lambda o: 3, 2, "gru_hidden"),
}
assert tuple(CELL_KINDS) == TF_CELLS, "rnnlab.choices.TF_CELLS names these"
# What a cell is built with unless make_model is told otherwise.
DEFAULT_OPTIONS = {"rnn_init": "orthogonal", "lstm_variant": "vanilla", "lstm_forget_bias": 1.0}
# The reference every MATCHED size is matched to: the standard LSTM.
REFERENCE_OPTIONS = DEFAULT_OPTIONS


def _kind(cell: str) -> CellKind:
    check_choice("cell", cell, TF_CELLS)
    return CELL_KINDS[cell]


def count_model_params(cell: str, n_in: int, hidden: int, n_out: int,
                       lstm_variant: str = "vanilla") -> int:
    """Parameters of a SequenceModel with this cell and hidden size, without building it."""
    options = dict(DEFAULT_OPTIONS, lstm_variant=check_choice("lstm_variant", lstm_variant,
                                                              LSTM_VARIANTS))
    return _kind(cell).param_count(n_in, hidden, n_out, options)


def matched_hidden_size(cell: str, n_in: int, lstm_hidden: int, n_out: int) -> int:
    """Hidden size of `cell` whose model (cell + output layer) has the parameter count closest
    to the standard LSTM model with `lstm_hidden` units (e.g. RNN 67 for LSTM 32 with 10 inputs
    and outputs: 5906 against 5834; within 5% from LSTM size 8 up)."""
    target = count_model_params("lstm", n_in, lstm_hidden, n_out)
    kind = _kind(cell)
    return min(range(1, 8 * lstm_hidden + 2),
               key=lambda h: abs(kind.param_count(n_in, h, n_out, REFERENCE_OPTIONS) - target))


def hidden_size(cell: str, n_in: int, n_out: int, lstm_hidden: int, rnn_hidden=MATCHED,
                gru_hidden=MATCHED) -> int:
    """The hidden size the model of `cell` gets: lstm_hidden for the LSTM (any variant: a
    variant is the same cell with a part taken away); for the RNN and the GRU their own size,
    or MATCHED: the standard LSTM model's parameter count."""
    size = {"lstm_hidden": lstm_hidden, "rnn_hidden": rnn_hidden,
            "gru_hidden": gru_hidden}[_kind(cell).size_key]
    if size == MATCHED and cell != "lstm":
        return matched_hidden_size(cell, n_in, check_positive_int("lstm_hidden", lstm_hidden),
                                   n_out)
    return check_positive_int(_kind(cell).size_key, size)


def make_model(cell: str, n_in: int, n_out: int, *, lstm_hidden: int, rnn_hidden=MATCHED,
               gru_hidden=MATCHED, rnn_init: str = "orthogonal", lstm_variant: str = "vanilla",
               lstm_forget_bias: float = 1.0, seed: int = 0,
               layout: Layout | None = None) -> SequenceModel:
    """The cell `cell` (rnnlab.choices.TF_CELLS) plus a linear output layer of size n_out.

    Args:
        lstm_hidden: the LSTM's units.
        rnn_hidden, gru_hidden: the RNN's and the GRU's units, or MATCHED ("matched"): the size
            at which that model has about as many parameters as the LSTM model of lstm_hidden
            units.
        rnn_init: the RNN's initial W_hh (rnnlab.choices.RNN_INITS); the others have their own.
        lstm_variant, lstm_forget_bias: the LSTM's parts (rnnlab.choices.LSTM_VARIANTS) and its
            forget gate's initial bias (MyLSTMCell).
        seed: seeds the initial weights.
        layout: how the cell's recurrence is laid out on the CPU (None: the default; the
            benchmarks of the layout choices pass others).
    """
    H = hidden_size(cell, check_positive_int("n_in", n_in), check_positive_int("n_out", n_out),
                    lstm_hidden, rnn_hidden, gru_hidden)
    options = {"rnn_init": rnn_init, "lstm_variant": lstm_variant,
               "lstm_forget_bias": lstm_forget_bias}
    return SequenceModel(CELL_KINDS[cell].build(n_in, H, options, check_seed(seed), layout),
                         n_out, seed=seed)


def cell_name(cell: RNNCell) -> str:
    """The tf_model.cell name of a cell object."""
    for name, kind in CELL_KINDS.items():
        if type(cell) is kind.cell_class:
            return name
    raise ValueError(f"{type(cell).__name__} is not one of the cells {TF_CELLS}.")


def model_description(model: SequenceModel) -> dict:
    """What make_model needs to rebuild `model` (saved next to its weights)."""
    description = {"cell": cell_name(model.cell), "n_in": model.n_in, "n_out": model.n_out,
                   "hidden": model.cell.n_hidden}
    if isinstance(model.cell, MyLSTMCell) and model.cell.variant != "vanilla":
        description["lstm_variant"] = model.cell.variant
    return description


def rebuild_model(description: dict) -> SequenceModel:
    """An untrained model with the architecture `model_description` recorded (initial values
    do not matter: the weights are loaded next)."""
    H = description["hidden"]
    return make_model(description["cell"], description["n_in"], description["n_out"],
                      lstm_hidden=H, rnn_hidden=H, gru_hidden=H, rnn_init="identity",
                      lstm_variant=description.get("lstm_variant", "vanilla"))
