"""The recurrences of the TensorFlow cells over whole sequences, with hand-written BPTT.

`lstm_sequence` and `relu_rnn_sequence` run a cell's recurrence over all time steps of a
time-major input and are `tf.custom_gradient` functions: their backward pass is BPTT written
out (as in the numpy cell), not TensorFlow differentiating a while loop. One recipe for both:

  * the forward loop stores, per step, exactly the factors BPTT needs, so the backward loop
    is a few element-wise ops and one matmul per step;
  * one matmul per step computes all four LSTM gates (4H columns), and one tanh activates
    them (sigmoid(z) = (1 + tanh(z/2)) / 2, see below);
  * the weight gradients are single matmuls over all stacked time steps after the loop;
  * the loops are compiled with XLA (jit_compile), which fuses each step's element-wise work.
benchmarks/RESULTS.md has the measured speeds and what each choice bought.

Layouts follow Keras: `kernel (n_in, k*H)`, `recurrent_kernel (H, k*H)`, `bias (k*H,)`, so a
step is `x_t @ kernel + h_{t-1} @ recurrent_kernel + bias` (the transposes of the sheet's W_hx
and W_hh); the LSTM's k = 4 column blocks are the gates i, f, c, o.
"""

from __future__ import annotations

from rnnlab.tf_rnn._tf import DTYPE, tf

# Compile the forward and backward loops with XLA (also when a model is called outside a
# training step, e.g. for evaluation): XLA fuses each step's element-wise work, which is where
# a CPU spends its time at these sizes. Off only to debug.
JIT_LOOPS = True


def _shape(x):
    """x's dimensions: static ints where known, scalar tensors otherwise."""
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape)]


def _stack(array, n_steps, element_shape):
    """array.stack() with the static shape (n_steps, *element_shape) where it is known."""
    out = array.stack()
    out.set_shape([n_steps] + list(element_shape))
    return out


def _steps(x, extra=0):
    """Static number of time steps of a time-major x (plus `extra`), or None."""
    return None if x.shape[0] is None else x.shape[0] + extra


# ----------------------------------------------------------------------------- LSTM core

def _gate_columns(n_hidden: int, sigmoid_value: float, tanh_value: float):
    """A (4H,) vector: `sigmoid_value` on the i, f, o columns, `tanh_value` on the c columns."""
    s = tf.fill([n_hidden], tf.constant(sigmoid_value, DTYPE))
    return tf.concat([s, s, tf.fill([n_hidden], tf.constant(tanh_value, DTYPE)), s], axis=0)


# The forward loop evaluates all four gates with ONE tanh, using sigmoid(z) = (1 + tanh(z/2)) / 2:
# with the i, f, o columns of the pre-activation scaled by 1/2 (`_gate_columns(H, 0.5, 1.0)`),
# a = tanh(scaled z) = [2i - 1, 2f - 1, g, 2o - 1]. (On a CPU, XLA's tanh is several times
# faster than its sigmoid, and one op over 4H columns beats four over H.)
#
# BPTT of one step (s' = s (1 - s) for a sigmoid s, tanh'(z) = 1 - g^2):
#   dh_t = dh_out_t + dz_{t+1} @ rk^T                   gradient reaching h_t
#   dc_t = dc_{t+1} f_{t+1} + dh_t r_t                  r_t = o (1 - tanh(c_t)^2)
#   dz_t = [dc_t, dc_t, dc_t, dh_t] * p_t               gradient of the 4H gate inputs, with
#   p_t  = [g i', c_{t-1} f', i (1 - g^2), tanh(c_t) o']
# p_t, r_t and f_t depend on the forward pass only, so the forward loop stores them (it has
# every ingredient at hand) and the backward loop is four element-wise ops and one matmul.
# In terms of a: i' = (1 - a_i^2) / 4, so p_t = [g, c_{t-1}, i, tanh(c_t)] * (1 - a^2) *
# [1/4, 1/4, 1, 1/4] over all 4H columns at once.

def _lstm_forward_loop(x, h0, c0, ks, rks, bs):
    """The LSTM recurrence on half-scaled pre-activations, keeping what BPTT needs.

    x: (T, B, n_in) time-major input; ks (n_in, 4H), rks (H, 4H), bs (4H,): kernel,
    recurrent kernel and bias with the sigmoid columns halved. Returns hs (T+1, B, H) with
    h0 at index 0, c_T (B, H), and the per-step BPTT factors p (T, B, 4H), r and f (T, B, H).
    """
    n_steps = tf.shape(x)[0]
    derivative_scale = _gate_columns(h0.shape[-1], 0.25, 1.0)

    def body(t, h, c, hs, ps, rs, fs):
        a = tf.tanh(tf.matmul(x[t], ks) + tf.matmul(h, rks) + bs)
        a_i, a_f, g, a_o = tf.split(a, 4, axis=1)
        i, f, o = 0.5 * (1.0 + a_i), 0.5 * (1.0 + a_f), 0.5 * (1.0 + a_o)
        c_new = f * c + i * g
        tanh_c = tf.tanh(c_new)
        h = o * tanh_c
        p = tf.concat([g, c, i, tanh_c], axis=1) * (1.0 - a * a) * derivative_scale
        r = o * (1.0 - tanh_c * tanh_c)
        return (t + 1, h, c_new, hs.write(t + 1, h), ps.write(t, p), rs.write(t, r),
                fs.write(t, f))

    hs = tf.TensorArray(DTYPE, size=n_steps + 1).write(0, h0)
    factors = [tf.TensorArray(DTYPE, size=n_steps) for _ in range(3)]
    _, _, c_last, hs, ps, rs, fs = tf.while_loop(lambda t, *_: t < n_steps, body,
                                                 [tf.constant(0), h0, c0, hs, *factors],
                                                 maximum_iterations=n_steps)
    n = _steps(x)
    return (_stack(hs, _steps(x, 1), h0.shape), c_last,
            _stack(ps, n, [h0.shape[0], 4 * h0.shape[1]]), _stack(rs, n, h0.shape),
            _stack(fs, n, h0.shape))


def _lstm_backward_loop(dhs, dc_last, ps, rs, fs, rk):
    """BPTT through the LSTM recurrence, last step first (equations above).

    dhs: (T, B, H) gradient of the outputs h_t; dc_last: gradient of c_T; ps, rs, fs: the
    factors stored by the forward loop. Returns dz (T, B, 4H), the gradient of the gate
    inputs of every step, and the gradients of the initial h and c.
    """
    n_steps = tf.shape(dhs)[0]

    def body(t, dh_rec, dc, dzs):
        dh = dhs[t] + dh_rec
        dc = dc + dh * rs[t]
        dz = tf.concat([dc, dc, dc, dh], axis=1) * ps[t]
        return t - 1, tf.matmul(dz, rk, transpose_b=True), dc * fs[t], dzs.write(t, dz)

    _, dh0, dc0, dzs = tf.while_loop(lambda t, *_: t >= 0, body,
                                     [n_steps - 1, tf.zeros_like(dhs[0]), dc_last,
                                      tf.TensorArray(DTYPE, size=n_steps)],
                                     maximum_iterations=n_steps)
    return _stack(dzs, _steps(dhs), ps.shape[1:]), dh0, dc0


_lstm_forward_jit = tf.function(_lstm_forward_loop, jit_compile=True, autograph=False)
_lstm_backward_jit = tf.function(_lstm_backward_loop, jit_compile=True, autograph=False)


def _weight_gradients(x, hs, dz, kernel):
    """Gradients of x, kernel, recurrent kernel and bias from the stacked gate gradients dz
    (T, B, k*H): each is ONE matmul (or sum) over all T*B rows, after the loop.
    hs: (T+1, B, H) hidden states with h0 first, so hs[:-1] holds h_{t-1} for every step t."""
    x_flat = tf.reshape(x, [-1, x.shape[-1]])
    dz_flat = tf.reshape(dz, [-1, dz.shape[-1]])
    d_kernel = tf.matmul(x_flat, dz_flat, transpose_a=True)
    d_recurrent = tf.matmul(tf.reshape(hs[:-1], [-1, hs.shape[-1]]), dz_flat, transpose_a=True)
    d_bias = tf.reduce_sum(dz_flat, axis=0)
    d_x = tf.reshape(tf.matmul(dz_flat, kernel, transpose_b=True), _shape(x))
    return d_x, d_kernel, d_recurrent, d_bias


@tf.custom_gradient
def lstm_sequence(x, h0, c0, kernel, rk, bias):
    """Runs the LSTM over all steps of x (T, B, n_in), time-major, from (h0, c0).

    Returns (hs (T, B, H), c_T (B, H)); h_T is hs[-1]. The gradient is hand-written BPTT.
    """
    scale = _gate_columns(rk.shape[0], 0.5, 1.0)  # folded into the weights, not activations
    forward = _lstm_forward_jit if JIT_LOOPS else _lstm_forward_loop
    # stop_gradient: autodiff must not trace through the loop (the gradient is `grad` below)
    hs, c_last, ps, rs, fs = forward(*[tf.stop_gradient(a) for a in
                                       (x, h0, c0, kernel * scale, rk * scale, bias * scale)])

    def grad(dhs, dc_last):
        if dhs is None:
            dhs = tf.zeros_like(hs[1:])
        if dc_last is None:
            dc_last = tf.zeros_like(c0)
        backward = _lstm_backward_jit if JIT_LOOPS else _lstm_backward_loop
        dz, dh0, dc0 = backward(*[tf.stop_gradient(a) for a in (dhs, dc_last, ps, rs, fs, rk)])
        d_x, d_kernel, d_rk, d_bias = _weight_gradients(x, hs, dz, kernel)
        return d_x, dh0, dc0, d_kernel, d_rk, d_bias

    return (hs[1:], c_last), grad


# ----------------------------------------------------------------------------- ReLU RNN core

def _relu_forward_loop(x, h0, kernel, rk, bias):
    """h_t = ReLU(x_t @ kernel + h_{t-1} @ rk + bias); returns hs (T+1, B, H), h0 first."""
    n_steps = tf.shape(x)[0]

    def body(t, h, hs):
        h = tf.nn.relu(tf.matmul(x[t], kernel) + tf.matmul(h, rk) + bias)
        return t + 1, h, hs.write(t + 1, h)

    hs = tf.TensorArray(DTYPE, size=n_steps + 1).write(0, h0)
    _, _, hs = tf.while_loop(lambda t, *_: t < n_steps, body, [tf.constant(0), h0, hs],
                             maximum_iterations=n_steps)
    return _stack(hs, _steps(x, 1), h0.shape)


def _relu_backward_loop(dhs, hs, rk):
    """The sheet's BPTT (question 1b), last step first:
    dh_t = dy_t + W_hh^T dh^_{t+1};  dh^_t = dh_t where the forward ReLU passed (h_t > 0), else 0.
    Returns dh^ (T, B, H), the gradient of the pre-activations, and the gradient of h0.
    """
    n_steps = tf.shape(dhs)[0]

    def body(t, dh_rec, das):
        da = tf.where(hs[t + 1] > 0, dhs[t] + dh_rec, 0.0)
        return t - 1, tf.matmul(da, rk, transpose_b=True), das.write(t, da)

    _, dh0, das = tf.while_loop(lambda t, *_: t >= 0, body,
                                [n_steps - 1, tf.zeros_like(dhs[0]),
                                 tf.TensorArray(DTYPE, size=n_steps)],
                                maximum_iterations=n_steps)
    return _stack(das, _steps(dhs), dhs.shape[1:]), dh0


_relu_forward_jit = tf.function(_relu_forward_loop, jit_compile=True, autograph=False)
_relu_backward_jit = tf.function(_relu_backward_loop, jit_compile=True, autograph=False)


@tf.custom_gradient
def relu_rnn_sequence(x, h0, kernel, rk, bias):
    """h_t = ReLU(x_t @ kernel + h_{t-1} @ rk + bias) over all steps of x (T, B, n_in);
    returns hs (T, B, H). The gradient is the sheet's BPTT, written out."""
    forward = _relu_forward_jit if JIT_LOOPS else _relu_forward_loop
    hs = forward(*[tf.stop_gradient(a) for a in (x, h0, kernel, rk, bias)])

    def grad(dhs):
        backward = _relu_backward_jit if JIT_LOOPS else _relu_backward_loop
        da, dh0 = backward(*[tf.stop_gradient(a) for a in (dhs, hs, rk)])
        d_x, d_kernel, d_rk, d_bias = _weight_gradients(x, hs, da, kernel)
        return d_x, dh0, d_kernel, d_rk, d_bias

    return hs[1:], grad




# ----------------------------------------------------------------------------- gradient flow

def _recurrence_term(d_next, rk):
    """d_next (T-1, B, kH) gate-input gradients of steps 2..T -> (T, B, H): what each flows
    back into the previous hidden state (d @ rk^T), zero after the last step."""
    flat = tf.matmul(tf.reshape(d_next, [-1, rk.shape[1]]), rk, transpose_b=True)
    back = tf.reshape(flat, tf.concat([tf.shape(d_next)[:2], [rk.shape[0]]], axis=0))
    return tf.concat([back, tf.zeros_like(back[:1])], axis=0)


def lstm_hidden_gradients(x, h0, c0, kernel, rk, bias, dhs):
    """The total gradient dL/dh_t at every step, from the same forward and backward loops that
    lstm_sequence trains with: dh_t = dhs_t + dz_{t+1} @ rk^T.

    x: (T, B, n_in) time-major; dhs: (T, B, H) the direct gradient of the loss w.r.t. each
    output h_t (not through the recurrence). Returns (T, B, H).
    """
    scale = _gate_columns(rk.shape[0], 0.5, 1.0)
    forward = _lstm_forward_jit if JIT_LOOPS else _lstm_forward_loop
    backward = _lstm_backward_jit if JIT_LOOPS else _lstm_backward_loop
    _, _, ps, rs, fs = forward(x, h0, c0, kernel * scale, rk * scale, bias * scale)
    dz, _, _ = backward(dhs, tf.zeros_like(c0), ps, rs, fs, rk)
    return dhs + _recurrence_term(dz[1:], rk)


def relu_rnn_hidden_gradients(x, h0, kernel, rk, bias, dhs):
    """dL/dh_t at every step from relu_rnn_sequence's own loops: dh_t = dhs_t + dh^_{t+1} @ rk^T
    (shapes as lstm_hidden_gradients)."""
    forward = _relu_forward_jit if JIT_LOOPS else _relu_forward_loop
    backward = _relu_backward_jit if JIT_LOOPS else _relu_backward_loop
    hs = forward(x, h0, kernel, rk, bias)
    da, _ = backward(dhs, hs, rk)
    return dhs + _recurrence_term(da[1:], rk)
