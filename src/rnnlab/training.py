"""What the numpy and TensorFlow training loops share: the mini-batch order, the loss history,
progress reporting and divergence checks.

On a terminal a tqdm bar shows the running loss; under DVC (no terminal) a handful of plain
summary lines are printed instead, so logs stay short.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Callable

import numpy as np

from rnnlab.errors import DivergenceError

N_SUMMARY_LINES = 5


def available_cores() -> int:
    """The cores training may use: RNNLAB_CORES if set (a sweep gives each of its parallel
    workers its share of the machine), else the CPUs this process may run on."""
    share = os.environ.get("RNNLAB_CORES", "")
    if share.isdigit() and int(share) > 0:
        return int(share)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def shuffled_batches(rng: np.random.Generator, n: int, batch_size: int):
    """Endless index arrays of mini-batches: epochs in a fresh random order from `rng`, each
    epoch's last n % batch_size indices dropped so every step sees the same batch shape. An
    epoch is n // batch_size batches."""
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


class LossLog:
    """The loss history of a run: about `max_points` (step, loss) points, each the mean loss
    over a window of consecutive steps, at x = steps done (a run of a million steps still
    gives a small plot).

    Args:
        total_steps: steps the run will take.
        max_points: at most about this many windows.
        sink: optional f(step, mean_loss), called as each window closes (e.g. a live logger).
    """

    def __init__(self, total_steps: int, max_points: int,
                 sink: Callable[[int, float], None] | None = None):
        self.every = max(1, math.ceil(total_steps / max_points))
        self.history = {"step": [], "loss": []}
        self.sink = sink
        self._total, self._count = 0.0, 0

    def add(self, done: int, loss: float) -> None:
        """Record the loss of the step that made `done` steps."""
        self._total += loss
        self._count += 1
        if done % self.every == 0:
            self.flush(done)

    def flush(self, done: int) -> None:
        """Close the current window at x = `done` steps (no-op if it is empty); call it once
        more after training, for the last, shorter window."""
        if self._count:
            mean = self._total / self._count
            self.history["step"].append(done)
            self.history["loss"].append(mean)
            self._total, self._count = 0.0, 0
            if self.sink is not None:
                self.sink(done, mean)


class TrainingMonitor:
    """Tracks the loss of a training run, reports progress and stops it on divergence.

    Args:
        total_steps: number of optimisation steps the run will take.
        desc: short name shown in the bar and the summary lines (e.g. "numpy_rnn").
        learning_rate: quoted in the divergence message.
        smoothing: weight of the newest loss in the running (exponential) average.
    """

    def __init__(self, total_steps: int, desc: str, learning_rate: float, smoothing: float = 0.05):
        self.total_steps = int(total_steps)
        self.desc = desc
        self.learning_rate = learning_rate
        self.smoothing = smoothing
        self.running_loss = None
        self._bar = None
        self._next_summary = 0
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total_steps, desc=desc, unit="step", leave=False)

    def update(self, step: int, loss: float) -> None:
        """Record the loss of step `step` (0-based)."""
        loss = float(loss)
        if not math.isfinite(loss):
            raise DivergenceError(
                f"{self.desc}: training diverged at step {step + 1} (loss is {loss}) with "
                f"learning rate {self.learning_rate:g}. Try a smaller learning rate or "
                f"gradient clipping (clip_norm > 0); no metrics were written for this run."
            )
        if self.running_loss is None:
            self.running_loss = loss
        else:
            self.running_loss += self.smoothing * (loss - self.running_loss)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{self.running_loss:.4f}", refresh=False)
        elif step + 1 >= self._next_summary or step + 1 == self.total_steps:
            print(f"{self.desc}: step {step + 1}/{self.total_steps}  loss {self.running_loss:.4f}",
                  file=sys.stderr, flush=True)
            self._next_summary += max(1, self.total_steps // N_SUMMARY_LINES)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def check_finite_arrays(arrays, desc: str, step: int, learning_rate: float) -> None:
    """Raise DivergenceError if any (name, array) holds a NaN or Inf."""
    for name, array in arrays:
        if not np.all(np.isfinite(array)):
            raise DivergenceError(
                f"{desc}: weight '{name}' became NaN/Inf at step {step + 1} with learning rate "
                f"{learning_rate:g}. Try a smaller learning rate or gradient clipping "
                f"(clip_norm > 0); no metrics were written for this run."
            )
