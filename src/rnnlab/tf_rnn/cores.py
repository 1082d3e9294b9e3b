"""The recurrences of the TensorFlow cells over whole sequences, with hand-written BPTT.

`lstm_sequence` and `relu_rnn_sequence` run a cell's recurrence over all time steps of a
time-major input and are `tf.custom_gradient` functions: their backward pass is BPTT written
out (as in the numpy cell), not TensorFlow differentiating a loop. The equations live in the
step functions (`_forward_step`, `_backward_step` for the LSTM); the rest arranges them for a
CPU under XLA (the chains and the unrolled loop measured in benchmarks/RESULTS.md):

  * one matmul per step computes all four LSTM gates (4H columns), and one tanh activates them
    (sigmoid(z) = (1 + tanh(z/2)) / 2, the 1/2 folded into the weights' i, f, o columns);
  * the input projection x_t @ kernel + bias of all steps is one matmul before the loop;
  * the forward pass keeps only the gate activations and cell states; BPTT recomputes the few
    element-wise factors it needs from them;
  * the weight gradients are one matmul over all stacked time steps after the loop;
  * the LSTM's batch is cut into N_CHAINS = 2 independent recurrences ("chains"): rows of a
    batch never interact, and XLA runs independent kernels side by side, so on two cores the
    chains share them where one recurrence alone (a chain of small dependent kernels) uses
    one. Chains only overlap outside a while loop, so with a static number of steps
    (<= UNROLL_MAX_STEPS) the time loop is unrolled in Python; otherwise one tf.while_loop
    runs the same step functions. Unrolling costs compilation time (XLA's persistent cache,
    rnnlab.tf_rnn._tf, pays it once per shape).

Layouts follow Keras: `kernel (n_in, k*H)`, `recurrent_kernel (H, k*H)`, `bias (k*H,)`, so a
step is `x_t @ kernel + h_{t-1} @ recurrent_kernel + bias` (the transposes of the sheet's W_hx
and W_hh); the LSTM's k = 4 column blocks are the gates i, f, c, o.
"""

from __future__ import annotations

from rnnlab.tf_rnn._tf import CORES, DTYPE, tf

# Compile the forward and backward loops with XLA (also when a model is called outside a
# training step, e.g. for evaluation): XLA fuses each step's element-wise work, which is where
# a CPU spends its time at these sizes. Off only to debug.
JIT_LOOPS = True
# Independent batch chunks of the LSTM: two, run side by side on two or more cores (unrolled),
# in turn in a while loop on one core, where nothing overlaps and the while loop compiles much
# quicker (the two loops' last bits differ).
N_CHAINS = 2
MIN_CHAIN_ROWS = 8        # batches under N_CHAINS * MIN_CHAIN_ROWS rows are not split
UNROLL_MAX_STEPS = 128    # unroll the time loop (split batches only) up to this many steps


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

def _gate_columns(n_hidden, sigmoid_value, tanh_value):
    """A (4H,) vector: `sigmoid_value` on the i, f, o columns, `tanh_value` on the c columns."""
    s = tf.fill([n_hidden], tf.constant(sigmoid_value, DTYPE))
    return tf.concat([s, s, tf.fill([n_hidden], tf.constant(tanh_value, DTYPE)), s], axis=0)


def _chain_rows(batch_size):
    """Row ranges [(start, stop), ...] of the chains, or None: one chain (no split).

    Needs a static batch size; small batches are not split (nothing to gain)."""
    if batch_size is None or N_CHAINS < 2 or batch_size < N_CHAINS * MIN_CHAIN_ROWS:
        return None
    bounds = [batch_size * k // N_CHAINS for k in range(N_CHAINS + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _unrolled(n_steps, n_chains):
    """Unroll in Python? Only for a static T, a split batch and more than one core: the
    unrolled loop pays off through the chains running side by side; otherwise there is nothing
    to overlap, and the while loop compiles many times quicker (benchmarks/RESULTS.md: the
    layout variants)."""
    return n_steps is not None and n_steps <= UNROLL_MAX_STEPS and n_chains > 1 and CORES > 1


# ----------------------------------------------------------------------------- one step
# The forward step works on half-scaled pre-activations (`_gate_columns(H, 0.5, 1.0)` is
# folded into kernel, rk and bias), so a = tanh(scaled z) = [2i - 1, 2f - 1, g, 2o - 1].
#
# BPTT of one step (s' = s (1 - s) for a sigmoid s, tanh'(z) = 1 - g^2):
#   dh_t = dh_out_t + dz_{t+1} @ rk^T                  gradient reaching h_t
#   dc_t = dc_{t+1} f_{t+1} + dh_t o (1 - tanh(c_t)^2)
#   dz_t = [dc_t g i', dc_t c_{t-1} f', dc_t i (1 - g^2), dh_t tanh(c_t) o']
# and since i' = (1 - a_i^2) / 4 etc.: dz_t = [dc g, dc c_{t-1}, dc i, dh tanh(c_t)]
#   * (1 - a^2) * [1/4, 1/4, 1, 1/4] over all 4H columns at once.

def _gates(a):
    """i, f, g, o from the activations a (B, 4H) = [2i - 1, 2f - 1, g, 2o - 1]."""
    a_i, a_f, g, a_o = tf.split(a, 4, axis=1)
    return 0.5 * (1.0 + a_i), 0.5 * (1.0 + a_f), g, 0.5 * (1.0 + a_o)


def _forward_step(xw_t, h_tm1, c_tm1, rks):
    """One LSTM step. xw_t (B, 4H): x_t @ kernel + bias (scaled); h_tm1, c_tm1 (B, H).
    Returns h_t, c_t (B, H) and the activations a_t (B, 4H), which BPTT needs."""
    a = tf.tanh(xw_t + tf.matmul(h_tm1, rks))
    i, f, g, o = _gates(a)
    c = f * c_tm1 + i * g
    h = o * tf.tanh(c)
    return h, c, a


def _backward_step(dh, dc, a, c_tm1, c_t, derivative_scale):
    """BPTT through one step (equations above). dh: total gradient of h_t (B, H); dc: the
    gradient of c_t arriving from step t+1 (already times f_{t+1}). Returns dz_t (B, 4H),
    the gradient of the step's gate pre-activations, and dc_{t-1}'s share: dc_t * f_t."""
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
    return dz, dc * f


# ----------------------------------------------------------------------------- unrolled
# Each argument/result below is a list with one entry per chain; the chains' ops are
# emitted interleaved (step t of chain 0, step t of chain 1, ...) so that XLA can run them
# side by side.

# The unrolled loops call the steps as (uncompiled) tf.functions: each step is traced once
# and called T times, where inlined Python would trace T copies; XLA inlines the calls when it
# compiles the loop, so the computation is the same, traced in about half the time.
_forward_step_fn = tf.function(_forward_step, autograph=False)
_backward_step_fn = tf.function(_backward_step, autograph=False)


def _forward_unrolled(xs, h0s, c0s, ks, rks, bs):
    """xs: per chain (T, b, n_in); h0s, c0s: per chain (b, H).
    Returns per chain hs (T+1, b, H) (h0 first), cs (T+1, b, H) (c0 first), a (T, b, 4H)."""
    n_steps, n_gates = xs[0].shape[0], rks.shape[1]
    # all steps' input projections in one matmul per chain (not on the sequential path)
    xws = [tf.reshape(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), ks) + bs,
                      [n_steps, -1, n_gates]) for x in xs]
    hs, cs, acts = [[h] for h in h0s], [[c] for c in c0s], [[] for _ in xs]
    for t in range(n_steps):
        for k in range(len(xs)):
            h, c, a = _forward_step_fn(xws[k][t], hs[k][-1], cs[k][-1], rks)
            hs[k].append(h)
            cs[k].append(c)
            acts[k].append(a)
    return ([tf.stack(v) for v in hs], [tf.stack(v) for v in cs],
            [tf.stack(v) for v in acts])


def _backward_unrolled(dhs, dc_last, acts, cs, rk):
    """dhs: per chain (T, b, H) gradients of the outputs; dc_last: per chain (b, H).
    Returns per chain dz (T, b, 4H) and the gradients of h0 and c0 (b, H)."""
    n_steps = dhs[0].shape[0]
    derivative_scale = _gate_columns(rk.shape[0], 0.25, 1.0)
    dh_rec = [tf.zeros_like(d[0]) for d in dhs]
    dc = list(dc_last)
    dzs = [[None] * n_steps for _ in dhs]
    for t in reversed(range(n_steps)):
        for k in range(len(dhs)):
            dz, dc[k] = _backward_step_fn(dhs[k][t] + dh_rec[k], dc[k], acts[k][t],
                                          cs[k][t], cs[k][t + 1], derivative_scale)
            dzs[k][t] = dz
            dh_rec[k] = tf.matmul(dz, rk, transpose_b=True)
    return [tf.stack(v) for v in dzs], dh_rec, dc


# ----------------------------------------------------------------------------- while loop
# For a dynamic (unknown when traced) or long T, or one core: the same chains, their steps run
# in turn inside one tf.while_loop body (a while body runs its kernels one after another).

def _forward_while(xs, h0s, c0s, ks, rks, bs):
    """As _forward_unrolled (per chain lists), with a tf.while_loop over the steps."""
    n_steps = tf.shape(xs[0])[0]
    xws = [tf.reshape(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), ks) + bs,
                      [n_steps, -1, rks.shape[1]]) for x in xs]

    def body(t, h, c, hs, cs, acts):
        steps = [_forward_step(xw[t], h_k, c_k, rks) for xw, h_k, c_k in zip(xws, h, c)]
        h, c, a = ([step[i] for step in steps] for i in range(3))
        return (t + 1, h, c, [arr.write(t + 1, v) for arr, v in zip(hs, h)],
                [arr.write(t + 1, v) for arr, v in zip(cs, c)],
                [arr.write(t, v) for arr, v in zip(acts, a)])

    def array(size, first=None, shape=None):
        arr = tf.TensorArray(DTYPE, size=size, element_shape=shape)
        return arr if first is None else arr.write(0, first)

    hs = [array(n_steps + 1, h0, h0.shape) for h0 in h0s]
    cs = [array(n_steps + 1, c0, c0.shape) for c0 in c0s]
    acts = [array(n_steps, shape=[h0.shape[0], rks.shape[1]]) for h0 in h0s]
    _, _, _, hs, cs, acts = tf.while_loop(lambda t, *_: t < n_steps, body,
                                          [tf.constant(0), list(h0s), list(c0s), hs, cs, acts],
                                          maximum_iterations=n_steps)
    return ([arr.stack() for arr in hs], [arr.stack() for arr in cs],
            [arr.stack() for arr in acts])


def _backward_while(dhs, dc_last, acts, cs, rk):
    """As _backward_unrolled (per chain lists), with a tf.while_loop over the steps."""
    n_steps = tf.shape(dhs[0])[0]
    derivative_scale = _gate_columns(rk.shape[0], 0.25, 1.0)

    def body(t, dh_rec, dc, dzs):
        steps = [_backward_step(dh_k[t] + rec, dc_k, a_k[t], c_k[t], c_k[t + 1], derivative_scale)
                 for dh_k, rec, dc_k, a_k, c_k in zip(dhs, dh_rec, dc, acts, cs)]
        dz, dc = [step[0] for step in steps], [step[1] for step in steps]
        return (t - 1, [tf.matmul(d, rk, transpose_b=True) for d in dz], dc,
                [arr.write(t, d) for arr, d in zip(dzs, dz)])

    dzs = [tf.TensorArray(DTYPE, size=n_steps, element_shape=a.shape[1:]) for a in acts]
    _, dh0, dc0, dzs = tf.while_loop(
        lambda t, *_: t >= 0, body,
        [n_steps - 1, [tf.zeros_like(d[0]) for d in dhs], list(dc_last), dzs],
        maximum_iterations=n_steps)
    return [arr.stack() for arr in dzs], dh0, dc0


# ----------------------------------------------------------------------------- dispatch

def _split(t, rows, axis):
    """t cut into the chains' row ranges along `axis` (the batch axis); [t] if one chain."""
    if rows is None:
        return [t]
    return [t[start:stop] if axis == 0 else t[:, start:stop] for start, stop in rows]


def _lstm_forward(x, h0, c0, ks, rks, bs):
    """Per chain: hs (T+1, b, H), cs (T+1, b, H), a (T, b, 4H) (lists)."""
    rows = _chain_rows(h0.shape[0])
    run = _forward_unrolled if _unrolled(x.shape[0], 1 if rows is None else len(rows)) \
        else _forward_while
    return run(_split(x, rows, 1), _split(h0, rows, 0), _split(c0, rows, 0), ks, rks, bs)


def _lstm_backward(dhs, dc_last, acts, cs, rk):
    """Per chain dz (T, b, 4H) (list); dh0, dc0 (B, H). The chains are those of the
    forward pass (one per entry of `acts`)."""
    sizes = [a.shape[1] for a in acts]
    run = _backward_unrolled if _unrolled(acts[0].shape[0], len(acts)) else _backward_while
    dhs = tf.split(dhs, sizes, axis=1) if len(acts) > 1 else [dhs]
    dc_last = tf.split(dc_last, sizes, axis=0) if len(acts) > 1 else [dc_last]
    dz, dh0, dc0 = run(dhs, dc_last, acts, cs, rk)
    return dz, tf.concat(dh0, 0), tf.concat(dc0, 0)


_lstm_forward_jit = tf.function(_lstm_forward, jit_compile=True, autograph=False)
_lstm_backward_jit = tf.function(_lstm_backward, jit_compile=True, autograph=False)


def _weight_gradients(xs, hs, dzs, kernel):
    """Gradients of x, kernel, rk and bias from the gate (or pre-activation) gradients dz.

    Per chain k: xs[k] (T, b, n_in), hs[k] (T+1, b, H) with h0 first (hs[k][:-1] holds
    h_{t-1} of every step t), dzs[k] (T, b, 4H). [d_kernel; d_rk; d_bias] is ONE matmul
    [x_t, h_{t-1}, 1]^T @ dz over all T*b rows of a chain (summed over chains); d_x (T, B, n_in).
    """
    n_in = kernel.shape[0]
    d_weights, d_x = 0.0, []
    for x, h, dz in zip(xs, hs, dzs):
        dz_flat = tf.reshape(dz, [-1, dz.shape[-1]])
        # one matmul instead of three: XLA would otherwise turn reduce_sum(dz) over the
        # stacked steps into one reduction per step, and a narrow x (n_in = 1) into a slow
        # matrix-vector loop (both measured)
        inputs = tf.concat([tf.reshape(x, [-1, n_in]), tf.reshape(h[:-1], [-1, h.shape[-1]]),
                            tf.ones_like(dz_flat[:, :1])], axis=1)
        d_weights += tf.matmul(inputs, dz_flat, transpose_a=True)
        d_x.append(tf.reshape(tf.matmul(dz_flat, kernel, transpose_b=True), tf.shape(x)))
    d_kernel, d_rk, d_bias = tf.split(d_weights, [n_in, -1, 1], axis=0)
    return tf.concat(d_x, axis=1), d_kernel, d_rk, d_bias[0]


@tf.custom_gradient
def lstm_sequence(x, h0, c0, kernel, rk, bias):
    """Runs the LSTM over all steps of x (T, B, n_in), time-major, from (h0, c0) (B, H).

    Returns (hs (T, B, H), c_T (B, H)); h_T is hs[-1]. The gradient is hand-written BPTT.
    """
    scale = _gate_columns(rk.shape[0], 0.5, 1.0)  # folded into the weights, not activations
    forward = _lstm_forward_jit if JIT_LOOPS else _lstm_forward
    # stop_gradient: autodiff must not trace through the loop (the gradient is `grad` below)
    hs, cs, acts = forward(*[tf.stop_gradient(a) for a in
                             (x, h0, c0, kernel * scale, rk * scale, bias * scale)])
    outputs = tf.concat([h[1:] for h in hs], axis=1)
    c_last = tf.concat([c[-1] for c in cs], axis=0)

    def grad(dhs, dc_last):
        if dhs is None:
            dhs = tf.zeros_like(outputs)
        if dc_last is None:
            dc_last = tf.zeros_like(c0)
        backward = _lstm_backward_jit if JIT_LOOPS else _lstm_backward
        dzs, dh0, dc0 = backward(tf.stop_gradient(dhs), tf.stop_gradient(dc_last),
                                 [tf.stop_gradient(a) for a in acts],
                                 [tf.stop_gradient(c) for c in cs], tf.stop_gradient(rk))
        xs = tf.split(x, [a.shape[1] for a in acts], axis=1) if len(acts) > 1 else [x]
        d_x, d_kernel, d_rk, d_bias = _weight_gradients(xs, hs, dzs, kernel)
        return d_x, dh0, dc0, d_kernel, d_rk, d_bias

    return (outputs, c_last), grad


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
        d_x, d_kernel, d_rk, d_bias = _weight_gradients([x], [hs], [da], kernel)
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
    """The total gradient dL/dh_t at every step, from the same forward and backward passes
    that lstm_sequence trains with: dh_t = dhs_t + dz_{t+1} @ rk^T.

    x: (T, B, n_in) time-major; dhs: (T, B, H) the direct gradient of the loss w.r.t. each
    output h_t (not through the recurrence). Returns (T, B, H).
    """
    scale = _gate_columns(rk.shape[0], 0.5, 1.0)
    forward = _lstm_forward_jit if JIT_LOOPS else _lstm_forward
    backward = _lstm_backward_jit if JIT_LOOPS else _lstm_backward
    _, cs, acts = forward(x, h0, c0, kernel * scale, rk * scale, bias * scale)
    dzs, _, _ = backward(dhs, tf.zeros_like(c0), acts, cs, rk)
    return dhs + tf.concat([_recurrence_term(dz[1:], rk) for dz in dzs], axis=1)


def relu_rnn_hidden_gradients(x, h0, kernel, rk, bias, dhs):
    """dL/dh_t at every step from relu_rnn_sequence's own loops: dh_t = dhs_t + dh^_{t+1} @ rk^T
    (shapes as lstm_hidden_gradients)."""
    forward = _relu_forward_jit if JIT_LOOPS else _relu_forward_loop
    backward = _relu_backward_jit if JIT_LOOPS else _relu_backward_loop
    hs = forward(x, h0, kernel, rk, bias)
    da, _ = backward(dhs, hs, rk)
    return dhs + _recurrence_term(da[1:], rk)
