"""rnnlab.tf_rnn.activations against TensorFlow's own tanh and sigmoid: the same bits
eagerly, in a graph and XLA-compiled, the same HLO instructions, the same gradients; and the
cells' compiled steps hold none of TensorFlow's slow-to-lower activation ops."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rnnlab.tf_rnn import activations
from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.cells import MyGRUCell, MyLSTMCell

# (rnnlab's, TensorFlow's, TensorFlow's name of the op)
PAIRS = [(activations.tanh, tf.tanh, "Tanh"), (activations.sigmoid, tf.sigmoid, "Sigmoid")]
IDS = [name for *_, name in PAIRS]


def _inputs() -> tf.Tensor:
    """Values from tiny to saturating, both signs, zeros and infinities among them."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.0, s, 25_000) for s in (1e-3, 1.0, 4.0, 40.0)]
                       + [np.array([0.0, -0.0, np.inf, -np.inf])])
    return tf.constant(x.astype(np.float32))


def test_the_composition_op_is_there():
    """Without it the functions fall back to TensorFlow's ops: right, but slow to compile."""
    assert activations._AVAILABLE


@pytest.mark.parametrize("ours, theirs, name", PAIRS, ids=IDS)
@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_same_bits_as_tensorflow(ours, theirs, name, mode):
    x = _inputs()
    if mode == "eager":
        a, b = ours(x), theirs(x)
    else:
        jit = mode == "xla"
        a = tf.function(ours, jit_compile=jit, autograph=False)(x)
        b = tf.function(theirs, jit_compile=jit, autograph=False)(x)
    assert a.numpy().tobytes() == b.numpy().tobytes()


def _compiled_hlo(fn, x, stage: str) -> str:
    """The HLO of fn compiled with XLA (before or after XLA's passes), its metadata (source
    lines, TensorFlow op types) and the module's name (a per-process counter) left out."""
    hlo = tf.function(fn, jit_compile=True, autograph=False).experimental_get_compiler_ir(x)(
        stage=stage)
    return re.sub(r"a_inference_\w+", "MODULE", re.sub(r", metadata=\{[^}]*\}", "", hlo))


@pytest.mark.parametrize("ours, theirs, name", PAIRS, ids=IDS)
@pytest.mark.parametrize("stage", ["hlo", "optimized_hlo"])
def test_same_hlo_as_tensorflow(ours, theirs, name, stage):
    """The same HLO, instruction names included, before and after XLA's passes: the same
    compiled program."""
    def chain(f):
        return lambda v: f(f(v) * 2.0 + 1.0)

    x = tf.ones((3, 4))
    mine = _compiled_hlo(chain(ours), x, stage)
    assert mine == _compiled_hlo(chain(theirs), x, stage)
    if stage == "hlo":  # named as TensorFlow's own ops name them
        assert f"%{name}.1 = " in mine and f"%{name}_1.1 = " in mine, mine


@pytest.mark.parametrize("ours, theirs, name", PAIRS, ids=IDS)
def test_same_gradients_as_tensorflow(ours, theirs, name):
    x = _inputs()

    def gradient(f):
        @tf.function(autograph=False)
        def run(v):
            with tf.GradientTape() as tape:
                tape.watch(v)
                y = f(v)
            return tape.gradient(y, v, output_gradients=tf.cos(v))
        return run(x).numpy()

    assert gradient(ours).tobytes() == gradient(theirs).tobytes()


SLOW_TO_LOWER = {"Tanh", "Sigmoid"}  # tf2xla's MlirXlaOpKernel


@pytest.mark.parametrize("cell", [MyLSTMCell(2, 3), MyGRUCell(2, 3)], ids=["lstm", "gru"])
def test_the_cells_steps_hold_no_slow_to_lower_op(cell):
    """What makes building an unrolled step fast: no Tanh or Sigmoid op in any function of the
    cell's graph, forward or backward. (The ReLU RNN runs one chain in a while loop, whose body
    holds its one Relu op: it keeps tf.nn.relu.)"""
    x = tf.ones((2, 5, 2))

    @tf.function(autograph=False)
    def loss_and_grads(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(cell(x)[0])
        return tape.gradient(loss, list(cell.weights.values()))

    graph = loss_and_grads.get_concrete_function(x).graph.as_graph_def()
    op_types = {n.op for n in graph.node} | {n.op for f in graph.library.function
                                             for n in f.node_def}
    assert activations.COMPOSITION in op_types
    assert not op_types & SLOW_TO_LOWER, op_types & SLOW_TO_LOWER
