"""dL/dh_t from the TF cells' own backward loops and the LSTM's gate trace
(rnnlab.tf_rnn.gradient_flow) against TensorFlow autodiff of the same equations."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.gradient_flow import gradient_norms, hidden_state_gradients, lstm_trace
from rnnlab.tf_rnn.model import make_model


def _naive_step(cell, x_t, h, c):
    if c is None:  # the ReLU RNN
        return tf.nn.relu(x_t @ cell.kernel + h @ cell.recurrent_kernel + cell.bias), None
    z_i, z_f, z_c, z_o = tf.split(x_t @ cell.kernel + h @ cell.recurrent_kernel + cell.bias, 4, 1)
    c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_c)
    return tf.sigmoid(z_o) * tf.tanh(c), c


@pytest.mark.parametrize("cell_name", ["lstm", "rnn"])
def test_hidden_gradients_equal_autodiff_through_the_recurrence(cell_name):
    rng = np.random.default_rng(0)
    model = make_model(cell_name, 4, 4, lstm_hidden=6, rnn_hidden=6, rnn_init="gaussian", seed=1)
    model.cell.bias.assign(0.3 * rng.standard_normal(model.cell.bias.shape).astype(np.float32))
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(3, 10))]
    y = rng.integers(0, 4, size=(3, 10))
    mask = np.arange(10) >= 7
    with tf.GradientTape() as tape:
        h = tf.zeros((3, 6))
        c = tf.zeros((3, 6)) if cell_name == "lstm" else None
        hs, loss = [], 0.0
        for t in range(10):
            h, c = _naive_step(model.cell, x[:, t], h, c)
            hs.append(h)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=y[:, t], logits=model.output_layer(h))
            loss += float(mask[t]) * tf.reduce_sum(ce)
    expected = np.stack([g.numpy() for g in tape.gradient(loss, hs)], axis=1)
    ours = hidden_state_gradients(model, x, y, mask)
    assert np.abs(expected[:, :7]).max() > 1e-4  # gradient reaches the early steps
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gradient_norms(model, x, y, mask),
                               np.linalg.norm(expected, axis=-1).mean(axis=0), rtol=1e-4)


def test_lstm_trace_matches_the_cell_and_keeps_gates_in_range():
    model = make_model("lstm", 3, 3, lstm_hidden=5, seed=2)
    x = np.random.default_rng(3).standard_normal((2, 7, 3)).astype(np.float32)
    trace = lstm_trace(model.cell, x)
    outputs, state = model.cell(x)
    np.testing.assert_allclose(trace["hidden"], outputs, atol=1e-5)
    np.testing.assert_allclose(trace["cell"][:, -1], state.cell, atol=1e-5)
    for gate in ("input_gate", "forget_gate", "output_gate"):
        assert trace[gate].shape == (2, 7, 5) and 0 < trace[gate].min() <= trace[gate].max() < 1
