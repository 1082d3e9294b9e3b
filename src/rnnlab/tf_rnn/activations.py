"""tanh and sigmoid for the cells' steps: the values and XLA instructions of tf.tanh and
tf.sigmoid, built into a compiled step in a fraction of the time.

Why: TensorFlow lowers its Tanh and Sigmoid ops to XLA through an MLIR pass pipeline set up anew
for every single op (tf2xla's MlirXlaOpKernel). That is paid each time a process builds a
compiled step, also when XLA's persistent cache then supplies the compiled program, and an
unrolled loop holds such ops in every step and chain: 400 Tanh ops in the LSTM's training step
at T = 100. `benchmarks/lowering_cost.py` measures it.

How: in a graph, an activation is TensorFlow's own `_UnaryOpsComposition` op (the op Grappler
makes of chains of unary ops) with that one activation in it. tf2xla lowers that op with its
classic kernel (xla::Tanh, xla::Logistic): the same HLO instructions as the MLIR route, so the
same compiled program and the same bits; its CPU kernel, outside XLA, computes the same values
as TensorFlow's. tests/tf_rnn/test_activations.py checks the values (eager, graph, XLA), the HLO
and the gradients against TensorFlow's ops. Eagerly, and where TensorFlow has no such op, the
functions are TensorFlow's own. (Relu is lowered the slow way too, but the classic kernel
orders max's operands the other way round, and the ReLU RNN's one chain runs in a while loop,
whose body holds its one Relu op: it keeps tf.nn.relu.)
"""

from __future__ import annotations

from rnnlab.tf_rnn._tf import tf

COMPOSITION = "_UnaryOpsComposition"
_FLOATS = (tf.float16, tf.float32, tf.float64)  # the types its kernels take


def _create(graph, name: str, x):
    """A `_UnaryOpsComposition` node of the one op `name` on x in `graph`, recorded on any
    GradientTape watching x (as TensorFlow's generated op wrappers record theirs)."""
    from tensorflow.python.eager import execute  # TensorFlow is imported by now, quietly

    attrs = {"T": tf.compat.v1.AttrValue(type=x.dtype.as_datatype_enum),
             "op_names": tf.compat.v1.AttrValue(
                 list=tf.compat.v1.AttrValue.ListValue(s=[name.encode()]))}
    op = graph.create_op(COMPOSITION, [x], [x.dtype], name=name, attrs=attrs)
    if execute.must_record_gradient():
        execute.record_gradient(COMPOSITION, op.inputs, ("T", x.dtype.as_datatype_enum,
                                                         "op_names", [name.encode()]), op.outputs)
    return op.outputs[0]


def _available() -> bool:
    """Whether this TensorFlow has the op (it is internal: a later version may drop it)."""
    with tf.Graph().as_default() as graph:
        try:
            _create(graph, "Tanh", tf.constant(0.0))
        except (ValueError, KeyError, tf.errors.NotFoundError):
            return False
    return True


_AVAILABLE = _available()


def _composed(name: str, tf_fn, x):
    """tf_fn(x), as a `_UnaryOpsComposition` of the one op `name` when building a graph."""
    x = tf.convert_to_tensor(x)
    if tf.executing_eagerly() or not _AVAILABLE or x.dtype not in _FLOATS:
        return tf_fn(x)
    return _create(tf.compat.v1.get_default_graph(), name, x)


def tanh(x):
    """tf.tanh(x)."""
    return _composed("Tanh", tf.tanh, x)


def sigmoid(x):
    """tf.sigmoid(x)."""
    return _composed("Sigmoid", tf.sigmoid, x)


# The gradient of a one-op composition, as TensorFlow's gradients of Tanh and Sigmoid
# (their own kernels, so the same bits); TensorFlow defines none, since Grappler makes the op
# only after differentiation. The cells' BPTT is their own, but a tape may still reach these.
_GRADIENTS = {
    b"Tanh": lambda op, dy: tf.raw_ops.TanhGrad(y=op.outputs[0], dy=dy),
    b"Sigmoid": lambda op, dy: tf.raw_ops.SigmoidGrad(y=op.outputs[0], dy=dy),
}

if _AVAILABLE:
    @tf.RegisterGradient(COMPOSITION)
    def _composition_gradient(op, dy):
        names = op.get_attr("op_names")
        if len(names) != 1 or names[0] not in _GRADIENTS:
            raise LookupError(f"rnnlab.tf_rnn.activations: no gradient for {COMPOSITION} of "
                              f"{[n.decode() for n in names]}")
        return _GRADIENTS[names[0]](op, dy)
