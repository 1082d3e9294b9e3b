"""Why the LSTM remembers longer, measured on a trained TensorFlow model of the memory task:

* the norm of the total gradient dL/dh_t at every step, for the loss on the recalled
  positions, from the cells' own hand-written BPTT loops (rnnlab.tf_rnn.recurrence);
* the LSTM's gates and cell state along test sequences: the forget gate holding the additive
  cell state c_t = f c_{t-1} + i g across the blanks is what carries the symbols.
"""

from __future__ import annotations

import numpy as np

from rnnlab.tf_rnn._tf import DTYPE, tf
from rnnlab.tf_rnn.cells import BasicRNNCell, MyGRUCell, MyLSTMCell
from rnnlab.tf_rnn.gru import gru_hidden_gradients
from rnnlab.tf_rnn.lstm import VARIANTS, lstm_hidden_gradients
from rnnlab.tf_rnn.model import SequenceModel
from rnnlab.tf_rnn.relu import relu_rnn_hidden_gradients

BATCH = 500  # sequences per call (bounded memory)

# cell class -> its own BPTT's dL/dh_t (x time-major, zeros the initial state, dhs (T, B, H))
HIDDEN_GRADIENTS = {
    MyLSTMCell: lambda cell, x, zeros, w, dhs: lstm_hidden_gradients(
        x, zeros, zeros, w, dhs, cell.layout, variant=cell.variant),
    BasicRNNCell: lambda cell, x, zeros, w, dhs: relu_rnn_hidden_gradients(
        x, zeros, w, dhs, cell.layout),
    MyGRUCell: lambda cell, x, zeros, w, dhs: gru_hidden_gradients(x, zeros, w, dhs, cell.layout),
}


def hidden_state_gradients(model: SequenceModel, x, targets, loss_mask) -> np.ndarray:
    """dL/dh_t (B, T, H) of each sequence's cross-entropy summed over the masked steps.

    x: (B, T, n_in) one-hot inputs; targets: (B, T) class ids; loss_mask: (T,) bool.
    The direct term (through the output layer) is TensorFlow's autodiff of the output layer
    and the loss; everything through the recurrence is the cell's own BPTT.
    """
    x_tm = tf.transpose(tf.convert_to_tensor(x, DTYPE), [1, 0, 2])
    hs, _ = model.cell.call_time_major(x_tm, model.cell.zero_state(tf.shape(x_tm)[1]))
    mask = tf.constant(np.asarray(loss_mask, dtype=np.float32))[:, None]
    labels = tf.transpose(tf.cast(targets, tf.int32))
    with tf.GradientTape() as tape:
        tape.watch(hs)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                            logits=model.output_layer(hs))
        loss = tf.reduce_sum(ce * mask)  # summed over sequences: each keeps its own gradient
    dhs = tape.gradient(loss, hs)
    cell = model.cell
    dh = HIDDEN_GRADIENTS[type(cell)](cell, x_tm, tf.zeros_like(hs[0]), cell.weight_tensors(),
                                      dhs)
    return tf.transpose(dh, [1, 0, 2]).numpy()


def gradient_norms(model: SequenceModel, x, targets, loss_mask) -> np.ndarray:
    """(T,) mean over the sequences of ||dL/dh_t|| (see hidden_state_gradients)."""
    total = np.zeros(x.shape[1])
    for start in range(0, len(x), BATCH):
        dh = hidden_state_gradients(model, x[start:start + BATCH],
                                    targets[start:start + BATCH], loss_mask)
        total += np.linalg.norm(dh.astype(np.float64), axis=-1).sum(axis=0)
    return total / len(x)


def lstm_trace(cell: MyLSTMCell, x) -> dict[str, np.ndarray]:
    """The LSTM's equations stepped one by one in TensorFlow with the cell's weights, keeping
    what the fused loop does not: gates i, f, o (B, T, H) and cell states c (B, T, H); h too,
    which must equal the cell's own outputs (a test checks it).

        [z_i, z_f, z_c, z_o] = x_t @ kernel + h_tm1 @ recurrent_kernel + bias
        i, f, o = sigmoid(z_i, z_f, z_o);  c_t = f * c_tm1 + i * tanh(z_c);  h_t = o * tanh(c_t)

    A variant's missing gate is traced as what it is, the constant 1 (coupled: i = 1 - f).
    """
    variant = VARIANTS[cell.variant]
    x = tf.convert_to_tensor(x, DTYPE)
    h_tm1 = c_tm1 = tf.zeros([tf.shape(x)[0], cell.n_hidden], DTYPE)
    trace = {name: [] for name in ("input_gate", "forget_gate", "output_gate", "cell", "hidden")}
    for t in range(x.shape[1]):
        z = x[:, t] @ cell.kernel + h_tm1 @ cell.recurrent_kernel + cell.bias
        blocks = dict(zip(variant.blocks, tf.split(z, len(variant.blocks), axis=1), strict=True))
        gate = {b: tf.sigmoid(blocks[b]) if b in blocks else tf.ones_like(h_tm1) for b in "ifo"}
        if variant.coupled:
            gate["i"] = 1.0 - gate["f"]
        c_tm1 = gate["f"] * c_tm1 + gate["i"] * tf.tanh(blocks["c"])
        h_tm1 = gate["o"] * (tf.tanh(c_tm1) if variant.output_activation else c_tm1)
        for name, value in zip(trace, (gate["i"], gate["f"], gate["o"], c_tm1, h_tm1),
                               strict=True):
            trace[name].append(value)
    return {name: tf.stack(values, axis=1).numpy() for name, values in trace.items()}


def state_trace(cell, x) -> dict[str, np.ndarray]:
    """What a cell holds along sequences x (B, T, n_in): for the LSTM its gates, cell states
    and outputs (lstm_trace), for the other cells their outputs ("hidden"), each (B, T, H)."""
    if isinstance(cell, MyLSTMCell):
        return lstm_trace(cell, x)
    return {"hidden": cell(tf.convert_to_tensor(x, DTYPE))[0].numpy()}
