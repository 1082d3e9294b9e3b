"""MyGRUCell (rnnlab.tf_rnn.cells, .gru) against keras.layers.GRU with copied weights, on every
path of the driver (rnnlab.tf_rnn.recurrence): one chain / two chains, unrolled / while loop."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.tf_rnn._tf import keras, tf
from rnnlab.tf_rnn.cells import MyGRUCell

from driver_paths import ATOL, PATHS, make_rng, traced_without_shapes



def _keras_gru_and_cell(n_in, H, layout=None, seed=0):
    """A Keras GRU with random weights (both biases non-zero) and a MyGRUCell with copies."""
    layer = keras.layers.GRU(H, return_sequences=True, return_state=True)
    layer.build((None, None, n_in))
    rng = make_rng(seed)
    for w in layer.weights:
        w.assign(0.5 * rng.standard_normal(w.shape).astype(np.float32))
    cell = MyGRUCell(n_in, H, seed=seed + 1, layout=layout)
    by_name = {w.path.split("/")[-1]: w for w in layer.weights}
    assert set(by_name) == set(cell.weights)
    for name, var in cell.weights.items():
        var.assign(by_name[name].numpy())
    return layer, cell


def _assert_gradients_close(grads, grads_keras, names):
    for name, g_m, g_k in zip(names, grads, grads_keras, strict=True):
        scale = max(1.0, float(np.max(np.abs(g_k))))
        np.testing.assert_allclose(g_m, g_k, atol=ATOL * scale, err_msg=name)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("with_state", [False, True])
def test_gru_matches_keras_outputs_state_and_gradients(path, with_state):
    B, T, D, H = 6, 5, 3, 4
    layer, cell = _keras_gru_and_cell(D, H, PATHS[path])
    rng = make_rng(1)
    x = tf.constant(rng.standard_normal((B, T, D)).astype(np.float32))
    h0 = tf.constant(rng.standard_normal((B, H)).astype(np.float32))
    # weights on every output and on the final state, so each gradient path matters
    w_out = tf.constant(rng.standard_normal((B, T, H)).astype(np.float32))
    w_h = tf.constant(rng.standard_normal((B, H)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, h0])
        out_k, h_k = layer(x, initial_state=[h0]) if with_state else layer(x)
        out_m, h_m = cell(x, h0) if with_state else cell(x)
        loss_k = tf.reduce_sum(out_k * w_out) + tf.reduce_sum(h_k * w_h)
        loss_m = tf.reduce_sum(out_m * w_out) + tf.reduce_sum(h_m * w_h)

    assert out_m.shape == (B, T, H) and h_m.shape == (B, H) and out_m.dtype == tf.float32
    np.testing.assert_allclose(out_m, out_k, atol=ATOL)
    np.testing.assert_allclose(h_m, h_k, atol=ATOL)
    names = ["kernel", "recurrent_kernel", "bias", "x"] + (["h0"] if with_state else [])
    extra = [x, h0] if with_state else [x]
    _assert_gradients_close(tape.gradient(loss_m, list(cell.weights.values()) + extra),
                            tape.gradient(loss_k, layer.weights + extra), names)


def test_gru_with_unknown_length_in_a_compiled_function_matches_keras():
    """Traced without a static T or B: the while loop, one chain, whatever the layout says."""
    layer, cell = _keras_gru_and_cell(3, 4, PATHS["two chains, unrolled"], seed=6)
    x = tf.constant(make_rng(7).standard_normal((6, 9, 3)).astype(np.float32))
    (out_m, grads_m), (out_k, grads_k) = traced_without_shapes(layer, cell, x)
    np.testing.assert_allclose(out_m, out_k, atol=ATOL)
    _assert_gradients_close(grads_m, grads_k, ["kernel", "recurrent_kernel", "bias"])


def test_gru_layout_and_initialisation():
    cell = MyGRUCell(3, 4, seed=0)
    assert [tuple(v.shape) for v in cell.weights.values()] == [(3, 12), (4, 12), (2, 12)]
    np.testing.assert_array_equal(cell.bias.numpy(), 0.0)
    rk = cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(rk @ rk.T, np.eye(4), atol=1e-5)  # orthogonal rows (H < 3H)
    limit = np.sqrt(6 / (3 + 12))                                  # Glorot uniform
    assert np.all(np.abs(cell.kernel.numpy()) <= limit)
    assert cell.n_params == 3 * 12 + 4 * 12 + 2 * 12 and cell.output_size == 4
    same = MyGRUCell(3, 4, seed=0)
    other = MyGRUCell(3, 4, seed=1)
    np.testing.assert_array_equal(same.kernel.numpy(), cell.kernel.numpy())
    assert not np.array_equal(other.kernel.numpy(), cell.kernel.numpy())


@pytest.mark.parametrize("kwargs", [dict(n_in=0, n_hidden=4), dict(n_in=3, n_hidden=-1),
                                    dict(n_in=3, n_hidden=2.5), dict(n_in=3, n_hidden=4, seed=-1),
                                    dict(n_in=3, n_hidden=4, layout="two chains")])
def test_gru_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received an invalid value"):
        MyGRUCell(**kwargs)


def test_gru_state_is_one_tensor_and_carried_between_calls():
    cell = MyGRUCell(2, 3, seed=2)
    x = make_rng(8).standard_normal((4, 7, 2)).astype(np.float32)
    whole, final = cell(x)
    first, mid = cell(x[:, :3])
    second, final2 = cell(x[:, 3:], mid)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=ATOL)
    np.testing.assert_allclose(final2, final, atol=ATOL)
    np.testing.assert_array_equal(final, whole[:, -1])
    np.testing.assert_array_equal(cell(x, cell.zero_state(4))[0], whole)
    for bad in ([final], (final,), np.zeros((4, 5), np.float32)):
        with pytest.raises(ValueError, match="one tensor h"):
            cell(x, bad)
