"""Optimisers for the numpy RNN, updating parameters in place: plain SGD (the sheet's) and Adam.

Both take the (param, grad, name) triples that the layers' get_params() yield. Chosen by name
through OPTIMIZERS (its keys are rnnlab.choices.NUMPY_OPTIMIZERS).
"""

from __future__ import annotations

import math

import numpy as np

from rnnlab.choices import NUMPY_OPTIMIZERS
from rnnlab.errors import check_number


class SGD:
    """Plain stochastic gradient descent: p <- p - lr * g (the sheet's update)."""

    def __init__(self, lr: float):
        self.lr = check_number("learning_rate", lr)

    def step(self, params) -> None:
        """params: iterable of (param, grad, name); each param is updated in place."""
        for p, g, _ in params:
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015) with the bias correction folded into the step size.

    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
    p <- p - lr * sqrt(1-b2^t) / (1-b1^t) * m / (sqrt(v) + eps)
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.lr = check_number("learning_rate", lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={beta!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = check_number("eps", eps)
        self.t = 0
        self.moments = {}  # per parameter name: (m, v)

    def step(self, params) -> None:
        """params: iterable of (param, grad, name); each param is updated in place."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        lr_t = self.lr * math.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
        for p, g, name in params:
            state = self.moments.get(name)
            if state is None:
                state = self.moments[name] = (np.zeros_like(p), np.zeros_like(p))
            m, v = state
            # m += (1-b1)(g-m) is b1 m + (1-b1) g with one temporary fewer.
            m += (1.0 - b1) * (g - m)
            v += (1.0 - b2) * (g * g - v)
            p -= lr_t * m / (np.sqrt(v) + self.eps)


OPTIMIZERS = {"adam": Adam, "sgd": SGD}  # keys: rnnlab.choices.NUMPY_OPTIMIZERS (a test checks)


def make_optimizer(name: str, learning_rate: float):
    """OPTIMIZERS[name] with its default hyper-parameters and this learning rate."""
    if name not in OPTIMIZERS:
        raise ValueError(f"`optimizer` must be one of {NUMPY_OPTIMIZERS}. "
                         f"Received: optimizer={name!r}")
    return OPTIMIZERS[name](learning_rate)
