"""dL/dh_t from the numpy cell's BPTT loop (rnnlab.numpy_rnn.gradient_flow) against TensorFlow
autodiff of the same network: the total gradient, through the recurrence, at every step."""

from __future__ import annotations

import numpy as np

from rnnlab.numpy_rnn.gradient_flow import gradient_norms, hidden_state_gradients
from rnnlab.numpy_rnn.model import RNNClassifier


def _autodiff_hidden_gradients(model, x, y, mask):
    from rnnlab.tf_rnn._tf import tf

    W_hh, W_hx, b_h = (tf.constant(p.astype(np.float64)) for p, _, _ in model.cell.get_params())
    W, b = (tf.constant(p.astype(np.float64)) for p, _, _ in model.out.get_params())
    with tf.GradientTape() as tape:
        tape.watch([W_hh, W_hx, b_h])  # so that the ops on the states are recorded
        h, hs, loss = tf.zeros((x.shape[0], W_hh.shape[0]), tf.float64), [], 0.0
        for t in range(x.shape[1]):
            h = tf.nn.relu(h @ tf.transpose(W_hh) + x[:, t] @ tf.transpose(W_hx) + b_h)
            hs.append(h)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=y[:, t], logits=h @ tf.transpose(W) + b)
            loss += float(mask[t]) * tf.reduce_sum(ce)
    return np.stack([g.numpy() for g in tape.gradient(loss, hs)], axis=1)


def test_hidden_gradients_equal_autodiff_through_the_recurrence():
    rng = np.random.default_rng(0)
    model = RNNClassifier(5, 7, init="gaussian", rng=1, dtype=np.float64)
    model.cell.b_h[:] = 0.2 * rng.standard_normal(7)
    x = np.eye(5)[rng.integers(0, 5, size=(4, 9))]
    y = rng.integers(0, 5, size=(4, 9))
    mask = np.arange(9) >= 6  # loss on the last three steps only, as on recalled positions
    ours = hidden_state_gradients(model, x, y, mask)
    expected = _autodiff_hidden_gradients(model, x, y, mask)
    assert np.abs(expected[:, :6]).max() > 1e-3  # the recurrence carries gradient back
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
    norms = gradient_norms(model, np.argmax(x, -1), y, mask, batch_size=3)  # two chunks
    np.testing.assert_allclose(norms, np.linalg.norm(expected, axis=-1).mean(axis=0), rtol=1e-10)
