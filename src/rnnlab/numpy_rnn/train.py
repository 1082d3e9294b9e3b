"""Training and evaluation of the numpy RNNClassifier on id sequences (the copy task, 1e)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from rnnlab.errors import check_positive_int
from rnnlab.numpy_rnn._memory import keep_freed_memory
from rnnlab.numpy_rnn._threads import blas_threads
from rnnlab.numpy_rnn.clipping import clip_gradients
from rnnlab.numpy_rnn.loss import cross_entropy_loss
from rnnlab.numpy_rnn.model import RNNClassifier
from rnnlab.numpy_rnn.optimizers import make_optimizer
from rnnlab.training import LossLog, TrainingMonitor, check_finite_arrays, shuffled_batches

N_HISTORY_POINTS = 200  # logged (step, loss) windows per run
CHECK_FINITE_EVERY = 250  # steps between NaN/Inf checks of the weights


def check_id_arrays(inputs, targets) -> tuple[np.ndarray, np.ndarray]:
    """inputs, targets as (N, T) arrays of the same shape; ValueError otherwise."""
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim != 2 or inputs.shape != targets.shape:
        raise ValueError("inputs and targets must be (N, T) id arrays of the same shape. "
                         f"Received: {inputs.shape} and {targets.shape}")
    return inputs, targets


def train_step(model: RNNClassifier, optimizer, x_onehot: np.ndarray, targets: np.ndarray,
               clip_norm) -> float:
    """One optimisation step: forward, loss, BPTT, global-norm clipping, update.

    Args:
        x_onehot: (B, T, V) inputs; targets: (B, T) class ids.
        optimizer: an rnnlab.numpy_rnn.optimizers instance, updating model.flat_params()
            (an Adam that stepped through model.params() before would start new moments).
    Returns:
        The loss before the update (summed over time, averaged over the batch).
    """
    loss, dlogits = cross_entropy_loss(model.forward(x_onehot), targets)
    model.backward(dlogits)
    clip_gradients(model.grads(), clip_norm)
    optimizer.step(model.flat_params())
    return loss


def train_classifier(model: RNNClassifier, inputs, targets, *, optimizer: str,
                     learning_rate: float, batch_size: int, steps: int, clip_norm,
                     seed: int, desc: str = "numpy_rnn",
                     on_window: Callable[[int, float], None] | None = None,
                     checkpoint_every: int = 0,
                     on_checkpoint: Callable[[int], bool] | None = None) -> dict:
    """Train `model` with mini-batches drawn from (inputs, targets).

    Sets glibc's malloc, for the whole process and for good, to keep freed memory for the next
    step (rnnlab.numpy_rnn._memory.keep_freed_memory; not where the environment tunes malloc
    itself, and the results are the same bits either way).

    Args:
        inputs, targets: (N, T) integer class id arrays (e.g. the copy task's).
        optimizer: a name of rnnlab.choices.NUMPY_OPTIMIZERS ("adam" or "sgd").
        learning_rate, batch_size, steps: as usual; one step = one mini-batch.
        clip_norm: global-norm clipping threshold; None or <= 0 disables it.
        seed: seeds the mini-batch order (shuffled epochs), so a run is reproducible.
        desc: name used in progress and error messages.
        on_window: optional f(steps_done, mean loss per time step) as each loss window closes.
        checkpoint_every, on_checkpoint: optional f(steps_done) -> stop? every so many steps
            (periodic test metrics; returning True stops training early).
    Returns:
        {"step": [...], "loss": [...]}: about N_HISTORY_POINTS points, each the mean loss per
        time step over the steps since the previous point, at x = number of steps done.
    Raises:
        DivergenceError: the loss or a weight became NaN/Inf.
    """
    inputs, targets = check_id_arrays(inputs, targets)
    n, seq_len = inputs.shape
    batch_size = check_positive_int("batch_size", batch_size)
    steps = check_positive_int("steps", steps)
    if batch_size > n:
        raise ValueError(f"`batch_size` ({batch_size}) is larger than the training set ({n})")
    opt = make_optimizer(optimizer, learning_rate)
    batches = shuffled_batches(np.random.default_rng(seed), n, batch_size)
    eye = np.eye(model.vocab_size, dtype=model.dtype)  # row i is the one-hot vector of id i
    named_params = [(name, p) for p, _, name in model.params()]
    log = LossLog(steps, N_HISTORY_POINTS, sink=on_window)
    monitor = TrainingMonitor(steps, desc, learning_rate)
    keep_freed_memory()  # each step's arrays reuse the last step's memory (see _memory)
    # Overflow warnings would only precede the DivergenceError that reports them clearly.
    with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
        try:
            for step in range(steps):
                idx = next(batches)
                loss = train_step(model, opt, eye[inputs[idx]], targets[idx], clip_norm)
                monitor.update(step, loss)
                done = step + 1
                log.add(done, loss / seq_len)
                if done % CHECK_FINITE_EVERY == 0:
                    check_finite_arrays(named_params, desc, step, learning_rate)
                if checkpoint_every and done % checkpoint_every == 0 and on_checkpoint(done):
                    break
            check_finite_arrays(named_params, desc, step, learning_rate)
        finally:
            monitor.close()
    log.flush(done)
    return log.history


def evaluate_recall(model: RNNClassifier, inputs, targets, recall_start: int,
                    batch_size: int = 1000) -> dict:
    """Loss and recall accuracy of `model` on (N, T) id arrays.

    Args:
        recall_start: first position that counts for the accuracy (L + 1 for the copy task:
            the positions after the delimiter).
    Returns:
        test_loss: mean cross-entropy per time step (all positions).
        test_accuracy: argmax accuracy over positions recall_start..T-1 only.
        accuracy_by_position: one accuracy per recalled position.
    """
    inputs, targets = check_id_arrays(inputs, targets)
    n, seq_len = inputs.shape
    if not 0 <= recall_start < seq_len:
        raise ValueError(f"`recall_start` must be in [0, {seq_len}). "
                         f"Received: recall_start={recall_start!r}")
    eye = np.eye(model.vocab_size, dtype=model.dtype)
    total_loss = 0.0
    correct = np.zeros(seq_len - recall_start, dtype=np.int64)
    with blas_threads(1):
        for start in range(0, n, batch_size):
            x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
            logits = model.forward(eye[x])
            loss, _ = cross_entropy_loss(logits, y)
            total_loss += loss * len(x)  # undo the batch mean: a sum over sequences and steps
            hits = logits[:, recall_start:].argmax(axis=-1) == y[:, recall_start:]
            correct += hits.sum(axis=0)
    by_position = correct / n
    return {"test_loss": total_loss / (n * seq_len),
            "test_accuracy": float(by_position.mean()),
            "accuracy_by_position": [float(a) for a in by_position]}
