"""Training, evaluation and generation for the TensorFlow models (question 2 of the sheet).

One training loop serves both tasks: `train(model, loss_fn, inputs, targets, ...)`.

* Memory task (2e, 2f): inputs are one-hot symbols (N, 2L+B+1, 10), targets class ids
  (N, 2L+B+1); loss `tf_rnn.get_loss_memory`; `evaluate_memory` gives the per-step test
  cross-entropy and the recall accuracy over the last L outputs.
* Sine task (2c, 2d): inputs are curves[:, :-1, None], targets curves[:, 1:] (column t is
  the sample after input t); loss `tf_rnn.get_loss_sin`; `generate_sine` extrapolates
  by feeding back the model's own predictions, `evaluate_sine` scores both modes.
"""

from __future__ import annotations

import os

# Quiet TensorFlow's C++ start-up and optimizer logs; must happen before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import logging  # noqa: E402
import math  # noqa: E402

import numpy as np  # noqa: E402

from rnnlab import tf_rnn  # noqa: E402  (imports tensorflow)
from rnnlab.errors import check_positive_int  # noqa: E402
from rnnlab.progress import (  # noqa: E402
    LossLog, TrainingMonitor, check_finite_arrays, shuffled_batches)

import tensorflow as tf  # noqa: E402

__all__ = [
    "silence_tensorflow", "set_determinism", "train", "memory_arrays", "sine_arrays",
    "generate_sine", "evaluate_sine", "evaluate_memory",
]

def silence_tensorflow() -> None:
    """Keep TensorFlow's log noise (C++ optimizer messages, absl/Python warnings) from users.

    TF_CPP_MIN_LOG_LEVEL=3 is set when this module is imported (it only takes effect if
    TensorFlow was not imported before); this also quiets the Python-side loggers.
    """
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)
    tf.autograph.set_verbosity(0)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl ships with TensorFlow; be safe anyway
        pass


def set_determinism(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TF ops deterministic (same seed -> same bits)."""
    silence_tensorflow()
    tf.keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


# ----------------------------------------------------------------------------- data layout

def memory_arrays(inputs, targets, n_classes: int = 10):
    """Memory-task ids (N, T) from rnnlab.data.memory_task -> (one-hot float32 inputs
    (N, T, n_classes), int32 targets (N, T))."""
    from rnnlab.data import one_hot

    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim != 2 or inputs.shape != targets.shape:
        raise ValueError(f"memory data: expected inputs and targets of the same (N, T) shape, "
                         f"got {inputs.shape} and {targets.shape}.")
    return one_hot(inputs, n_classes), targets.astype(np.int32)


def sine_arrays(curves):
    """Curves (N, L) -> (inputs (N, L-1, 1), targets (N, L-1)): target t = sample t+1."""
    curves = np.asarray(curves, dtype=np.float32)
    if curves.ndim != 2 or curves.shape[1] < 2:
        raise ValueError(f"sine data: expected curves of shape (N, length >= 2), got "
                         f"{curves.shape}.")
    return curves[:, :-1, None], curves[:, 1:]


# ----------------------------------------------------------------------------- training

def train(model: tf_rnn.SequenceModel, loss_fn, inputs, targets, *, epochs: int,
          batch_size: int, learning_rate: float, optimizer: str = "adam",
          clip_norm: float = 5.0, seed: int = 0, desc: str = "tf_model",
          input_noise: float = 0.0, decay_to: float = 1.0, max_points: int = 200,
          on_epoch_end=None) -> dict:
    """Train `model` in place with minibatches; the same seed gives bit-identical weights.

    Args:
        model: a tf_rnn.SequenceModel.
        loss_fn: tf_rnn.get_loss_memory or tf_rnn.get_loss_sin (any f(pred, target) -> scalar).
        inputs: (N, T, n_in) float array; targets: (N, T) array (class ids or values).
        epochs, batch_size: each epoch visits a fresh seeded permutation of the N sequences in
            N // batch_size full batches (the last N % batch_size of each permutation wait for
            the next epoch, so every step sees the same batch shape).
        learning_rate, optimizer ("adam" | "momentum"), clip_norm (global norm, 0 = off).
        seed: seeds the shuffling and the input noise (the weights were seeded when the
            model was built).
        desc: name shown in progress lines and errors.
        input_noise: standard deviation of Gaussian noise added to the training inputs
            (targets stay clean). For the sine task this teaches the model to correct small
            errors in its input, which keeps free-running generation (fed its own, slightly
            wrong, predictions) on track. 0 = off.
        decay_to: the learning rate falls along a cosine from learning_rate to
            learning_rate * decay_to over the planned steps (1 = constant).
        max_points: the history keeps at most about this many points (means over windows).
        on_epoch_end: optional callback(epoch, steps_done) -> bool; True stops training.

    Returns:
        {"step": [...], "loss": [...]}: loss averaged over consecutive windows of steps, x =
        steps done. Losses are per-step means: a loss summed over the batch (get_loss_memory)
        is divided by the batch size, so the values compare with the memoryless baseline.

    Raises:
        DivergenceError if the loss or a weight becomes NaN/Inf.
    """
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if not (isinstance(input_noise, (int, float)) and math.isfinite(input_noise)
            and input_noise >= 0):
        raise ValueError(f"input_noise must be a number >= 0, got {input_noise!r}.")
    inputs = np.asarray(inputs, dtype=np.float32)
    targets = np.asarray(targets)
    if inputs.ndim != 3 or targets.shape[:2] != inputs.shape[:2]:
        raise ValueError(f"{desc}: expected inputs (N, T, n_in) and targets (N, T), got "
                         f"{inputs.shape} and {targets.shape}.")
    if inputs.shape[2] != model.n_in:
        raise ValueError(f"{desc}: the model takes {model.n_in} input features, the data "
                         f"has {inputs.shape[2]}.")
    n = inputs.shape[0]
    batch_size = min(batch_size, n)
    steps_per_epoch = n // batch_size
    total_steps = epochs * steps_per_epoch
    report_scale = 1.0 / batch_size if getattr(loss_fn, "sums_over_batch", False) else 1.0

    opt = tf_rnn.make_optimizer(optimizer, learning_rate, decay_steps=total_steps,
                                decay_to=decay_to)
    step_fn = tf_rnn.get_train_step(model, loss_fn, opt, clip_norm)
    x_all = tf.constant(inputs)
    y_all = tf.constant(targets.astype(np.int32) if np.issubdtype(targets.dtype, np.integer)
                        else targets.astype(np.float32))

    noise_std = float(input_noise)
    noise_seed = tf.constant(seed, tf.int64)

    @tf.function
    def batch_step(idx, step):
        x = tf.gather(x_all, idx)
        if noise_std > 0:  # stateless: the noise of a step depends only on (seed, step)
            x += noise_std * tf.random.stateless_normal(tf.shape(x),
                                                        seed=tf.stack([noise_seed, step]))
        return step_fn(x, tf.gather(y_all, idx))

    batches = shuffled_batches(np.random.default_rng(seed), n, batch_size)
    log = LossLog(total_steps, max_points)
    monitor = TrainingMonitor(total_steps, desc, learning_rate)
    try:
        for step in range(total_steps):
            loss = report_scale * float(batch_step(next(batches).astype(np.int32),
                                                   tf.constant(step, tf.int64)))
            monitor.update(step, loss)
            log.add(step + 1, loss)
            if (step + 1) % steps_per_epoch == 0 and on_epoch_end is not None \
                    and on_epoch_end((step + 1) // steps_per_epoch - 1, step + 1):
                break
    finally:
        monitor.close()
    log.flush(step + 1)
    check_finite_arrays(model.get_weights().items(), desc, step, learning_rate)
    return log.history


# ----------------------------------------------------------------------------- sine task

def generate_sine(model: tf_rnn.SequenceModel, given, n_generated: int):
    """Extrapolate curves: read the `given` true samples, then feed back the model's OWN
    predictions (never the truth) for n_generated - 1 more steps.

    given: (N, n_given). Returns (N, n_generated): column j estimates sample n_given + j
    (the output after reading sample t is the model's estimate of sample t + 1).
    """
    check_positive_int("n_generated", n_generated)
    given = np.asarray(given, dtype=np.float32)
    if given.ndim != 2 or given.shape[1] < 1:
        raise ValueError(f"generate_sine: expected given samples (N, n_given >= 1), got "
                         f"{given.shape}.")
    if model.n_in != 1 or model.n_out != 1:
        raise ValueError("generate_sine needs a model with one input and one output.")
    y, state = model.run(given[:, :, None])
    prediction = y[:, -1, :]                     # (N, 1): estimate of sample n_given
    generated = [prediction]
    for _ in range(n_generated - 1):
        y, state = model.run(prediction[:, None, :], state)
        prediction = y[:, -1, :]
        generated.append(prediction)
    return tf.concat(generated, axis=1).numpy()


def _predict(model, x, batch_size=2000):
    """model(x) in chunks (bounded memory), as numpy."""
    return np.concatenate([model(x[i:i + batch_size]).numpy()
                           for i in range(0, len(x), batch_size)], axis=0)


def evaluate_sine(model: tf_rnn.SequenceModel, curves, n_given: int, n_generated: int) -> dict:
    """Score a sine model on test curves (N, length >= n_given + n_generated).

    Returns:
        test_mse_one_step: teacher-forced next-sample MSE over the whole curve (input t is
            the true sample t, target is the true sample t + 1).
        test_mse_free_running: MSE between the generated part and the true samples
            n_given .. n_given + n_generated - 1 (model fed its own predictions).
        generated: (N, n_generated), aligned with curves[:, n_given:n_given + n_generated].
    """
    curves = np.asarray(curves, dtype=np.float32)
    check_positive_int("n_given", n_given)
    check_positive_int("n_generated", n_generated)
    if curves.ndim != 2 or curves.shape[1] < n_given + n_generated:
        raise ValueError(f"evaluate_sine: curves must be (N, length >= n_given + n_generated "
                         f"= {n_given + n_generated}), got {curves.shape}.")
    inputs, targets = sine_arrays(curves)
    one_step = float(np.mean((_predict(model, inputs)[..., 0] - targets) ** 2))
    generated = generate_sine(model, curves[:, :n_given], n_generated)
    truth = curves[:, n_given:n_given + n_generated]
    return {"test_mse_one_step": one_step,
            "test_mse_free_running": float(np.mean((generated - truth) ** 2)),
            "generated": generated}


# ----------------------------------------------------------------------------- memory task

def evaluate_memory(model: tf_rnn.SequenceModel, inputs, targets, to_remember_len: int) -> dict:
    """Score a memory model on test sequences.

    inputs, targets: (N, T) class ids as from rnnlab.data.memory_task (or one-hot inputs
    (N, T, n_classes)). Returns test_loss (per-step mean cross-entropy over all T steps,
    comparable with the memoryless baseline L ln(8) / T), test_accuracy (argmax recall
    accuracy over the last L outputs only) and accuracy_by_position (L floats).
    """
    L = check_positive_int("to_remember_len", to_remember_len)
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim == 2:
        inputs, targets = memory_arrays(inputs, targets, model.n_in)
    if targets.ndim != 2 or inputs.shape[:2] != targets.shape:
        raise ValueError(f"evaluate_memory: inputs {inputs.shape} and targets "
                         f"{targets.shape} do not match.")
    if L > targets.shape[1]:
        raise ValueError(f"evaluate_memory: to_remember_len={L} exceeds the sequence "
                         f"length {targets.shape[1]}.")
    logits = _predict(model, inputs.astype(np.float32))
    loss = float(tf_rnn.memory_loss_per_step(logits, targets))
    correct = np.argmax(logits[:, -L:, :], axis=-1) == targets[:, -L:]
    return {"test_loss": loss,
            "test_accuracy": float(correct.mean()),
            "accuracy_by_position": [float(a) for a in correct.mean(axis=0)]}
