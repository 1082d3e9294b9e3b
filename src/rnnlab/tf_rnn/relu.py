"""The ReLU RNN's recurrence for the generic driver (rnnlab.tf_rnn.recurrence), the cell of
question 1:

    h_t = ReLU(x_t @ kernel + h_tm1 @ recurrent_kernel + bias)          (B, H)

BPTT (the sheet's, question 1b), last step first:
    dh_t = dy_t + dh^_{t+1} @ rk^T                   (the driver's)
    dh^_t = dh_t where the forward ReLU passed (h_t > 0), else 0
The state is (h,); a step caches nothing (h_t > 0 is read from the stored states); no carry.
"""

from __future__ import annotations

from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.recurrence import Layout, Recurrence, hidden_gradients

# One chain in a while loop, as this cell has always run: the committed pipeline's ReLU results
# are bit-reproducible with this layout (the chains were measured for the LSTM only).
DEFAULT_LAYOUT = Layout(n_chains=1)


def project_inputs(x, fw):
    """Nothing before the loop: the step keeps x_t @ kernel, because projecting all steps at
    once sums (x_t K + b) + h R instead of (x_t K + h R) + b, different last bits from the
    committed results."""
    return x


def forward_step(x_t, state_tm1, fw):
    """x_t (B, n_in), state_tm1 (h_tm1,) (B, H) -> ((h_t,), ()): nothing cached."""
    h = tf.nn.relu(tf.matmul(x_t, fw["kernel"]) + tf.matmul(state_tm1[0], fw["recurrent_kernel"])
                   + fw["bias"])
    return (h,), ()


def backward_step(dh, carry, cache, state_tm1, state_t, consts):
    """dh (B, H), the total gradient of h_t -> ((dh^_t,), ()): the pre-activation gradient,
    shared by the input and recurrent projections, where the ReLU passed."""
    return (tf.where(state_t[0] > 0, dh, 0.0),), ()


RELU = Recurrence(
    name="relu", n_cached=0, shares_pre_activation=True,
    prepare_weights=lambda w: w, project_inputs=project_inputs, forward_step=forward_step,
    backward_constants=lambda rk: (), backward_step=backward_step,
    initial_carry=lambda d_final_extras, dh_last: (),
    state0_gradients=lambda dh_rec, carry: (dh_rec,),
)


def relu_rnn_hidden_gradients(x, h0, weights, dhs, layout: Layout | None = None):
    """dL/dh_t (T, B, H) from the ReLU RNN's own loops: dh_t = dhs_t + dh^_{t+1} @ rk^T
    (shapes as rnnlab.tf_rnn.lstm.lstm_hidden_gradients)."""
    return hidden_gradients(RELU, x, (h0,), weights, dhs, layout or DEFAULT_LAYOUT)
