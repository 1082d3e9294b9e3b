"""MyLSTMCell's variants (rnnlab.tf_rnn.lstm.VARIANTS) against an independent reference of their
equations written here, step by step in plain TensorFlow ops: outputs, final state, and the hand-
written BPTT against TensorFlow's autodiff of the reference, on every path of the driver."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.choices import LSTM_VARIANTS
from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.cells import MyLSTMCell, MyLSTMState
from rnnlab.tf_rnn.model import make_model

from driver_paths import ATOL, PATHS, make_rng

# variant -> (gate blocks with weights, in column order); a missing gate is 1
BLOCKS = {"vanilla": "ifco", "no_forget_gate": "ico", "no_input_gate": "fco",
          "no_output_gate": "ifc", "coupled": "fco", "no_output_activation": "ifco"}


def reference_lstm(variant, x, h, c, kernel, recurrent_kernel, bias):
    """The variant's equations, unfused: x (B, T, D) -> outputs (B, T, H), final (h, c)."""
    blocks = BLOCKS[variant]
    outputs = []
    for t in range(x.shape[1]):
        z = dict(zip(blocks, tf.split(x[:, t] @ kernel + h @ recurrent_kernel + bias,
                                      len(blocks), axis=1), strict=True))
        i = tf.sigmoid(z["i"]) if "i" in z else 1.0
        f = tf.sigmoid(z["f"]) if "f" in z else 1.0
        o = tf.sigmoid(z["o"]) if "o" in z else 1.0
        if variant == "coupled":
            i = 1.0 - f
        c = f * c + i * tf.tanh(z["c"])
        h = o * (c if variant == "no_output_activation" else tf.tanh(c))
        outputs.append(h)
    return tf.stack(outputs, axis=1), (h, c)


def _cell(variant, D, H, layout=None, seed=0):
    """A cell with random weights everywhere (biases too), so every gate is exercised."""
    cell = MyLSTMCell(D, H, seed=seed, layout=layout, variant=variant)
    rng = make_rng(seed + 10)
    for var in cell.weights.values():
        var.assign(0.5 * rng.standard_normal(var.shape).astype(np.float32))
    return cell


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("variant", LSTM_VARIANTS)
def test_variant_equals_its_reference_and_bptt_equals_autodiff(variant, path):
    B, T, D, H = 6, 5, 3, 4
    cell = _cell(variant, D, H, PATHS[path])
    rng = make_rng(1)
    x = tf.constant(rng.standard_normal((B, T, D)).astype(np.float32))
    h0, c0 = (tf.constant(rng.standard_normal((B, H)).astype(np.float32)) for _ in range(2))
    w_out, w_h, w_c = (tf.constant(rng.standard_normal(s).astype(np.float32))
                       for s in ((B, T, H), (B, H), (B, H)))
    weights = list(cell.weights.values())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, h0, c0])
        out_m, state = cell(x, MyLSTMState(cell=c0, hidden=h0))
        out_r, (h_r, c_r) = reference_lstm(variant, x, h0, c0, *weights)
        loss_m = (tf.reduce_sum(out_m * w_out) + tf.reduce_sum(state.hidden * w_h)
                  + tf.reduce_sum(state.cell * w_c))
        loss_r = tf.reduce_sum(out_r * w_out) + tf.reduce_sum(h_r * w_h) + tf.reduce_sum(c_r * w_c)
    np.testing.assert_allclose(out_m, out_r, atol=ATOL)
    np.testing.assert_allclose(state.cell, c_r, atol=ATOL)
    wrt = weights + [x, h0, c0]
    for name, g_m, g_r in zip(["kernel", "recurrent_kernel", "bias", "x", "h0", "c0"],
                              tape.gradient(loss_m, wrt), tape.gradient(loss_r, wrt), strict=True):
        assert np.abs(g_r).max() > 1e-3, name  # a real gradient, not zeros on both sides
        scale = max(1.0, float(np.max(np.abs(g_r))))
        np.testing.assert_allclose(g_m, g_r, atol=ATOL * scale, err_msg=f"{variant}: {name}")


@pytest.mark.parametrize("variant", LSTM_VARIANTS)
def test_a_variant_drops_the_columns_of_a_gate_it_fixes(variant):
    cell = MyLSTMCell(3, 4, variant=variant)
    k = len(BLOCKS[variant])
    assert [tuple(v.shape) for v in cell.weights.values()] == [(3, 4 * k), (4, 4 * k), (4 * k,)]
    model = make_model("lstm", 3, 2, lstm_hidden=4, lstm_variant=variant)
    assert model.n_params == k * 4 * (3 + 4 + 1) + 4 * 2 + 2
    bias = cell.bias.numpy().reshape(k, 4)
    for b, row in zip(BLOCKS[variant], bias, strict=True):
        np.testing.assert_array_equal(row, 1.0 if b == "f" else 0.0)  # unit forget bias


def test_the_forget_bias_is_a_switch_and_is_refused_without_a_forget_gate():
    np.testing.assert_array_equal(MyLSTMCell(2, 3, forget_bias=0.0).bias.numpy(), 0.0)
    coupled = MyLSTMCell(2, 3, variant="coupled", forget_bias=2.0).bias.numpy()
    np.testing.assert_array_equal(coupled[:3], 2.0)  # blocks f, c, o
    with pytest.raises(ValueError, match="no_forget_gate variant has no forget gate"):
        MyLSTMCell(2, 3, variant="no_forget_gate", forget_bias=0.0)


def test_an_unknown_variant_names_the_allowed_ones_and_the_closest():
    with pytest.raises(ValueError, match=r"one of vanilla, no_forget_gate.*got 'no_forget_gates'"
                                         r" \(did you mean 'no_forget_gate'\?\)"):
        MyLSTMCell(2, 3, variant="no_forget_gates")
