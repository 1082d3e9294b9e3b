"""How the gradient of the recall loss flows back through time in the numpy RNN (why a plain
RNN forgets): the norm of the total gradient dL/dh_t at every step, computed with the cell's own
BPTT loop (BasicRNNCell.bptt_deltas, the loop bprop trains with).

    dh_t = dy_t + W_hh^T dh^_{t+1}     the total gradient reaching h_t: its direct output
                                       term plus everything coming back through the recurrence
Only the recalled positions carry loss, so before them dh_t is the recurrence term alone, and
its norm shows how much of the recall signal reaches the step that saw a symbol.
"""

from __future__ import annotations

import numpy as np

from rnnlab.numpy_rnn._arrays import time_major
from rnnlab.numpy_rnn._threads import blas_threads
from rnnlab.numpy_rnn.loss import softmax
from rnnlab.numpy_rnn.model import RNNClassifier


def hidden_state_gradients(model: RNNClassifier, x_onehot: np.ndarray, targets: np.ndarray,
                           loss_mask: np.ndarray) -> np.ndarray:
    """dL/dh_t of every sequence at every step, L its cross-entropy summed over the masked steps.

    Args:
        x_onehot: (B, T, V) inputs; targets: (B, T) class ids.
        loss_mask: (T,) bool, the steps whose loss counts (e.g. the recalled positions).
    Returns:
        dh: (B, T, H) the total gradient of each sequence's loss w.r.t. h_1..h_T.
    """
    logits = model.forward(x_onehot)
    dlogits = softmax(np.asarray(logits, dtype=np.float64))
    B, T, V = dlogits.shape
    dlogits[np.arange(B)[:, None], np.arange(T)[None, :], targets] -= 1.0  # per sequence, no /B
    dlogits *= np.asarray(loss_mask, dtype=np.float64)[None, :, None]
    dy = model.out.bprop(dlogits.astype(model.dtype))  # the direct term dy_t, (B, T, H)
    x1, hs = model.cell.cache
    dy_tm = time_major(dy)
    da = model.cell.bptt_deltas(dy_tm, hs)  # dh^_t, the cell's BPTT loop
    model.cell.cache = None
    dh = dy_tm.copy()
    dh[:-1] += da[1:] @ model.cell.W_hh  # + W_hh^T dh^_{t+1}: the recurrence term
    return dh.swapaxes(0, 1)


def gradient_norms(model: RNNClassifier, inputs: np.ndarray, targets: np.ndarray,
                   loss_mask: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """(T,) mean over the sequences of ||dL/dh_t|| (see hidden_state_gradients)."""
    eye = np.eye(model.vocab_size, dtype=model.dtype)
    total = np.zeros(inputs.shape[1])
    with blas_threads(1):
        for start in range(0, len(inputs), batch_size):
            x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
            dh = hidden_state_gradients(model, eye[x], y, loss_mask)
            total += np.linalg.norm(dh.astype(np.float64), axis=-1).sum(axis=0)
    return total / len(inputs)
