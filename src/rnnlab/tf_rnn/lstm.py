"""The LSTM's recurrence for the generic driver (rnnlab.tf_rnn.recurrence): one forward step,
its BPTT step and what passes between them.

    [z_i, z_f, z_c, z_o] = x_t @ kernel + h_tm1 @ recurrent_kernel + bias     (B, 4H)
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_c)
    c_t = f * c_tm1 + i * g;  h_t = o * tanh(c_t)

One matmul per step computes all four gates (Keras's fused kernels, column blocks i, f, c, o)
and one tanh activates them: sigmoid(z) = (1 + tanh(z/2)) / 2, the 1/2 folded into the
weights' i, f, o columns (`prepare_weights`), so the forward step's activations are
a = tanh(scaled z) = [2i - 1, 2f - 1, g, 2o - 1].

BPTT of one step (s' = s (1 - s) for a sigmoid s, tanh'(z) = 1 - g^2):
    dh_t = dh_out_t + dz_{t+1} @ rk^T                  gradient reaching h_t (the driver's)
    dc_t = dc_{t+1} f_{t+1} + dh_t o (1 - tanh(c_t)^2)
    dz_t = [dc_t g i', dc_t c_{t-1} f', dc_t i (1 - g^2), dh_t tanh(c_t) o']
and since i' = (1 - a_i^2) / 4 etc.: dz_t = [dc g, dc c_{t-1}, dc i, dh tanh(c_t)]
    * (1 - a^2) * [1/4, 1/4, 1, 1/4] over all 4H columns at once.
The state is (h, c); the cache of a step is its activations a (B, 4H); the carry is dc.
"""

from __future__ import annotations

from rnnlab.tf_rnn._tf import DTYPE, tf
from rnnlab.tf_rnn.recurrence import Layout, Recurrence, hidden_gradients


def _gate_columns(n_hidden, sigmoid_value, tanh_value):
    """A (4H,) vector: `sigmoid_value` on the i, f, o columns, `tanh_value` on the c columns."""
    s = tf.fill([n_hidden], tf.constant(sigmoid_value, DTYPE))
    return tf.concat([s, s, tf.fill([n_hidden], tf.constant(tanh_value, DTYPE)), s], axis=0)


def prepare_weights(w: dict) -> dict:
    """The weights with the sigmoid's 1/2 folded into the i, f, o columns (not the activations)."""
    scale = _gate_columns(w["recurrent_kernel"].shape[0], 0.5, 1.0)
    return {name: value * scale for name, value in w.items()}


def project_inputs(x, fw):
    """x (T, b, n_in) -> x_t @ kernel + bias of all steps (T, b, 4H), one matmul."""
    n_gates = fw["recurrent_kernel"].shape[1]
    n_steps = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
    return tf.reshape(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), fw["kernel"]) + fw["bias"],
                      [n_steps, -1, n_gates])


def _gates(a):
    """i, f, g, o (B, H) from the activations a (B, 4H) = [2i - 1, 2f - 1, g, 2o - 1]."""
    a_i, a_f, g, a_o = tf.split(a, 4, axis=1)
    return 0.5 * (1.0 + a_i), 0.5 * (1.0 + a_f), g, 0.5 * (1.0 + a_o)


def forward_step(xw_t, state_tm1, fw):
    """One LSTM step. xw_t (B, 4H): x_t @ kernel + bias (scaled); state_tm1 = (h_tm1, c_tm1),
    each (B, H). Returns the state (h_t, c_t) and the cache (a_t,) (B, 4H) BPTT needs."""
    h_tm1, c_tm1 = state_tm1
    a = tf.tanh(xw_t + tf.matmul(h_tm1, fw["recurrent_kernel"]))
    i, f, g, o = _gates(a)
    c = f * c_tm1 + i * g
    h = o * tf.tanh(c)
    return (h, c), (a,)


def backward_constants(rk):
    """The gates' derivative factors [1/4, 1/4, 1, 1/4] per column (4H,)."""
    return (_gate_columns(rk.shape[0], 0.25, 1.0),)


def backward_step(dh, carry, cache, state_tm1, state_t, consts):
    """BPTT through one step (equations above). dh (B, H): the total gradient of h_t; carry
    (dc,): the gradient of c_t arriving from step t+1 (already times f_{t+1}); cache (a_t,).
    Returns ((dz_t,), (dc_t * f_t,)): dz_t (B, 4H) the gradient of the gate pre-activations
    (shared by the input and recurrent projections), and dc_{t-1}'s share."""
    (dc,), (a,), c_tm1, c_t, (derivative_scale,) = carry, cache, state_tm1[1], state_t[1], consts
    i, f, g, o = _gates(a)
    tanh_c = tf.tanh(c_t)
    # Written as "factors times [dc, dc, dc, dh]" on purpose: with the products inside the
    # concat instead (dz = [dc g, dc c_{t-1}, dc i, dh tanh(c_t)] * ...), XLA fuses the purely
    # element-wise dc recurrence of the unrolled loop across steps and recomputes it for every
    # step (O(T^2) work): slower to run and to compile.
    r = o * (1.0 - tanh_c * tanh_c)
    p = tf.concat([g, c_tm1, i, tanh_c], axis=1) * (1.0 - a * a) * derivative_scale
    dc = dc + dh * r
    dz = tf.concat([dc, dc, dc, dh], axis=1) * p
    return (dz,), (dc * f,)


LSTM = Recurrence(
    name="lstm", n_cached=1, shares_pre_activation=True,
    prepare_weights=prepare_weights, project_inputs=project_inputs, forward_step=forward_step,
    backward_constants=backward_constants, backward_step=backward_step,
    initial_carry=lambda d_final_extras, dh_last: (d_final_extras[0],),  # dc_T
    state0_gradients=lambda dh_rec, carry: (dh_rec, carry[0]),          # dh0, dc0
)


def lstm_hidden_gradients(x, h0, c0, weights, dhs, layout: Layout | None = None):
    """dL/dh_t (T, B, H) at every step from the LSTM's own loops (recurrence.hidden_gradients);
    weights by name, x (T, B, n_in), h0, c0 (B, H), dhs (T, B, H)."""
    return hidden_gradients(LSTM, x, (h0, c0), weights, dhs, layout or Layout())
