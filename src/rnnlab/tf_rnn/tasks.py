"""The two TensorFlow tasks of the sheet: their array layouts, sine extrapolation by feeding
back the model's own predictions (2c/2d), and the test scores of both (2d, 2f).

* Sine: inputs are curves[:, :-1, None], targets curves[:, 1:] (column t is the sample after
  input t); `generate_sine` continues given samples on the model's own predictions.
* Memory: inputs are one-hot symbols (N, 2L+B+1, 10), targets class ids (N, 2L+B+1);
  accuracy counts the last L outputs only.
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import check_positive_int
from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.losses import memory_loss_per_step
from rnnlab.tf_rnn.model import SequenceModel

PREDICT_BATCH = 2000  # sequences per forward call when scoring (bounded memory)


def memory_arrays(inputs, targets, n_classes: int = 10):
    """Memory-task ids (N, T) -> (one-hot float32 inputs (N, T, n_classes), int32 targets
    (N, T))."""
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim != 2 or inputs.shape != targets.shape:
        raise ValueError(f"memory data: expected inputs and targets of the same (N, T) shape, "
                         f"got {inputs.shape} and {targets.shape}.")
    return np.eye(n_classes, dtype=np.float32)[inputs], targets.astype(np.int32)


def sine_arrays(curves):
    """Curves (N, L) -> (inputs (N, L-1, 1), targets (N, L-1)): target t = sample t+1."""
    curves = np.asarray(curves, dtype=np.float32)
    if curves.ndim != 2 or curves.shape[1] < 2:
        raise ValueError(f"sine data: expected curves of shape (N, length >= 2), got "
                         f"{curves.shape}.")
    return curves[:, :-1, None], curves[:, 1:]


def predict(model: SequenceModel, x) -> np.ndarray:
    """model(x) for x (N, T, n_in), in chunks of PREDICT_BATCH sequences, as numpy (N, T, n_out)."""
    return np.concatenate([model(x[i:i + PREDICT_BATCH]).numpy()
                           for i in range(0, len(x), PREDICT_BATCH)], axis=0)


def generate_sine(model: SequenceModel, given, n_generated: int) -> np.ndarray:
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


def sine_one_step_mse(model: SequenceModel, curves) -> float:
    """Teacher-forced next-sample MSE over whole curves (N, length): input t is the true
    sample t, the target the true sample t + 1."""
    inputs, targets = sine_arrays(curves)
    return float(np.mean((predict(model, inputs)[..., 0] - targets) ** 2))


def evaluate_sine(model: SequenceModel, curves, n_given: int, n_generated: int) -> dict:
    """Score a sine model on test curves (N, length >= n_given + n_generated).

    Returns:
        test_mse_one_step: teacher-forced next-sample MSE over the whole curve.
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
    generated = generate_sine(model, curves[:, :n_given], n_generated)
    truth = curves[:, n_given:n_given + n_generated]
    return {"test_mse_one_step": sine_one_step_mse(model, curves),
            "test_mse_free_running": float(np.mean((generated - truth) ** 2)),
            "generated": generated}


def evaluate_memory(model: SequenceModel, inputs, targets, to_remember_len: int) -> dict:
    """Score a memory model on test sequences.

    inputs, targets: (N, T) class ids (or one-hot inputs (N, T, n_classes)). Returns test_loss
    (per-step mean cross-entropy over all T steps, comparable with the memoryless baseline
    L ln(8) / T), test_accuracy (argmax recall accuracy over the last L outputs only) and
    accuracy_by_position (L floats).
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
    logits = predict(model, inputs.astype(np.float32))
    loss = float(memory_loss_per_step(logits, targets))
    correct = np.argmax(logits[:, -L:, :], axis=-1) == targets[:, -L:]
    return {"test_loss": loss,
            "test_accuracy": float(correct.mean()),
            "accuracy_by_position": [float(a) for a in correct.mean(axis=0)]}


ADDING_BASELINE_MSE = 1 / 6  # always predicting 1: Var(U1 + U2) for U1, U2 ~ U[0, 1]
SOLVED_ERROR = 0.04  # Hochreiter & Schmidhuber 1997: a sequence is solved when |error| < 0.04
# Their training ends when the mean error is below 0.01 (and the last 2,000 sequences are
# solved); train_adding records after how many training sequences the test MSE first goes
# below CRITERION_MSE, checking every CRITERION_SEQUENCES sequences.
CRITERION_MSE = 0.01
CRITERION_SEQUENCES = 5000


def evaluate_adding(model: SequenceModel, inputs, targets) -> dict:
    """Score an adding-problem model: inputs (N, T, 2), targets (N,). test_mse of the last
    step's output, solved_fraction (|error| < SOLVED_ERROR), and the memoryless baseline
    (always 1: MSE 1/6) beside them, measured on these targets and in theory."""
    inputs, targets = np.asarray(inputs, np.float32), np.asarray(targets, np.float32)
    if inputs.ndim != 3 or targets.shape != inputs.shape[:1]:
        raise ValueError(f"evaluate_adding: expected inputs (N, T, 2) and targets (N,), got "
                         f"{inputs.shape} and {targets.shape}.")
    error = predict(model, inputs)[:, -1, 0] - targets
    return {"test_mse": float(np.mean(error ** 2)),
            "solved_fraction": float(np.mean(np.abs(error) < SOLVED_ERROR)),
            "baseline_mse": ADDING_BASELINE_MSE,
            "baseline_mse_measured": float(np.mean((1.0 - targets) ** 2))}
