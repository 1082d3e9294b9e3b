"""The GRU's recurrence for the generic driver (rnnlab.tf_rnn.recurrence), in Keras's layout
(keras.layers.GRU with reset_after=True, its default): fused kernels with column blocks z, r, h
and two biases, b0 (bias[0]) on the input projection and b1 (bias[1]) on the recurrent one.

    xw_t = x_t @ kernel + b0,  hr_t = h_tm1 @ recurrent_kernel + b1              (B, 3H)
    z = sigmoid(xw_z + hr_z),  r = sigmoid(xw_r + hr_r)
    h^ = tanh(xw_h + r * hr_h)                       the reset gate after the recurrent matmul
    h_t = z * h_tm1 + (1 - z) * h^

BPTT of one step, dh the total gradient of h_t (the driver's dh_out_t + dz_rec_{t+1} @ rk^T,
plus the carry z_{t+1} * dh_{t+1}, the direct path from h_t to h_{t+1}):
    da_h = dh (1 - z) (1 - h^^2)                     gradient of h^'s pre-activation
    da_z = dh (h_tm1 - h^) z (1 - z),  da_r = da_h hr_h r (1 - r)
    dz_in = [da_z, da_r, da_h]       the gradient of xw_t: x_t @ kernel + b0
    dz_rec = [da_z, da_r, da_h r]    the gradient of hr_t: the reset gate scales this part only
    carry to step t-1: dh z
The state is (h,); a step caches (zr (B, 2H) = [z, r], h^ (B, H), hr_h (B, H)).
"""

from __future__ import annotations

from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.activations import sigmoid, tanh
from rnnlab.tf_rnn.recurrence import (Layout, Recurrence, carry_barrier_constants,
                                      hidden_gradients, through_barrier)


def project_inputs(x, fw):
    """x (T, b, n_in) -> x_t @ kernel + b0 of all steps (T, b, 3H), one matmul."""
    n_steps = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
    xw = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), fw["kernel"]) + fw["bias"][0]
    return tf.reshape(xw, [n_steps, -1, fw["recurrent_kernel"].shape[1]])


def forward_step(xw_t, state_tm1, fw):
    """One GRU step. xw_t (B, 3H): x_t @ kernel + b0; state_tm1 (h_tm1,) (B, H).
    Returns ((h_t,), (zr, h_hat, hr_h)), the cache BPTT needs (see the module docstring)."""
    (h_tm1,) = state_tm1
    n_hidden = h_tm1.shape[-1]
    hr = tf.matmul(h_tm1, fw["recurrent_kernel"]) + fw["bias"][1]
    xw_zr, xw_h = tf.split(xw_t, [2 * n_hidden, n_hidden], axis=1)
    hr_zr, hr_h = tf.split(hr, [2 * n_hidden, n_hidden], axis=1)
    zr = sigmoid(xw_zr + hr_zr)          # both gates in one op
    z, r = tf.split(zr, 2, axis=1)
    h_hat = tanh(xw_h + r * hr_h)
    h = z * h_tm1 + (1.0 - z) * h_hat
    return (h,), (zr, h_hat, hr_h)


def backward_step(dh, carry, cache, state_tm1, state_t, barrier):
    """BPTT through one step (module docstring). dh (B, H): the gradient reaching h_t through
    the output and the next step's recurrent matmul; carry (dh_direct,) (B, H): z_{t+1} dh_{t+1};
    barrier: the backward constants, recurrence.carry_barrier_constants'.
    Returns ((dz_in, dz_rec) (B, 3H) each, (dh_t z_t,))."""
    (dh_direct,), (zr, h_hat, hr_h), (h_tm1,) = carry, cache, state_tm1
    # The total gradient of h_t, the start of the element-wise recurrence dh_{t-1} = ... +
    # z_t dh_t, which XLA would fuse across the unrolled steps: [dh, dh, dh] below stops that
    # from 3H >= 128 columns, a matmul with the identity below that (at the bench's memory
    # shape, H = 32: forward + backward 8.3 ms without it, 6.3 ms with it). Where the
    # concatenation suffices, the matmul only cost time (RESULTS.md: "The carry barrier").
    dh = through_barrier(dh + dh_direct, barrier)
    z, r = tf.split(zr, 2, axis=1)
    # Written as "factors (from the cache alone) times [dh, dh, dh]", as lstm.backward_step
    # is: with dh inside the products (and neither the concatenation nor a matmul to stop the
    # fusion), the fusion across steps cost
    # 78 ms instead of 9 ms per gradient at T = 100 and 100 s instead of 19 s to compile.
    d_hat = (1.0 - z) * (1.0 - h_hat * h_hat)           # d h_t / d (h^'s pre-activation)
    # z and r's sigmoid derivatives as one (B, 2H) product, like their forward op
    p_zr = tf.concat([h_tm1 - h_hat, d_hat * hr_h], axis=1) * zr * (1.0 - zr)
    dh3 = tf.concat([dh, dh, dh], axis=1)
    dz_in = dh3 * tf.concat([p_zr, d_hat], axis=1)
    dz_rec = dh3 * tf.concat([p_zr, d_hat * r], axis=1)
    return (dz_in, dz_rec), (dh * z,)


GRU = Recurrence(
    name="gru", n_cached=3, shares_pre_activation=False,
    prepare_weights=lambda w: w, project_inputs=project_inputs, forward_step=forward_step,
    backward_constants=lambda rk: carry_barrier_constants(*rk.shape),  # rk (H, 3H)
    backward_step=backward_step,
    initial_carry=lambda d_final_extras, dh_last: (tf.zeros_like(dh_last),),
    state0_gradients=lambda dh_rec, carry: (dh_rec + carry[0],),
    direct_path=lambda cache: tf.split(cache[0], 2, axis=-1)[0],  # z_t: h_t = z h_tm1 + ...
)


def gru_hidden_gradients(x, h0, weights, dhs, layout: Layout | None = None):
    """dL/dh_t (T, B, H) from the GRU's own loops, its direct z * h_tm1 path included (shapes
    as rnnlab.tf_rnn.lstm.lstm_hidden_gradients)."""
    return hidden_gradients(GRU, x, (h0,), weights, dhs, layout or Layout())
