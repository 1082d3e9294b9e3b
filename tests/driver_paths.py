"""What the TensorFlow cell tests share: every path of the recurrence driver, set explicitly,
and the tolerance they are held to against Keras or TensorFlow's autodiff."""

from __future__ import annotations

import numpy as np

from rnnlab.tf_rnn.recurrence import Layout

ATOL = 1e-5
# min_chain_rows=2: small batches split into chains.
PATHS = {
    "one chain, while loop": Layout(n_chains=1),
    "two chains, unrolled": Layout(n_chains=2, min_chain_rows=2, unroll_max_steps=128),
    "two chains, while loop": Layout(n_chains=2, min_chain_rows=2, unroll_max_steps=0),
    "no XLA (debugging), eager": Layout(n_chains=1, jit_compile=False),
}


def make_rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def traced_without_shapes(layer, cell, x):
    """Our cell traced with neither T nor B static (the generic tf.function case) against the
    Keras layer on x: (ours (outputs, weight gradients), Keras's (outputs, weight gradients))
    of the loss sum(outputs ** 2)."""
    import tensorflow as tf

    variables = list(cell.weights.values())

    @tf.function(input_signature=[tf.TensorSpec([None, None, x.shape[-1]], tf.float32)])
    def ours(inputs):
        with tf.GradientTape() as tape:
            out = cell(inputs)[0]
            loss = tf.reduce_sum(out ** 2)
        return out, tape.gradient(loss, variables)

    with tf.GradientTape() as tape:
        out_k = layer(x)[0]
        loss_k = tf.reduce_sum(out_k ** 2)
    return ours(x), (out_k, tape.gradient(loss_k, layer.weights))
