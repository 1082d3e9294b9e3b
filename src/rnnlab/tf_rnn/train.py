"""One training loop for both TensorFlow tasks: a compiled step (forward, hand-written BPTT,
global-norm clipping, a Keras optimiser) driven over shuffled mini-batches."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from rnnlab.choices import TF_OPTIMIZERS
from rnnlab.errors import check_number, check_positive_int
from rnnlab.tf_rnn._tf import keras, tf
from rnnlab.tf_rnn.losses import TaskLoss
from rnnlab.tf_rnn.model import SequenceModel
from rnnlab.training import LossLog, TrainingMonitor, check_finite_arrays, shuffled_batches

MOMENTUM = 0.9  # optimizer "momentum": SGD with heavy-ball momentum 0.9
N_HISTORY_POINTS = 200  # logged (step, loss) windows per run


def make_optimizer(name: str, learning_rate: float, decay_steps: int = 0,
                   decay_to: float = 1.0) -> keras.optimizers.Optimizer:
    """Keras's Adam or SGD(momentum=0.9); with decay_to < 1 the learning rate follows Keras's
    CosineDecay from learning_rate to learning_rate * decay_to over decay_steps updates."""
    if name not in TF_OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of {TF_OPTIMIZERS}.")
    learning_rate = check_number("learning_rate", learning_rate)
    decay_to = check_number("decay_to", decay_to, maximum=1.0)
    if decay_to < 1.0 and decay_steps > 0:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=decay_steps, alpha=decay_to)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.SGD(learning_rate, momentum=MOMENTUM)


def get_train_step(model: SequenceModel, loss_fn: Callable, optimizer, clip_norm: float = 5.0):
    """The compiled training step: step(x, y) -> loss_fn(model(x), y) for one batch.

    Forward, hand-written BPTT (the cells' custom gradients), clipping by the global norm over
    all weights (clip_norm <= 0 disables it) and one optimizer update, in one XLA-compiled
    tf.function (XLA fuses the step's element-wise work; see benchmarks/RESULTS.md).
    """
    clip_norm = check_number("clip_norm", clip_norm, exclusive=False)
    variables = model.variables_list
    optimizer.build(variables)

    # autograph off: the step has no tensor-dependent Python control flow, and converting its
    # source (and everything it calls: the model, the cells, the losses) took about 2 s of
    # every stage's first step
    @tf.function(jit_compile=True, autograph=False)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(model(x), y)
        grads = tape.gradient(loss, variables)
        if clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return step


def _check_training_data(model, inputs, targets, desc):
    inputs = np.asarray(inputs, dtype=np.float32)
    targets = np.asarray(targets)
    # targets per step (N, T), or one per sequence (N,) for a loss on the last step
    if inputs.ndim != 3 or targets.shape[:2] not in (inputs.shape[:2], inputs.shape[:1]):
        raise ValueError(f"{desc}: expected inputs (N, T, n_in) and targets (N, T) or (N,), "
                         f"got {inputs.shape} and {targets.shape}.")
    if inputs.shape[2] != model.n_in:
        raise ValueError(f"{desc}: the model takes {model.n_in} input features, the data "
                         f"has {inputs.shape[2]}.")
    targets = (targets.astype(np.int32) if np.issubdtype(targets.dtype, np.integer)
               else targets.astype(np.float32))
    return inputs, targets


def train(model: SequenceModel, loss: TaskLoss, inputs, targets, *, epochs: int,
          batch_size: int, learning_rate: float, optimizer: str = "adam",
          clip_norm: float = 5.0, seed: int = 0, desc: str = "tf_model",
          input_noise: float = 0.0, decay_to: float = 1.0,
          on_window: Callable[[int, float], None] | None = None,
          checkpoint_every: int = 0,
          on_checkpoint: Callable[[int], bool] | None = None) -> dict:
    """Train `model` in place with minibatches; the same seed gives bit-identical weights.

    Args:
        model: a SequenceModel.
        loss: SINE_LOSS, MEMORY_LOSS or ADDING_LOSS (rnnlab.tf_rnn.losses).
        inputs: (N, T, n_in) float array; targets: (N, T) array (class ids or values), or
            (N,) for a loss on the last step only (ADDING_LOSS).
        epochs, batch_size: each epoch visits a fresh seeded permutation of the N sequences in
            N // batch_size full batches; the last N % batch_size of each permutation are
            dropped, so every step sees the same batch shape.
        learning_rate, optimizer (rnnlab.choices.TF_OPTIMIZERS), clip_norm (global norm, 0 = off).
        seed: seeds the shuffling and the input noise (the weights were seeded when the
            model was built).
        desc: name shown in progress lines and errors.
        input_noise: standard deviation of Gaussian noise added to the training inputs
            (targets stay clean). For the sine task this teaches the model to correct small
            errors in its input, which keeps free-running generation (fed its own, slightly
            wrong, predictions) on track. 0 = off.
        decay_to: the learning rate falls along a cosine from learning_rate to
            learning_rate * decay_to over the planned steps (1 = constant).
        on_window: optional f(steps_done, mean per-step loss) as each loss window closes.
        checkpoint_every, on_checkpoint: optional f(steps_done) -> stop? every so many steps.

    Returns:
        {"step": [...], "loss": [...], "first_step_seconds": s}: per-step losses averaged over
        consecutive windows of steps, x = steps done (a loss summed over the batch is divided
        by the batch size), and the wall time of the first step (tracing and compilation).

    Raises:
        DivergenceError if the loss or a weight becomes NaN/Inf.
    """
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    noise_std = check_number("input_noise", input_noise, exclusive=False)
    inputs, targets = _check_training_data(model, inputs, targets, desc)
    n = inputs.shape[0]
    batch_size = min(batch_size, n)
    total_steps = epochs * (n // batch_size)
    report_scale = 1.0 / batch_size if loss.sums_over_batch else 1.0
    opt = make_optimizer(optimizer, learning_rate, decay_steps=total_steps, decay_to=decay_to)
    step_fn = get_train_step(model, loss.fn, opt, clip_norm)
    x_all, y_all = tf.constant(inputs), tf.constant(targets)
    noise_seed = tf.constant(seed, tf.int64)

    @tf.function(autograph=False)  # as get_train_step's
    def batch_step(idx, step):
        x = tf.gather(x_all, idx)
        if noise_std > 0:  # stateless: the noise of a step depends only on (seed, step)
            x += noise_std * tf.random.stateless_normal(tf.shape(x),
                                                        seed=tf.stack([noise_seed, step]))
        return step_fn(x, tf.gather(y_all, idx))

    batches = shuffled_batches(np.random.default_rng(seed), n, batch_size)
    log = LossLog(total_steps, N_HISTORY_POINTS, sink=on_window)
    monitor = TrainingMonitor(total_steps, desc, learning_rate)
    started = time.perf_counter()
    try:
        for step in range(total_steps):
            value = report_scale * float(batch_step(next(batches).astype(np.int32),
                                                    tf.constant(step, tf.int64)))
            if step == 0:  # tracing and XLA compilation happen in the first call
                first_step_seconds = time.perf_counter() - started
            monitor.update(step, value)
            log.add(step + 1, value)
            if checkpoint_every and (step + 1) % checkpoint_every == 0 and on_checkpoint(step + 1):
                break
    finally:
        monitor.close()
    log.flush(step + 1)
    check_finite_arrays(model.get_weights().items(), desc, step, learning_rate)
    return {**log.history, "first_step_seconds": first_step_seconds}
