"""The exploding-gradient study of the sheet's questions 1c/1d: mean |gradient| against the
length of the sequence backpropagated, without and with global-norm clipping."""

from __future__ import annotations

import numpy as np

from rnnlab.numpy_rnn.clipping import clip_gradients
from rnnlab.numpy_rnn.loss import cross_entropy_loss
from rnnlab.numpy_rnn.model import RNNClassifier
from rnnlab.numpy_rnn.optimizers import SGD


def mean_abs(grads) -> float:
    """Mean |g| over all entries of all arrays."""
    return float(sum(np.abs(g).sum() for g in grads) / sum(g.size for g in grads))


def exploding_gradients(seed: int = 0, hidden: int = 10, vocab_size: int = 10,
                        pretrain_steps: int = 10, max_seq_len: int = 1000,
                        clip_norm: float = 5.0, learning_rate: float = 1e-3,
                        init: str = "identity", pretrain_len: int = 100) -> dict:
    """Mean absolute gradient against sequence length, without and with clipping.

    A float64 RNNClassifier(vocab_size, hidden) is first trained for `pretrain_steps` SGD
    steps (no clipping) to predict the next symbol of random sequences of `pretrain_len`
    symbols. Then, for one random sequence of max_seq_len symbols and every prefix length
    n = 1..max_seq_len-1, the gradient of the (summed over time) loss is taken and the mean
    absolute value over all parameter entries recorded, before and after global-norm clipping.
    The defaults are the sheet framework's (H = 10, identity W_hh, lr 0.001, threshold 5).

    Returns:
        {"seq_len": (n,) int array, "grad_no_clip": (n,) float array, "grad_clip": (n,) ...}
    """
    rng = np.random.default_rng(seed)
    model = RNNClassifier(vocab_size, hidden, init=init, rng=rng, dtype=np.float64)
    eye = np.eye(vocab_size)
    opt = SGD(learning_rate)
    for _ in range(pretrain_steps):
        seq = rng.integers(0, vocab_size, size=(1, pretrain_len + 1))
        _, dlogits = cross_entropy_loss(model.forward(eye[seq[:, :-1]]), seq[:, 1:])
        model.backward(dlogits)
        opt.step(model.flat_params())
    seq = rng.integers(0, vocab_size, size=(1, max_seq_len))
    x, y = eye[seq[:, :-1]], seq[:, 1:]
    lengths = np.arange(1, max_seq_len)
    no_clip = np.empty(len(lengths))
    clipped = np.empty(len(lengths))
    grads = model.grads()
    for i, n in enumerate(lengths):
        _, dlogits = cross_entropy_loss(model.forward(x[:, :n]), y[:, :n])
        model.backward(dlogits)
        no_clip[i] = mean_abs(grads)
        clip_gradients(grads, clip_norm)
        clipped[i] = mean_abs(grads)
    return {"seq_len": lengths, "grad_no_clip": no_clip, "grad_clip": clipped}
