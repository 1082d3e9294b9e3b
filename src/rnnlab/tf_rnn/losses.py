"""The task losses (the sheet's 2c and 2e, the adding problem), and how each is reported.

A `TaskLoss` pairs the loss that training minimises with the per-step mean that histories and
metrics report, so the training loop needs no knowledge of either task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rnnlab.tf_rnn._tf import DTYPE, tf


def sine_mse(pred, target):
    """Mean squared error over batch and time steps (question 2c).

    pred: (batch, time) or (batch, time, 1); target: (batch, time). Column t of the target
    is the value the model should output at step t (the next sample; no shifting here).
    """
    pred = tf.convert_to_tensor(pred, DTYPE)
    target = tf.convert_to_tensor(target, DTYPE)
    if pred.shape.rank == target.shape.rank + 1 and pred.shape[-1] == 1:
        pred = pred[..., 0]
    if not pred.shape.is_compatible_with(target.shape):
        raise ValueError(f"sine_mse: prediction shape {pred.shape} does not match target "
                         f"shape {target.shape}.")
    return tf.reduce_mean(tf.square(pred - target))


def _per_sequence_ce(logits, labels):
    """(batch,) cross-entropy of each sequence, averaged over its time steps."""
    logits = tf.convert_to_tensor(logits, DTYPE)
    labels = tf.cast(labels, tf.int32)
    if logits.shape.rank != 3 or labels.shape.rank != 2:
        raise ValueError(f"memory loss: expected logits (batch, time, classes) and labels "
                         f"(batch, time), got {logits.shape} and {labels.shape}.")
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(ce, axis=1)


def memory_loss_summed(logits, labels):
    """Cross-entropy of the memory task SUMMED over the batch elements, as the sheet asks (2e):
    each sequence's cross-entropy averaged over its steps, then summed over the batch."""
    return tf.reduce_sum(_per_sequence_ce(logits, labels))


def memory_loss_per_step(logits, labels):
    """The per-step mean cross-entropy (= memory_loss_summed / batch size), comparable with the
    memoryless baseline L ln(8) / (2L+B+1)."""
    return tf.reduce_mean(_per_sequence_ce(logits, labels))


def adding_mse(pred, target):
    """Mean squared error of the last step's output (the adding problem).

    pred: (batch, time, 1); target: (batch,) the sum of the two marked values."""
    pred = tf.convert_to_tensor(pred, DTYPE)
    target = tf.convert_to_tensor(target, DTYPE)
    if pred.shape.rank != 3 or target.shape.rank != 1:
        raise ValueError(f"adding_mse: expected predictions (batch, time, 1) and targets "
                         f"(batch,), got {pred.shape} and {target.shape}.")
    return tf.reduce_mean(tf.square(pred[:, -1, 0] - target))


@dataclass(frozen=True)
class TaskLoss:
    """fn(pred, target) -> the scalar training minimises; reported per step as fn / batch size
    if sums_over_batch, else as fn itself."""

    fn: Callable
    sums_over_batch: bool


SINE_LOSS = TaskLoss(sine_mse, sums_over_batch=False)
MEMORY_LOSS = TaskLoss(memory_loss_summed, sums_over_batch=True)
ADDING_LOSS = TaskLoss(adding_mse, sums_over_batch=False)
