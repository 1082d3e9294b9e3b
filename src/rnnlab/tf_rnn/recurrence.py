"""The generic driver: any cell's recurrence over whole sequences, with hand-written BPTT.

`sequence(recurrence, x, state0, weights, layout)` runs a cell's recurrence over all steps of a
time-major input and is a `tf.custom_gradient` function: its backward pass is the cell's own
BPTT step driven backwards in time, not TensorFlow differentiating a loop. A cell supplies only
its equations, as a `Recurrence` (forward step, backward step and their caches, cs231n style;
rnnlab.tf_rnn.lstm, .relu, .gru); everything here arranges them for a CPU under XLA (the
chains and the unrolled loop measured in benchmarks/RESULTS.md):

  * the input projection x_t @ kernel (+ bias) of all steps is one matmul before the loop;
  * the forward pass keeps every step's state and the step's cache; BPTT recomputes the few
    element-wise factors it needs from them;
  * the weight gradients are one matmul per projection over all stacked time steps after the
    loop: one [x_t, h_{t-1}, 1]^T @ dz when the input and recurrent projections share one
    pre-activation gradient dz (LSTM, ReLU), one per projection when they don't (a Keras
    GRU: separate input and recurrent biases, the reset gate scales only the recurrent part);
  * the batch is cut into `Layout.n_chains` independent recurrences ("chains"): rows of a
    batch never interact, and XLA runs independent kernels side by side, so on two cores the
    chains share them where one recurrence alone (a chain of small dependent kernels) uses
    one. Chains only overlap outside a while loop, so with a static number of steps
    (<= `Layout.unroll_max_steps`) the time loop is unrolled in Python; otherwise one
    tf.while_loop runs the same step functions. Unrolling costs compilation time (XLA's
    persistent cache, rnnlab.tf_rnn._tf, pays it once per shape).

Shapes: T steps, B rows (b for one chain's rows), H units, k*H columns of a cell's fused
projection (k gate blocks). A state is a tuple of (B, H) tensors whose first entry is h, the
output (LSTM: (h, c); GRU and ReLU: (h,)). Weights are passed by name, in Keras's layout:
`kernel (n_in, k*H)`, `recurrent_kernel (H, k*H)`, `bias` ((k*H,), or (2, k*H) for a GRU).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from rnnlab.errors import check_positive_int, check_seed
from rnnlab.tf_rnn._tf import DTYPE, tf

WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")
# XLA may fuse a purely element-wise recurrence (the LSTM's dc, the GRU's z * dh carry) across
# the unrolled steps and recompute each step's value from the last step on: O(T^2) work, and as
# slow to compile. A kernel it does not fuse between the steps prevents that: a matmul, or, in
# this XLA, a concatenation along the minor dimension at least this many columns wide (the
# cells' [dc, dc, dc, dh] and [dh, dh, dh]); narrower ones did not always (the LSTM at H = 16,
# the GRU at H = 32), so below it the cells add a matmul with the identity
# (tests/tf_rnn/test_cells.py checks both sides: test_xla_fuses_no_recurrence_...).
UNFUSED_CONCAT_MIN_COLUMNS = 128


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the driver lays a sequence out on the CPU; a cell holds one and passes it on every
    call, so a compiled function never keeps a stale module global.

    n_chains: independent batch chunks, run side by side (unrolled), or in turn in a while loop
        (where nothing overlaps and compiling is much quicker).
    min_chain_rows: batches under n_chains * min_chain_rows rows are not split.
    unroll_max_steps: unroll the time loop (split batches only) up to this many steps.
    jit_compile: compile the loops with XLA (also outside a training step, e.g. evaluation):
        XLA fuses each step's element-wise work, where a CPU spends its time at these sizes.
        Off only to debug.
    """

    n_chains: int = 2
    min_chain_rows: int = 8
    unroll_max_steps: int = 128
    jit_compile: bool = True

    def __post_init__(self):
        for name in ("n_chains", "min_chain_rows"):
            check_positive_int(name, getattr(self, name))
        check_seed(self.unroll_max_steps, "unroll_max_steps")  # an integer >= 0 (0: never)
        if not isinstance(self.jit_compile, bool):
            raise ValueError(f"Received an invalid value for argument `jit_compile`, expected "
                             f"a bool, got {self.jit_compile!r}.")

    def chain_rows(self, batch_size):
        """Row ranges ((start, stop), ...) of the chains, or None: one chain (no split).
        Needs a static batch size; small batches are not split (nothing to gain)."""
        if (batch_size is None or self.n_chains < 2
                or batch_size < self.n_chains * self.min_chain_rows):
            return None
        bounds = [batch_size * k // self.n_chains for k in range(self.n_chains + 1)]
        return tuple(zip(bounds[:-1], bounds[1:], strict=False))  # consecutive bounds pairwise

    def unrolled(self, n_steps, n_chains: int) -> bool:
        """Unroll in Python? Only for a static T and a split batch: the unrolled loop pays off
        through the chains running side by side; otherwise there is nothing to overlap, and
        the while loop compiles many times quicker (benchmarks/RESULTS.md: the layout
        variants). Not the machine's core count: XLA orders a sum differently in the two
        loops, so that would make the last bits depend on the machine."""
        return n_steps is not None and n_steps <= self.unroll_max_steps and n_chains > 1


@dataclasses.dataclass(frozen=True)
class Recurrence:
    """One cell's equations, as the driver calls them (w: the weights by name; fw: the forward
    pass's weights, `prepare_weights(w)`; tuples per state part or cache entry):

    prepare_weights(w) -> fw                          once per call, outside the loops
    project_inputs(x (T, b, n_in), fw) -> xw (T, b, .)  before the loop, all steps at once
    forward_step(xw_t, state_tm1, fw) -> (state_t, cache_t)       cache_t: n_cached tensors
    backward_constants(rk) -> consts                  once, before the backward loop
    backward_step(dh_t, carry, cache_t, state_tm1, state_t, consts) -> (dzs, carry_tm1)
        dh_t: the gradient reaching h_t through the output and the next step's recurrent
        matmul; carry: what the cell carries back itself (LSTM: dc; GRU: the direct z * dh);
        dzs: (dz,) the shared pre-activation gradient (b, k*H), or (dz_in, dz_rec) for the
        input and recurrent projections when they differ (shares_pre_activation False).
    initial_carry(d_final_extras, dh_last) -> carry   from the gradients of the final state's
        entries after h
    state0_gradients(dh_rec, carry) -> gradients of state0's entries, from the recurrent
        matmul's dh and the carry left after step 1
    direct_path(cache) -> (T, b, H) or None: when h_{t-1} also reaches h_t outside the
        recurrent matmul, element-wise (a GRU's z * h_{t-1}), the factor d h_t / d h_{t-1} of
        that path at every step, from the caches (hidden_gradients adds it)
    """

    name: str
    n_cached: int
    shares_pre_activation: bool
    prepare_weights: Callable
    project_inputs: Callable
    forward_step: Callable
    backward_constants: Callable
    backward_step: Callable
    initial_carry: Callable
    state0_gradients: Callable
    direct_path: Callable | None = None


def carry_barrier_constants(n_hidden: int, concat_columns: int) -> tuple:
    """The backward constants `through_barrier` needs: (), when the cell's backward step
    concatenates concat_columns >= UNFUSED_CONCAT_MIN_COLUMNS columns (that stops the fusion
    across steps already), else ((H, H) identity,)."""
    if concat_columns >= UNFUSED_CONCAT_MIN_COLUMNS:
        return ()
    return (tf.eye(n_hidden, dtype=DTYPE),)


def through_barrier(value, barrier: Sequence):
    """value (b, H), or value @ identity when `barrier` (carry_barrier_constants') holds one:
    the same values where they are finite (the product with the identity is exact), but
    computed by a matrix-matrix product, which XLA does not fuse with the element-wise kernels
    around it (UNFUSED_CONCAT_MIN_COLUMNS)."""
    return tf.matmul(value, barrier[0]) if barrier else value


def weights_by_name(weights) -> dict:
    """The three weights of a cell in WEIGHT_NAMES order, as tensors; ValueError otherwise."""
    if set(weights) != set(WEIGHT_NAMES):
        raise ValueError(f"A recurrence takes the weights {WEIGHT_NAMES} by name, got "
                         f"{sorted(weights)}.")
    return {name: tf.convert_to_tensor(weights[name], DTYPE) for name in WEIGHT_NAMES}


def _split(t, rows, axis):
    """t cut into the chains' row ranges along `axis` (the batch axis); [t] if one chain."""
    if rows is None:
        return [t]
    return [t[start:stop] if axis == 0 else t[:, start:stop] for start, stop in rows]


def _stack_steps(tensors):
    return tuple(tf.stack(steps) for steps in tensors)


# ----------------------------------------------------------------------------- unrolled
# Each argument/result below is a list with one entry per chain; the chains' ops are emitted
# interleaved (step t of chain 0, step t of chain 1, ...) so that XLA can run them side by side.
#
# The unrolled loops call each time step, all chains at once, as an (uncompiled) tf.function:
# it is traced once and called T times, where inlined Python would trace T copies; XLA inlines
# the calls when it compiles the loop, so the computation is the same, traced in about half the
# time. One call per step for all chains, not one per chain: a call costs more to trace than
# the ops it holds (benchmarks/RESULTS.md, "Round three, one traced call per time step").

_TRACED_STEPS: dict = {}


def _traced(make_steps: Callable, rec) -> Callable:
    """make_steps(rec) as a tf.function, made once per recurrence."""
    if (make_steps, rec) not in _TRACED_STEPS:
        _TRACED_STEPS[make_steps, rec] = tf.function(make_steps(rec), autograph=False)
    return _TRACED_STEPS[make_steps, rec]


def _forward_steps(rec):
    """One time step of every chain: ((xw_t, state_tm1) per chain, fw) -> (state_t, cache_t)
    per chain."""
    def steps(chains, fw):
        return tuple(rec.forward_step(xw_t, state_tm1, fw) for xw_t, state_tm1 in chains)
    return steps


def _forward_unrolled(rec, xws, state0s, fw):
    """xws: per chain (T, b, .) step inputs; state0s: per chain state tuples (b, H).
    Returns per chain: states (tuple of (T+1, b, H), state0 first), caches (tuple of (T, b, .))."""
    step = _traced(_forward_steps, rec)
    states = [[[part] for part in s0] for s0 in state0s]    # chain -> state entry -> steps
    caches = [[[] for _ in range(rec.n_cached)] for _ in xws]
    xw_steps = [tf.unstack(xw) for xw in xws]  # one op, not T slices (tracing time)
    for t in range(len(xw_steps[0])):
        results = step(tuple((xw_steps[k][t], tuple(part[-1] for part in states[k]))
                             for k in range(len(xws))), fw)
        for k, (state, cache) in enumerate(results):
            for steps, value in zip(states[k] + caches[k], tuple(state) + tuple(cache),
                                    strict=True):
                steps.append(value)
    return [_stack_steps(s) for s in states], [_stack_steps(c) for c in caches]


def _backward_steps(rec):
    """One time step of BPTT for every chain: per chain (dh_t, dh_rec, carry, cache_t,
    state_tm1, state_t), then consts and rk -> per chain (dzs, carry_tm1, dh_rec_tm1)."""
    def steps(chains, consts, rk):
        out = []
        for dh_t, dh_rec, carry, cache, state_tm1, state_t in chains:
            dz, carry = rec.backward_step(dh_t + dh_rec, carry, cache, state_tm1, state_t,
                                          consts)
            out.append((dz, carry, tf.matmul(dz[-1], rk, transpose_b=True)))
        return tuple(out)
    return steps


def _backward_unrolled(rec, dhs, carries, states, caches, rk):
    """dhs: per chain (T, b, H) output gradients; carries: per chain initial carry.
    Returns per chain dzs (tuple of (T, b, k*H)), the recurrent matmul's dh and the carry."""
    step = _traced(_backward_steps, rec)
    consts = rec.backward_constants(rk)
    n_steps = dhs[0].shape[0]
    dh_rec = [tf.zeros_like(d[0]) for d in dhs]
    carries = list(carries)
    dzs = [None] * len(dhs)
    # every per-step tensor split off once (one op each, not a slice per step: tracing time)
    dh_steps = [tf.unstack(d) for d in dhs]
    cache_steps = [[tf.unstack(c) for c in cache] for cache in caches]
    state_steps = [[tf.unstack(s) for s in state] for state in states]
    for t in reversed(range(n_steps)):
        results = step(tuple((dh_steps[k][t], dh_rec[k], carries[k],
                              tuple(c[t] for c in cache_steps[k]),
                              tuple(s[t] for s in state_steps[k]),
                              tuple(s[t + 1] for s in state_steps[k]))
                             for k in range(len(dhs))), consts, rk)
        for k, (dz, carries[k], dh_rec[k]) in enumerate(results):
            dzs[k] = dzs[k] or [[None] * n_steps for _ in dz]
            for steps, value in zip(dzs[k], dz, strict=True):
                steps[t] = value
    return [_stack_steps(d) for d in dzs], dh_rec, carries


# ----------------------------------------------------------------------------- while loop
# For a dynamic (unknown when traced) or long T: the same chains, their steps run
# in turn inside one tf.while_loop body (a while body runs its kernels one after another).

def _arrays(size, n, first=None, shape=None):
    """n TensorArrays of `size` elements (each with `first[i]` at index 0 if given)."""
    arrays = [tf.TensorArray(DTYPE, size=size, element_shape=shape) for _ in range(n)]
    return tuple(arrays if first is None
                 else [a.write(0, v) for a, v in zip(arrays, first, strict=True)])


def _stacked(arrays, n_steps, element_shapes):
    """Each TensorArray stacked, with the static shape (n_steps, *element_shape) where known."""
    out = []
    for array, shape in zip(arrays, element_shapes, strict=True):
        value = array.stack()
        value.set_shape([n_steps] + list(shape))
        out.append(value)
    return tuple(out)


def _forward_while(rec, xws, state0s, fw):
    """As _forward_unrolled (per chain lists), with a tf.while_loop over the steps."""
    n_steps = tf.shape(xws[0])[0]

    def body(t, states, state_arrays, cache_arrays):
        steps = [rec.forward_step(xw[t], s, fw) for xw, s in zip(xws, states, strict=True)]
        return (t + 1, [tuple(state) for state, _ in steps],
                [tuple(a.write(t + 1, v) for a, v in zip(arrays, state, strict=True))
                 for arrays, (state, _) in zip(state_arrays, steps, strict=True)],
                [tuple(a.write(t, v) for a, v in zip(arrays, cache, strict=True))
                 for arrays, (_, cache) in zip(cache_arrays, steps, strict=True)])

    state_arrays = [_arrays(n_steps + 1, len(s0), s0, s0[0].shape) for s0 in state0s]
    cache_arrays = [_arrays(n_steps, rec.n_cached) for _ in state0s]
    # loop variables as a tuple, like the body's result: eager mode (jit_compile off) compares
    # the two structures strictly
    _, _, state_arrays, cache_arrays = tf.while_loop(
        lambda t, *_: t < n_steps, body,
        (tf.constant(0), [tuple(s0) for s0 in state0s], state_arrays, cache_arrays),
        maximum_iterations=n_steps)
    static_steps = xws[0].shape[0]
    n_states = None if static_steps is None else static_steps + 1
    return ([_stacked(a, n_states, [v.shape for v in s0])
             for a, s0 in zip(state_arrays, state0s, strict=True)],
            [tuple(a.stack() for a in arrays) for arrays in cache_arrays])


def _backward_while(rec, dhs, carries, states, caches, rk):
    """As _backward_unrolled (per chain lists), with a tf.while_loop over the steps."""
    n_steps = tf.shape(dhs[0])[0]
    consts = rec.backward_constants(rk)

    def body(t, dh_rec, carries, dz_arrays):
        steps = [rec.backward_step(dh[t] + rec_k, carry, tuple(c[t] for c in cache),
                                   tuple(s[t] for s in state), tuple(s[t + 1] for s in state),
                                   consts)
                 for dh, rec_k, carry, cache, state
                 in zip(dhs, dh_rec, carries, caches, states, strict=True)]
        return (t - 1, [tf.matmul(dz[-1], rk, transpose_b=True) for dz, _ in steps],
                [tuple(carry) for _, carry in steps],
                [tuple(a.write(t, v) for a, v in zip(arrays, dz, strict=True))
                 for arrays, (dz, _) in zip(dz_arrays, steps, strict=True)])

    n_dz = 1 if rec.shares_pre_activation else 2
    dz_arrays = [_arrays(n_steps, n_dz, shape=[d.shape[1], rk.shape[1]]) for d in dhs]
    _, dh_rec, carries, dz_arrays = tf.while_loop(
        lambda t, *_: t >= 0, body,
        (n_steps - 1, [tf.zeros_like(d[0]) for d in dhs], [tuple(c) for c in carries],
         dz_arrays),
        maximum_iterations=n_steps)
    return [tuple(a.stack() for a in arrays) for arrays in dz_arrays], dh_rec, carries


# ----------------------------------------------------------------------------- dispatch

def _forward(rec, rows, unrolled, x, state0, fw):
    """x (T, B, n_in), state0 (tuple of (B, H)) -> per chain (states, caches) lists."""
    xs = _split(x, rows, 1)
    state0s = list(zip(*[_split(s, rows, 0) for s in state0], strict=True))
    xws = [rec.project_inputs(x_k, fw) for x_k in xs]
    run = _forward_unrolled if unrolled else _forward_while
    return run(rec, xws, state0s, fw)


def _backward(rec, unrolled, dhs, d_final_extras, states, caches, rk):
    """dhs (T, B, H), d_final_extras: gradients of the final state's entries after h.
    Returns per chain dzs (tuples of (T, b, k*H)) and the gradients of state0 (B, H)."""
    sizes = [s[0].shape[1] for s in states]
    dhs = tf.split(dhs, sizes, axis=1) if len(states) > 1 else [dhs]
    extras = [tf.split(d, sizes, axis=0) if len(states) > 1 else [d] for d in d_final_extras]
    carries = [rec.initial_carry(tuple(e[k] for e in extras), dhs[k][0])
               for k in range(len(states))]
    run = _backward_unrolled if unrolled else _backward_while
    dzs, dh_rec, carries = run(rec, dhs, carries, states, caches, rk)
    d_state0 = [rec.state0_gradients(d, c) for d, c in zip(dh_rec, carries, strict=True)]
    return dzs, tuple(tf.concat(parts, 0) for parts in zip(*d_state0, strict=True))


_COMPILED: dict = {}


def _compiled(rec: Recurrence, layout: Layout):
    """(forward, backward) for `rec`, XLA-compiled tf.functions unless layout.jit_compile is
    off; one pair per recurrence, so each traces its own step functions."""
    key = (rec, layout.jit_compile)
    if key not in _COMPILED:
        def forward(rows, unrolled, x, state0, fw):
            return _forward(rec, rows, unrolled, x, state0, fw)

        def backward(unrolled, dhs, d_final_extras, states, caches, rk):
            return _backward(rec, unrolled, dhs, d_final_extras, states, caches, rk)

        _COMPILED[key] = ((tf.function(forward, jit_compile=True, autograph=False),
                           tf.function(backward, jit_compile=True, autograph=False))
                          if layout.jit_compile else (forward, backward))
    return _COMPILED[key]


# ----------------------------------------------------------------------------- weight gradients

def _flat(t):
    """(T, b, n) -> (T*b, n)."""
    return tf.reshape(t, [-1, t.shape[-1]])


def _shared_weight_gradients(xs, hs, dzs, kernel):
    """Gradients of x, kernel, rk and bias (k*H,) from ONE pre-activation gradient dz per
    chain: [d_kernel; d_rk; d_bias] is one matmul [x_t, h_{t-1}, 1]^T @ dz over all T*b rows
    of a chain (summed over chains). xs[k] (T, b, n_in); hs[k] (T+1, b, H) with h0 first, so
    hs[k][:-1] holds h_{t-1} of every step t; dzs[k] (T, b, k*H). d_x (T, B, n_in)."""
    n_in = kernel.shape[0]
    d_weights, d_x = 0.0, []
    for x, h, dz in zip(xs, hs, dzs, strict=True):
        dz_flat = _flat(dz)
        # one matmul instead of three: XLA would otherwise turn reduce_sum(dz) over the
        # stacked steps into one reduction per step, and a narrow x (n_in = 1) into a slow
        # matrix-vector loop (both measured)
        inputs = tf.concat([tf.reshape(x, [-1, n_in]), tf.reshape(h[:-1], [-1, h.shape[-1]]),
                            tf.ones_like(dz_flat[:, :1])], axis=1)
        d_weights += tf.matmul(inputs, dz_flat, transpose_a=True)
        d_x.append(tf.reshape(tf.matmul(dz_flat, kernel, transpose_b=True), tf.shape(x)))
    d_kernel, d_rk, d_bias = tf.split(d_weights, [n_in, -1, 1], axis=0)
    return tf.concat(d_x, axis=1), {"kernel": d_kernel, "recurrent_kernel": d_rk,
                                    "bias": d_bias[0]}


def _separate_weight_gradients(xs, hs, dz_ins, dz_recs, kernel):
    """As _shared_weight_gradients when the input and the recurrent projections have their
    own pre-activation gradients dz_in, dz_rec (T, b, k*H) and their own biases (Keras's GRU):
    [d_kernel; d_bias_in] = [x_t, 1]^T @ dz_in, [d_rk; d_bias_rec] = [h_{t-1}, 1]^T @ dz_rec.
    The bias gradient is (2, k*H): input bias first, as Keras stores it."""
    n_in = kernel.shape[0]
    d_in, d_rec, d_x = 0.0, 0.0, []
    for x, h, dz_in, dz_rec in zip(xs, hs, dz_ins, dz_recs, strict=True):
        dz_in_flat, dz_rec_flat = _flat(dz_in), _flat(dz_rec)
        ones = tf.ones_like(dz_in_flat[:, :1])  # the bias row of the same matmul (see above)
        d_in += tf.matmul(tf.concat([tf.reshape(x, [-1, n_in]), ones], axis=1), dz_in_flat,
                          transpose_a=True)
        d_rec += tf.matmul(tf.concat([_flat(h[:-1]), ones], axis=1), dz_rec_flat,
                           transpose_a=True)
        d_x.append(tf.reshape(tf.matmul(dz_in_flat, kernel, transpose_b=True), tf.shape(x)))
    d_kernel, d_bias_in = tf.split(d_in, [n_in, 1], axis=0)
    d_rk, d_bias_rec = tf.split(d_rec, [-1, 1], axis=0)
    return tf.concat(d_x, axis=1), {"kernel": d_kernel, "recurrent_kernel": d_rk,
                                    "bias": tf.concat([d_bias_in, d_bias_rec], axis=0)}


def _weight_gradients(xs, hs, dzs, kernel):
    """d_x and the weight gradients by name, from per chain dzs ((dz,) or (dz_in, dz_rec))."""
    if len(dzs[0]) == 1:
        return _shared_weight_gradients(xs, hs, [d[0] for d in dzs], kernel)
    return _separate_weight_gradients(xs, hs, [d[0] for d in dzs], [d[1] for d in dzs], kernel)


# ----------------------------------------------------------------------------- entry points

def _plan(layout: Layout, x, state0):
    """The chains' row ranges (None: one chain) and whether to unroll, for these shapes."""
    rows = layout.chain_rows(state0[0].shape[0])
    return rows, layout.unrolled(x.shape[0], 1 if rows is None else len(rows))


def sequence(rec: Recurrence, x, state0: tuple, weights, layout: Layout):
    """Runs `rec` over all steps of x (T, B, n_in), time-major, from state0 (tuple of (B, H)).

    weights: kernel, recurrent_kernel and bias by name. Returns (outputs (T, B, H), the final
    state (tuple of (B, H); its h is outputs[-1])). The gradient is the recurrence's own BPTT.
    """
    weights = weights_by_name(weights)
    x = tf.convert_to_tensor(x, DTYPE)
    state0 = tuple(tf.convert_to_tensor(s, DTYPE) for s in state0)
    rows, unrolled = _plan(layout, x, state0)
    forward, backward = _compiled(rec, layout)
    n_state = len(state0)

    @tf.custom_gradient
    def run(x, *state0_and_weights):
        state0 = state0_and_weights[:n_state]
        w = dict(zip(WEIGHT_NAMES, state0_and_weights[n_state:], strict=True))
        fw = rec.prepare_weights(w)
        # stop_gradient: autodiff must not trace through the loop (the gradient is `grad`)
        states, caches = forward(rows, unrolled, tf.stop_gradient(x),
                                 tuple(tf.stop_gradient(s) for s in state0),
                                 {name: tf.stop_gradient(v) for name, v in fw.items()})
        outputs = tf.concat([s[0][1:] for s in states], axis=1)
        final_extras = tuple(tf.concat([s[i][-1] for s in states], axis=0)
                             for i in range(1, n_state))

        def grad(d_outputs, *d_final_extras):
            d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
            d_final_extras = tuple(tf.zeros_like(s) if d is None else d
                                   for s, d in zip(state0[1:], d_final_extras, strict=True))
            dzs, d_state0 = backward(
                unrolled, tf.stop_gradient(d_outputs),
                tuple(tf.stop_gradient(d) for d in d_final_extras),
                [tuple(tf.stop_gradient(v) for v in s) for s in states],
                [tuple(tf.stop_gradient(v) for v in c) for c in caches],
                tf.stop_gradient(w["recurrent_kernel"]))
            xs = tf.split(x, [s[0].shape[1] for s in states], axis=1) if len(states) > 1 else [x]
            d_x, d_w = _weight_gradients(xs, [s[0] for s in states], dzs, w["kernel"])
            return (d_x, *d_state0, *[d_w[name] for name in WEIGHT_NAMES])

        return (outputs, *final_extras), grad

    outputs, *final_extras = run(x, *state0, *[weights[name] for name in WEIGHT_NAMES])
    return outputs, (outputs[-1], *final_extras)


def _recurrence_term(d_next, rk):
    """d_next (T-1, B, kH) gate-input gradients of steps 2..T -> (T, B, H): what each flows
    back into the previous hidden state (d @ rk^T), zero after the last step."""
    flat = tf.matmul(tf.reshape(d_next, [-1, rk.shape[1]]), rk, transpose_b=True)
    back = tf.reshape(flat, tf.concat([tf.shape(d_next)[:2], [rk.shape[0]]], axis=0))
    return tf.concat([back, tf.zeros_like(back[:1])], axis=0)


def _add_direct_path(dh, factor):
    """dh (T, B, H) the gradients of h_t through the output and the recurrent matmul; factor
    (T, B, H) d h_t / d h_{t-1} of the direct path. The totals g_t = dh_t + factor_{t+1} g_{t+1},
    last step first."""
    factor_next = tf.concat([factor[1:], tf.zeros_like(factor[:1])], axis=0)
    return tf.scan(lambda g_next, step: step[0] + step[1] * g_next, (dh, factor_next),
                   initializer=tf.zeros_like(dh[0]), reverse=True)


def hidden_gradients(rec: Recurrence, x, state0: tuple, weights, dhs, layout: Layout):
    """The total gradient dL/dh_t at every step, from the same forward and backward passes
    that `sequence` trains with: dh_t = dhs_t + dz_{t+1} @ rk^T, plus, for a cell with a direct
    path (a GRU's z * h_{t-1}), that path's share (Recurrence.direct_path).

    x: (T, B, n_in) time-major; dhs: (T, B, H) the direct gradient of the loss w.r.t. each
    output h_t (not through the recurrence). Returns (T, B, H).
    """
    w = weights_by_name(weights)
    rows, unrolled = _plan(layout, x, state0)
    forward, backward = _compiled(rec, layout)
    states, caches = forward(rows, unrolled, x, tuple(state0), rec.prepare_weights(w))
    rk = w["recurrent_kernel"]
    dzs, _ = backward(unrolled, dhs, tuple(tf.zeros_like(s) for s in state0[1:]), states,
                      caches, rk)
    dh = dhs + tf.concat([_recurrence_term(dz[-1][1:], rk) for dz in dzs], axis=1)
    if rec.direct_path is None:
        return dh
    return _add_direct_path(dh, tf.concat([rec.direct_path(c) for c in caches], axis=1))
