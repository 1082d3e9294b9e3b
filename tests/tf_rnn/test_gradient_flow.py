"""dL/dh_t from the TF cells' own backward loops and the LSTM's gate trace
(rnnlab.tf_rnn.gradient_flow) against TensorFlow autodiff of the same equations."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.choices import LSTM_VARIANTS
from rnnlab.tf_rnn import lstm
from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.gradient_flow import gradient_norms, hidden_state_gradients, lstm_trace
from rnnlab.tf_rnn.model import make_model


def _naive_step(cell_name, cell, x_t, h, c):
    """One step of the cell's equations, unfused; c is None except for the LSTM."""
    if cell_name == "rnn":
        return tf.nn.relu(x_t @ cell.kernel + h @ cell.recurrent_kernel + cell.bias), None
    if cell_name == "gru":  # Keras's layout, reset gate after the recurrent matmul
        xz, xr, xh = tf.split(x_t @ cell.kernel + cell.bias[0], 3, 1)
        hz, hr, hh = tf.split(h @ cell.recurrent_kernel + cell.bias[1], 3, 1)
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        return z * h + (1 - z) * tf.tanh(xh + r * hh), None
    names = lstm.VARIANTS[cell.variant].blocks  # this test's variants: vanilla, no forget gate
    z = x_t @ cell.kernel + h @ cell.recurrent_kernel + cell.bias
    blocks = dict(zip(names, tf.split(z, len(names), 1), strict=True))
    f = tf.sigmoid(blocks["f"]) if "f" in blocks else 1.0
    c = f * c + tf.sigmoid(blocks["i"]) * tf.tanh(blocks["c"])
    return tf.sigmoid(blocks["o"]) * tf.tanh(c), c


@pytest.mark.parametrize("cell_name, variant", [("lstm", "vanilla"), ("lstm", "no_forget_gate"),
                                                ("rnn", "vanilla"), ("gru", "vanilla")])
def test_hidden_gradients_equal_autodiff_through_the_recurrence(cell_name, variant):
    rng = np.random.default_rng(0)
    model = make_model(cell_name, 4, 4, lstm_hidden=6, rnn_hidden=6, gru_hidden=6,
                       rnn_init="gaussian", lstm_variant=variant, seed=1)
    model.cell.bias.assign(0.3 * rng.standard_normal(model.cell.bias.shape).astype(np.float32))
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(3, 10))]
    y = rng.integers(0, 4, size=(3, 10))
    mask = np.arange(10) >= 7
    with tf.GradientTape() as tape:
        h = tf.zeros((3, 6))
        c = tf.zeros((3, 6)) if cell_name == "lstm" else None
        hs, loss = [], 0.0
        for t in range(10):
            h, c = _naive_step(cell_name, model.cell, x[:, t], h, c)
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


@pytest.mark.parametrize("variant", LSTM_VARIANTS)
def test_lstm_trace_matches_the_cell_and_keeps_gates_in_range(variant):
    model = make_model("lstm", 3, 3, lstm_hidden=5, lstm_variant=variant, seed=2)
    x = np.random.default_rng(3).standard_normal((2, 7, 3)).astype(np.float32)
    trace = lstm_trace(model.cell, x)
    outputs, state = model.cell(x)
    np.testing.assert_allclose(trace["hidden"], outputs, atol=1e-5)
    np.testing.assert_allclose(trace["cell"][:, -1], state.cell, atol=1e-5)
    fixed = {"no_forget_gate": "forget_gate", "no_input_gate": "input_gate",
             "no_output_gate": "output_gate"}.get(variant)
    for gate in ("input_gate", "forget_gate", "output_gate"):
        assert trace[gate].shape == (2, 7, 5)
        if gate == fixed:
            np.testing.assert_array_equal(trace[gate], 1.0)  # the part taken away: f = 1 etc.
        else:
            assert 0 < trace[gate].min() <= trace[gate].max() < 1
    if variant == "coupled":
        np.testing.assert_allclose(trace["input_gate"], 1 - trace["forget_gate"], atol=1e-6)
