"""The TensorFlow cells (rnnlab.tf_rnn.cells; .recurrence, .lstm, .relu): MyLSTMCell against
keras.layers.LSTM with copied weights and BasicRNNCell against the numpy cell and TF autodiff,
on every path of the driver; inits, state and layout checks; the driver's carry barrier for
MyLSTMCell and MyGRUCell. MyGRUCell against Keras: test_gru.py."""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest

from rnnlab.tf_rnn import recurrence
from rnnlab.tf_rnn._tf import keras, tf
from rnnlab.tf_rnn.cells import BasicRNNCell, MyLSTMCell, MyLSTMState
from rnnlab.tf_rnn.model import make_model
from rnnlab.tf_rnn.recurrence import Layout

from driver_paths import ATOL, PATHS, make_rng, traced_without_shapes


def _keras_lstm_and_cell(n_in, H, seed=0, layout=None):
    """A Keras LSTM with random weights (non-zero bias) and a MyLSTMCell holding copies."""
    layer = keras.layers.LSTM(H, return_sequences=True, return_state=True)
    layer.build((None, None, n_in))
    rng = make_rng(seed)
    for w in layer.weights:
        w.assign(0.5 * rng.standard_normal(w.shape).astype(np.float32))
    cell = MyLSTMCell(n_in, H, seed=seed + 1, layout=layout)
    by_name = {w.path.split("/")[-1]: w for w in layer.weights}
    for name, var in cell.weights.items():
        var.assign(by_name[name].numpy())
    return layer, cell


# The default layout: B = 3 one recurrence in a while loop; B = 20 the batch split into chains
# (unrolled); then every path set explicitly (B = 6).
@pytest.mark.parametrize("B, path", [(3, None), (20, None)] + [(6, path) for path in PATHS])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_keras_outputs_states_and_gradients(with_state, B, path):
    if path is None:
        assert (Layout().chain_rows(B) is None) == (B == 3)
    T, D, H = 6, 4, 5
    layer, cell = _keras_lstm_and_cell(D, H, layout=PATHS.get(path))
    rng = make_rng(1)
    x = tf.constant(rng.standard_normal((B, T, D)).astype(np.float32))
    h0 = tf.constant(rng.standard_normal((B, H)).astype(np.float32))
    c0 = tf.constant(rng.standard_normal((B, H)).astype(np.float32))
    # weights on every output so each step's, the final h's and c's gradients all matter
    w_out = tf.constant(rng.standard_normal((B, T, H)).astype(np.float32))
    w_h, w_c = (tf.constant(rng.standard_normal((B, H)).astype(np.float32)) for _ in range(2))

    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, h0, c0])
        if with_state:
            out_k, h_k, c_k = layer(x, initial_state=[h0, c0])
            out_m, state = cell(x, MyLSTMState(cell=c0, hidden=h0))
        else:
            out_k, h_k, c_k = layer(x)
            out_m, state = cell(x)
        loss_k = tf.reduce_sum(out_k * w_out) + tf.reduce_sum(h_k * w_h) + tf.reduce_sum(c_k * w_c)
        loss_m = (tf.reduce_sum(out_m * w_out) + tf.reduce_sum(state.hidden * w_h)
                  + tf.reduce_sum(state.cell * w_c))

    assert out_m.shape == (B, T, H) and out_m.dtype == tf.float32
    np.testing.assert_allclose(out_m, out_k, atol=ATOL)
    np.testing.assert_allclose(state.hidden, h_k, atol=ATOL)
    np.testing.assert_allclose(state.cell, c_k, atol=ATOL)

    sources_k = [x] + [w for w in layer.weights]
    sources_m = [x] + list(cell.weights.values())
    if with_state:
        sources_k += [h0, c0]
        sources_m += [h0, c0]
    names = ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0"]
    # strict=False: without a state, h0 and c0 are not sources and their names go unused
    for name, g_k, g_m in zip(names, tape.gradient(loss_k, sources_k),
                              tape.gradient(loss_m, sources_m), strict=False):
        scale = max(1.0, float(np.max(np.abs(g_k))))
        np.testing.assert_allclose(g_m, g_k, atol=ATOL * scale, err_msg=name)


def test_lstm_with_unknown_length_in_a_compiled_function_matches_keras():
    """Traced without a static T or B (the while-loop path, as for a generic tf.function)."""
    layer, cell = _keras_lstm_and_cell(3, 4, seed=6)
    x = tf.constant(make_rng(7).standard_normal((20, 9, 3)).astype(np.float32))
    (out_m, grads_m), (out_k, grads_k) = traced_without_shapes(layer, cell, x)
    np.testing.assert_allclose(out_m, out_k, atol=ATOL)
    for g_m, g_k in zip(grads_m, grads_k, strict=True):
        np.testing.assert_allclose(g_m, g_k, atol=ATOL * max(1.0, float(np.max(np.abs(g_k)))))


def test_lstm_two_chains_beyond_the_unrolling_limit_matches_keras():
    """The default layout at T > unroll_max_steps with a split batch: two chains in one while
    loop (the path of the pipeline's long sequences)."""
    layout = Layout()
    B, T = 2 * layout.min_chain_rows, layout.unroll_max_steps + 2
    assert layout.chain_rows(B) is not None and not layout.unrolled(T, 2)
    layer, cell = _keras_lstm_and_cell(2, 3, seed=8, layout=layout)
    x = tf.constant(0.5 * make_rng(9).standard_normal((B, T, 2)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        out_k, h_k, c_k = layer(x)
        out_m, state = cell(x)
        loss_k = tf.reduce_sum(out_k ** 2) + tf.reduce_sum(c_k)
        loss_m = tf.reduce_sum(out_m ** 2) + tf.reduce_sum(state.cell)
    np.testing.assert_allclose(out_m, out_k, atol=ATOL)
    np.testing.assert_allclose(state.cell, c_k, atol=ATOL)
    for g_k, g_m in zip(tape.gradient(loss_k, layer.weights),
                        tape.gradient(loss_m, list(cell.weights.values())), strict=True):
        np.testing.assert_allclose(g_m, g_k, atol=ATOL * max(1.0, float(np.max(np.abs(g_k)))))


def test_lstm_gradient_of_unused_final_cell_state():
    """Only the outputs used: the cell-state gradient coming in is None/zero, still correct."""
    layer, cell = _keras_lstm_and_cell(2, 3, seed=4)
    x = tf.constant(make_rng(5).standard_normal((2, 4, 2)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        loss_k = tf.reduce_sum(layer(x)[0] ** 2)
        loss_m = tf.reduce_sum(cell(x)[0] ** 2)
    for g_k, g_m in zip(tape.gradient(loss_k, layer.weights),
                        tape.gradient(loss_m, list(cell.weights.values())), strict=True):
        np.testing.assert_allclose(g_m, g_k, atol=ATOL)


def test_lstm_layout_and_forget_bias():
    cell = MyLSTMCell(3, 4, seed=0)
    assert [tuple(v.shape) for v in cell.weights.values()] == [(3, 16), (4, 16), (16,)]
    bias = cell.bias.numpy()
    np.testing.assert_array_equal(bias[4:8], 1.0)  # gate blocks i, f, c, o: f starts at 1
    np.testing.assert_array_equal(np.delete(bias, np.s_[4:8]), 0.0)
    assert cell.n_params == 3 * 16 + 4 * 16 + 16 and cell.output_size == 4


@pytest.mark.parametrize("kwargs", [dict(n_in=0, n_hidden=4), dict(n_in=3, n_hidden=-1),
                                    dict(n_in=3, n_hidden=2.5), dict(n_in=3, n_hidden=4, seed=-1)])
def test_lstm_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received an invalid value"):
        MyLSTMCell(**kwargs)


# ----------------------------------------------------------------------------- RNN vs numpy

def test_basic_rnn_matches_numpy_cell():
    from rnnlab.numpy_rnn.cell import BasicRNNCell as NumpyCell

    B, T, D, H = 3, 7, 4, 6
    rng = make_rng(2)
    ref = NumpyCell(D, H, init="permutation", rng=rng, dtype=np.float32)
    ref.W_hh[...] = 0.4 * rng.standard_normal((H, H))
    ref.W_hx[...] = rng.standard_normal((H, D))
    ref.b_h[...] = 0.3 * rng.standard_normal(H)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    expected = np.array(ref.fprop(x))

    cell = BasicRNNCell(D, H, seed=0)
    cell.kernel.assign(ref.W_hx.T)             # x_t @ kernel = (W_hx x_t)^T
    cell.recurrent_kernel.assign(ref.W_hh.T)
    cell.bias.assign(ref.b_h)
    out, h_last = cell(x)
    assert 0 < np.mean(expected > 0) < 1        # the ReLU both passes and blocks
    np.testing.assert_allclose(out, expected, atol=ATOL)
    np.testing.assert_allclose(h_last, expected[:, -1], atol=ATOL)


@pytest.mark.parametrize("path", [None] + list(PATHS))
def test_basic_rnn_gradients_match_autodiff(path):
    """The hand-written BPTT against TF's autodiff of the same recurrence, written naively;
    the default layout (one chain) and every path."""
    B, T, D, H = 6, 5, 3, 4
    cell = BasicRNNCell(D, H, seed=3, layout=PATHS.get(path))
    cell.bias.assign(0.2 * make_rng(3).standard_normal(H).astype(np.float32))
    x = tf.constant(make_rng(4).standard_normal((B, T, D)).astype(np.float32))
    w = tf.constant(make_rng(5).standard_normal((B, T, H)).astype(np.float32))
    variables = list(cell.weights.values())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = cell(x)[0]
        ours = tf.reduce_sum(out * w)
        h, outs = tf.zeros((B, H)), []
        for t in range(T):
            h = tf.nn.relu(x[:, t] @ cell.kernel + h @ cell.recurrent_kernel + cell.bias)
            outs.append(h)
        naive = tf.reduce_sum(tf.stack(outs, axis=1) * w)
    np.testing.assert_allclose(out, tf.stack(outs, axis=1), atol=ATOL)
    for g_ours, g_naive in zip(tape.gradient(ours, [x] + variables),
                               tape.gradient(naive, [x] + variables), strict=True):
        np.testing.assert_allclose(g_ours, g_naive, atol=ATOL)


def test_rnn_inits_are_the_numpy_cells():
    from rnnlab.numpy_rnn.cell import BasicRNNCell as NumpyCell

    identity = BasicRNNCell(3, 5, init="identity")
    np.testing.assert_array_equal(identity.recurrent_kernel.numpy(), np.eye(5))
    w = BasicRNNCell(3, 5, init="orthogonal", seed=1).recurrent_kernel.numpy()
    np.testing.assert_allclose(w @ w.T, np.eye(5), atol=1e-5)
    w = BasicRNNCell(3, 5, init="permutation", seed=1).recurrent_kernel.numpy()
    assert sorted(w.sum(axis=0)) == sorted(w.sum(axis=1)) == [1.0] * 5
    w = BasicRNNCell(3, 400, init="gaussian", seed=1).recurrent_kernel.numpy()
    assert w.std() == pytest.approx(np.sqrt(1 / 400), rel=0.02)  # the sheet's random init
    # The same names draw the same distributions as the numpy cell (one initializer module).
    for init in ("gaussian", "orthogonal", "permutation"):
        ref = NumpyCell(3, 6, init=init, rng=4).W_hh
        ours = BasicRNNCell(3, 6, init=init, seed=4).recurrent_kernel.numpy()
        np.testing.assert_allclose(ours, ref.astype(np.float32))
    for bad in ("zeros", "random"):
        with pytest.raises(ValueError, match="init"):
            BasicRNNCell(3, 5, init=bad)


# ----------------------------------------------------------------------------- shapes and state

@pytest.mark.parametrize("name", ["lstm", "rnn"])
def test_state_is_carried_between_calls(name):
    """Running x in two halves, passing the state on, equals running it at once."""
    cell = make_model(name, 2, 1, lstm_hidden=5, rnn_hidden=5, seed=1).cell
    x = make_rng(6).standard_normal((3, 8, 2)).astype(np.float32)
    whole, final = cell(x)
    first, mid = cell(x[:, :5])
    second, final2 = cell(x[:, 5:], mid)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=ATOL)
    for a, b in zip(tf.nest.flatten(final2), tf.nest.flatten(final), strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL)


def test_lstm_zero_state_and_state_fields():
    cell = MyLSTMCell(2, 3)
    zero = cell.zero_state(4)
    assert isinstance(zero, MyLSTMState) and zero._fields == ("cell", "hidden")
    assert zero.cell.shape == zero.hidden.shape == (4, 3)
    assert not np.any(zero.cell) and not np.any(zero.hidden)
    x = make_rng(7).standard_normal((4, 5, 2)).astype(np.float32)
    out, state = cell(x)
    np.testing.assert_allclose(cell(x, zero)[0], out, atol=0)  # None means the zero state
    np.testing.assert_allclose(state.hidden, out[:, -1], atol=0)
    assert not np.allclose(state.cell, state.hidden)        # c_T is not h_T
    with pytest.raises(ValueError, match="MyLSTMState"):
        cell(x, zero.cell)
    # Keras orders an LSTM's state [h, c]: a bare pair is refused, never read as (c, h)
    for pair in ([zero.hidden, zero.cell], (zero.cell, zero.hidden)):
        with pytest.raises(ValueError, match="MyLSTMState.*ambiguous"):
            cell(x, pair)


@pytest.mark.parametrize("kwargs", [dict(n_chains=0), dict(min_chain_rows=-1),
                                    dict(unroll_max_steps=-1), dict(min_chain_rows=1.5),
                                    dict(jit_compile="yes")])
def test_layout_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="Received an invalid value"):
        Layout(**kwargs)


def test_layout_plans_chains_and_unrolling():
    layout = Layout(n_chains=2, min_chain_rows=8, unroll_max_steps=128)
    assert layout.chain_rows(15) is None and layout.chain_rows(None) is None
    assert layout.chain_rows(21) == ((0, 10), (10, 21))
    assert layout.unrolled(128, 2) and not layout.unrolled(129, 2)
    assert not layout.unrolled(None, 2) and not layout.unrolled(5, 1)
    assert BasicRNNCell(2, 3).layout.n_chains == 1     # the ReLU RNN's committed layout


UNROLLED = Layout(n_chains=2, min_chain_rows=8, unroll_max_steps=128)  # 64 rows, T <= 128
FEW_STEPS = 10  # and twice as many: enough for the fused recurrence to show, quick to compile


def _largest_fused_kernel(cell: str, hidden: int, n_steps: int) -> int:
    """Instructions in the largest fused computation of the XLA-optimised gradient of a cell's
    outputs over n_steps unrolled steps (B = 64: two chains)."""
    assert UNROLLED.unrolled(n_steps, len(UNROLLED.chain_rows(64)))
    model = make_model(cell, 3, 4, lstm_hidden=hidden, gru_hidden=hidden, seed=0,
                       layout=UNROLLED)
    x = tf.ones((64, n_steps, 3))

    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x))
        return tape.gradient(loss, model.variables_list)

    hlo = tf.function(gradients, jit_compile=True, autograph=False).experimental_get_compiler_ir(
        x)(stage="optimized_hlo")
    bodies = re.findall(r"^%fused\S* .*?\{\n(.*?)^\}", hlo, re.MULTILINE | re.DOTALL)
    assert bodies, "no fused computations found in the optimised HLO"
    return max(len(body.splitlines()) for body in bodies)


# (cell, H): kH columns below recurrence.UNFUSED_CONCAT_MIN_COLUMNS (128; the identity matmul
# stops the fusion) and at or just above it (the concatenation does)
BARRIER_CASES = [("lstm", 16), ("lstm", 32), ("gru", 43)]


@pytest.mark.parametrize("cell, hidden", BARRIER_CASES,
                         ids=[f"{c}-{h}" for c, h in BARRIER_CASES])
def test_xla_fuses_no_recurrence_across_unrolled_steps(cell, hidden):
    """recurrence.carry_barrier_constants: with twice the steps, the largest fused kernel is no
    larger. A carry recurrence fused across steps (the LSTM's dc, the GRU's z * dh) grows with
    T and is recomputed for every step: O(T^2) work and compilation (benchmarks/RESULTS.md,
    "The carry barrier")."""
    assert (_largest_fused_kernel(cell, hidden, 2 * FEW_STEPS)
            <= _largest_fused_kernel(cell, hidden, FEW_STEPS))


def test_without_the_barrier_the_fused_kernel_grows_with_the_steps(monkeypatch):
    """The check above can fail: with no matmul below 128 columns (the threshold patched to 0),
    the LSTM at H = 20 (80 columns; no other test traces this size) fuses dc across steps."""
    monkeypatch.setattr(recurrence, "UNFUSED_CONCAT_MIN_COLUMNS", 0)
    assert (_largest_fused_kernel("lstm", 20, 2 * FEW_STEPS)
            > _largest_fused_kernel("lstm", 20, FEW_STEPS))


def test_an_unrolled_loop_calls_one_traced_step_per_time_step_for_all_chains():
    """Tracing time: the unrolled forward and backward loops each call their traced step
    function once per time step, every chain inside the one call (recurrence._forward_steps,
    _backward_steps), not once per chain and step (twice the calls to build)."""
    T, B = 5, 20
    cell = MyLSTMCell(2, 3, layout=Layout(n_chains=2, min_chain_rows=8))
    assert cell.layout.chain_rows(B) is not None and cell.layout.unrolled(T, 2)

    @tf.function(autograph=False)
    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(cell(x)[0])
        return tape.gradient(loss, list(cell.weights.values()))

    graph = loss_and_grads.get_concrete_function(tf.ones((B, T, 2))).graph.as_graph_def()
    calls = collections.Counter(n.attr["f"].func.name for f in graph.library.function
                                for n in f.node_def
                                if n.op in ("PartitionedCall", "StatefulPartitionedCall"))
    assert sorted(calls.values()) == [T, T], calls  # one function forward, one backward
