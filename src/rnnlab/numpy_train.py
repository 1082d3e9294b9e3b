"""Training, evaluation and gradient studies for the numpy RNN (sheet question 1).

- Hand-written optimisers (SGD with momentum, Adam) that update parameters in place, chosen
  through the table OPTIMIZERS.
- RNNClassifier = BasicRNNCell(V, H) + LinearLayer(H, V), softmax cross-entropy per step.
- train_classifier / evaluate_recall for the copy task, gradient_check (every entry, float64)
  and exploding_gradients (sheet questions 1c/1d).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from rnnlab.numpy_rnn import (
    BasicRNNCell,
    LinearLayer,
    _check_rng,
    blas_threads,
    clip_gradients,
    cross_entropy_loss,
)
from rnnlab.errors import check_positive_int
from rnnlab.progress import LossLog, TrainingMonitor, check_finite_arrays, shuffled_batches

N_HISTORY_POINTS = 200  # logged (step, loss) points per run
CHECK_FINITE_EVERY = 250  # steps between NaN/Inf checks of the weights

# Tuning notes for the numpy_rnn defaults in params.yaml, on the copy task (L = 13, H = 50, float32, one BLAS thread) on the 2-core
# machine shared with a TensorFlow job. Accuracies are over the 13 recalled positions:
# - "random" (random permutation W_hh): 0.96 after 2500 steps (~5 s), 0.996 after 8000 (~21 s).
#   Adam lr 2e-3 is as fast but less steady, 5e-3 fails (0.39 after 28 s); clip 1 beats 5.
# - "identity" (IRNN): 0.70 after 40000 steps (~100 s), still creeping up; it learns every
#   position partly (from a bag of symbols) rather than one after another. Learning rates
#   3e-4..2e-3 with clip 1 all end near 0.64-0.70 after 60-120 s, 1e-2 at 0.38. It does not
#   reach 0.90 within 120 s.
# - "orthogonal" (Haar, as Keras): at best 0.53 (6 positions perfect, the rest at chance),
#   still stuck after 300 s; tried lr 1e-3..1e-2, clip 1/5/none, batch 32-256, gain 0.8-1.4.
# Both kept inits therefore share (params.yaml: numpy_rnn) Adam lr 1e-3, batch 64, global-norm clip 1.0.


# ----------------------------------------------------------------------------- optimisers

def _check_lr(learning_rate) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) \
            or not learning_rate > 0 or not math.isfinite(learning_rate):
        raise ValueError("`learning_rate` must be a positive number. "
                         f"Received: learning_rate={learning_rate!r}")
    return float(learning_rate)


class SGD:
    """Stochastic gradient descent, optionally with (heavy-ball) momentum.

    v <- momentum * v - lr * g;  p <- p + v   (plain p <- p - lr * g when momentum = 0)
    """

    def __init__(self, lr: float, momentum: float = 0.0):
        self.lr = _check_lr(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum!r}")
        self.momentum = float(momentum)
        self.velocity = {}  # per parameter name, created on first use

    def step(self, params) -> None:
        """params: iterable of (param, grad, name); each param is updated in place."""
        for p, g, name in params:
            if self.momentum == 0.0:
                p -= self.lr * g
                continue
            v = self.velocity.get(name)
            if v is None:
                v = self.velocity[name] = np.zeros_like(p)
            v *= self.momentum
            v -= self.lr * g
            p += v


class Adam:
    """Adam (Kingma & Ba 2015) with the bias correction folded into the step size.

    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
    p <- p - lr * sqrt(1-b2^t) / (1-b1^t) * m / (sqrt(v) + eps)
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.lr = _check_lr(lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={beta!r}")
        if not eps > 0:
            raise ValueError(f"`eps` must be positive. Received: eps={eps!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
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


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, learning_rate: float):
    """Look `name` up in OPTIMIZERS and build it with its default hyper-parameters."""
    try:
        cls = OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"`optimizer` must be one of {sorted(OPTIMIZERS)}. "
                         f"Received: optimizer={name!r}") from None
    return cls(learning_rate)


# ----------------------------------------------------------------------------- the model

class RNNClassifier:
    """[BasicRNNCell(V, H), LinearLayer(H, V)]: per time step logits over V classes.

    Args:
        vocab_size: V, size of the one-hot input and of the output.
        hidden: H.
        init: "random", "identity" or "orthogonal" W_hh (see BasicRNNCell).
        rng: numpy Generator (or int seed) for the initial weights.
        dtype: float32 for training speed, float64 for gradient checks.
    """

    def __init__(self, vocab_size: int, hidden: int, init: str = "random", rng=None,
                 dtype=np.float32):
        rng = _check_rng(rng)  # one generator for both layers: a seed gives one model
        self.cell = BasicRNNCell(vocab_size, hidden, init=init, rng=rng, dtype=dtype)
        self.out = LinearLayer(hidden, vocab_size, rng=rng, dtype=dtype)
        self.vocab_size, self.hidden = self.cell.n_in, self.cell.n_hidden
        self.dtype = self.cell.dtype
        # Parameters and gradients are updated in place, never rebound, so one list serves.
        self._params = [(p, g, f"{prefix}.{name}")
                        for prefix, layer in (("cell", self.cell), ("out", self.out))
                        for p, g, name in layer.get_params()]

    def forward(self, x_onehot: np.ndarray) -> np.ndarray:
        """x_onehot: (B, T, V) -> logits: (B, T, V)."""
        return self.out.fprop(self.cell.fprop(x_onehot))

    def backward(self, dlogits: np.ndarray) -> None:
        """dlogits: (B, T, V); fills the gradients of all parameters (see params())."""
        # The inputs are data, so their gradient would be wasted work.
        self.cell.bprop(self.out.bprop(dlogits), compute_dx=False)

    def params(self) -> list:
        """[(param, grad, name)]: names cell.W_hh, cell.W_hx, cell.b_h, out.W, out.b."""
        return list(self._params)

    @property
    def n_params(self) -> int:
        return sum(p.size for p, _, _ in self.params())

    def state_dict(self) -> dict:
        """{name: copy of the parameter}; np.savez(path, **model.state_dict()) saves it."""
        return {name: p.copy() for p, _, name in self.params()}

    def load_state_dict(self, state) -> None:
        """Copy parameters from `state` (a dict or an opened npz) into this model, in place."""
        expected = {name: p for p, _, name in self.params()}
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"state dict does not match the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, p in expected.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(f"state dict entry {name!r} has shape {value.shape}, "
                                 f"the model expects {p.shape}")
            np.copyto(p, value, casting="same_kind")

    @classmethod
    def from_state_dict(cls, state, dtype=np.float32) -> "RNNClassifier":
        """Build a model whose sizes are read off `state`, then load it."""
        if "cell.W_hx" not in state:
            raise ValueError("state dict has no 'cell.W_hx' entry: not an RNNClassifier")
        hidden, vocab_size = np.asarray(state["cell.W_hx"]).shape
        model = cls(vocab_size, hidden, init="identity", rng=0, dtype=dtype)
        model.load_state_dict(state)
        return model


# ----------------------------------------------------------------------------- training

def _check_ids(inputs, targets):
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
        optimizer: an SGD or Adam instance.
    Returns:
        The loss before the update (summed over time, averaged over the batch).
    """
    loss, dlogits = cross_entropy_loss(model.forward(x_onehot), targets)
    model.backward(dlogits)
    clip_gradients([g for _, g, _ in model._params], clip_norm)
    optimizer.step(model._params)
    return loss


def train_classifier(model: RNNClassifier, inputs, targets, *, optimizer: str,
                     learning_rate: float, batch_size: int, steps: int, clip_norm,
                     seed: int, desc: str = "numpy_rnn", callback=None,
                     callback_every: int = 0) -> dict:
    """Train `model` with mini-batches drawn from (inputs, targets).

    Args:
        inputs, targets: (N, T) integer class id arrays (e.g. from rnnlab.data.copy_task).
        optimizer: a key of OPTIMIZERS ("sgd" or "adam").
        learning_rate, batch_size, steps: as usual; one step = one mini-batch.
        clip_norm: global-norm clipping threshold; None or <= 0 disables it.
        seed: seeds the mini-batch order (shuffled epochs), so a run is reproducible.
        desc: name used in progress and error messages.
        callback: optional f(steps_done) -> bool called every `callback_every` steps; returning
            True stops training early (used to measure time to a target accuracy).
    Returns:
        {"step": [...], "loss": [...]}: about N_HISTORY_POINTS points, each the mean loss per
        time step over the steps since the previous point, at x = number of steps done.
    Raises:
        DivergenceError: the loss or a weight became NaN/Inf.
    """
    inputs, targets = _check_ids(inputs, targets)
    n, seq_len = inputs.shape
    batch_size = check_positive_int("batch_size", batch_size)
    steps = check_positive_int("steps", steps)
    if batch_size > n:
        raise ValueError(f"`batch_size` ({batch_size}) is larger than the training set ({n})")
    opt = make_optimizer(optimizer, learning_rate)
    batches = shuffled_batches(np.random.default_rng(seed), n, batch_size)
    eye = np.eye(model.vocab_size, dtype=model.dtype)  # row i is the one-hot vector of id i
    named_params = [(name, p) for p, _, name in model.params()]
    log = LossLog(steps, N_HISTORY_POINTS)
    monitor = TrainingMonitor(steps, desc, learning_rate)
    # Overflow warnings would only precede the DivergenceError that reports them clearly.
    with blas_threads(1), \
            np.errstate(over="ignore", invalid="ignore"):
        try:
            for step in range(steps):
                idx = next(batches)
                loss = train_step(model, opt, eye[inputs[idx]], targets[idx], clip_norm)
                monitor.update(step, loss)
                done = step + 1
                log.add(done, loss / seq_len)
                if done % CHECK_FINITE_EVERY == 0:
                    check_finite_arrays(named_params, desc, step, learning_rate)
                if callback is not None and callback_every and done % callback_every == 0 \
                        and callback(done):
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
    inputs, targets = _check_ids(inputs, targets)
    n, seq_len = inputs.shape
    if not 0 <= recall_start < seq_len:
        raise ValueError(f"`recall_start` must be in [0, {seq_len}). "
                         f"Received: recall_start={recall_start!r}")
    eye = np.eye(model.vocab_size, dtype=model.dtype)
    total_loss = 0.0
    correct = np.zeros(seq_len - recall_start, dtype=np.int64)
    with blas_threads(1):  # see numpy_rnn.blas_threads
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


# ----------------------------------------------------------------------------- gradient studies

def _relative_error(analytic: np.ndarray, numeric: np.ndarray, tiny: float = 1e-3) -> float:
    """max |a - n| / max(|a| + |n|, tiny) over all entries.

    A relative error is meaningless for gradients that are (nearly) zero, where the finite
    difference is pure round-off: below |a| + |n| = tiny it becomes |a - n| / tiny, an
    absolute error scaled so that the same 1e-6 bound applies.
    """
    denom = np.maximum(np.abs(analytic) + np.abs(numeric), tiny)
    return float(np.max(np.abs(analytic - numeric) / denom))


def gradient_check(seed: int = 0, batch_size: int = 3, seq_len: int = 5, vocab_size: int = 4,
                   hidden: int = 6, delta: float = 1e-5, init: str = "random") -> dict:
    """Compare bprop with central finite differences on every entry of every parameter.

    Network: BasicRNNCell + LinearLayer + softmax cross-entropy (float64) on a batch of
    `batch_size` sequences of `seq_len` steps with Gaussian inputs (so every W_hx entry has a
    gradient) and random targets. The draw is repeated until no pre-activation lies within
    1e-3 of the ReLU kink, where a finite difference would step across it.

    Returns:
        {"max_rel_error": float, "rel_error": {"W_hh": ..., "W_hx": ..., "b_h": ..., "W": ...,
        "b": ...}}, relative errors as defined in _relative_error.
    """
    rng = np.random.default_rng(seed)
    for _ in range(100):
        model = RNNClassifier(vocab_size, hidden, init=init, rng=rng, dtype=np.float64)
        # Bias the hidden units a little so that not all of them are switched off.
        model.cell.b_h[:] = 0.1 * rng.standard_normal(hidden)
        model.out.b[:] = 0.1 * rng.standard_normal(vocab_size)
        x = rng.standard_normal((batch_size, seq_len, vocab_size))
        y = rng.integers(0, vocab_size, size=(batch_size, seq_len))
        pre = _pre_activations(model.cell, x)
        if np.min(np.abs(pre)) > 1e-3 and np.any(pre > 0):
            break
    else:  # pragma: no cover - 100 draws all near a kink is practically impossible
        raise RuntimeError("could not draw a gradient-check input away from the ReLU kink")

    def loss_at() -> float:
        return cross_entropy_loss(model.forward(x), y)[0]

    _, dlogits = cross_entropy_loss(model.forward(x), y)
    model.backward(dlogits)
    rel_error = {}
    for p, g, name in model.params():
        analytic = g.copy()
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            saved = p[i]
            p[i] = saved + delta
            plus = loss_at()
            p[i] = saved - delta
            minus = loss_at()
            p[i] = saved
            numeric[i] = (plus - minus) / (2.0 * delta)
        rel_error[name.split(".", 1)[1]] = _relative_error(analytic, numeric)
    return {"max_rel_error": max(rel_error.values()), "rel_error": rel_error}


def _pre_activations(cell: BasicRNNCell, x: np.ndarray) -> np.ndarray:
    """(B, T, H) values inside the ReLU at every step, recomputed from the cell's states."""
    h = cell.fprop(x)
    h_prev = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)  # h_0 = 0
    return h_prev @ cell.W_hh.T + x @ cell.W_hx.T + cell.b_h


def exploding_gradients(seed: int = 0, hidden: int = 10, vocab_size: int = 10,
                        pretrain_steps: int = 10, max_seq_len: int = 1000,
                        clip_norm: float = 5.0, learning_rate: float = 1e-3,
                        init: str = "identity", pretrain_len: int = 100) -> dict:
    """Mean absolute gradient against sequence length, without and with clipping (1c/1d).

    A float64 RNNClassifier(vocab_size, hidden) is first trained for `pretrain_steps` SGD
    steps (no clipping) to predict the next symbol of random sequences of `pretrain_len`
    symbols. Then, for one random sequence of max_seq_len symbols and every prefix length
    n = 1..max_seq_len-1, the gradient of the (summed over time) loss is taken and the mean
    absolute value over all parameter entries recorded, before and after global-norm clipping.
    Every length is used (no subsampling): ~6 s at the defaults on one core. The defaults are
    the sheet framework's (H = 10, identity W_hh, lr 0.001, threshold 5).

    Returns:
        {"seq_len": (n,) int array, "grad_no_clip": (n,) float array, "grad_clip": (n,) ...}
    """
    rng = np.random.default_rng(seed)
    model = RNNClassifier(vocab_size, hidden, init=init, rng=rng, dtype=np.float64)
    eye = np.eye(vocab_size)
    params = model.params()
    grads = [g for _, g, _ in params]
    opt = SGD(learning_rate)
    for _ in range(pretrain_steps):
        seq = rng.integers(0, vocab_size, size=(1, pretrain_len + 1))
        _, dlogits = cross_entropy_loss(model.forward(eye[seq[:, :-1]]), seq[:, 1:])
        model.backward(dlogits)
        opt.step(params)
    seq = rng.integers(0, vocab_size, size=(1, max_seq_len))
    x, y = eye[seq[:, :-1]], seq[:, 1:]
    lengths = np.arange(1, max_seq_len)
    no_clip = np.empty(len(lengths))
    clipped = np.empty(len(lengths))
    for i, n in enumerate(lengths):
        _, dlogits = cross_entropy_loss(model.forward(x[:, :n]), y[:, :n])
        model.backward(dlogits)
        no_clip[i] = _mean_abs(grads)
        clip_gradients(grads, clip_norm)
        clipped[i] = _mean_abs(grads)
    return {"seq_len": lengths, "grad_no_clip": no_clip, "grad_clip": clipped}


def _mean_abs(grads) -> float:
    """Mean |g| over all entries of all arrays."""
    return float(sum(np.abs(g).sum() for g in grads) / sum(g.size for g in grads))
