"""The outputs of one training run: live progress while it trains, then the model, the recall
by position and the metrics; and loading a trained model back.

- While training, `LiveLog` writes step-wise metrics through DVCLive to dvclive/<run>/:
  metrics.json (the latest values; `dvc exp show` reads it while a queued experiment runs) and
  plots/metrics/<name>.tsv (the curves `dvc plots` draws). A killed run leaves a partial
  progress log there, which the next run starts afresh; results are never partial.
- After training and evaluation succeeded, `save_run` writes models/<run>.npz,
  plots/<run>_recall.csv and, last, metrics/<run>.json, each atomically. Metrics hold results
  only, never timings, so the same params and seed give the same files (`dvc repro -f`
  reproduces them bit for bit).
Loading a trained model back is rnnlab.pipeline.trained_models (kept apart, so that a numpy
stage does not depend on the TensorFlow code that rebuilds a TF model, and the reverse).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from rnnlab.pipeline.files import save_arrays, write_csv, write_json

LIVE_DIR = "dvclive"
N_CHECKPOINTS = 10  # test metrics logged this many times per run (and once more at the end)


class LiveLog:
    """Step-wise training metrics of run `name` through DVCLive (no timestamps, no dvc.yaml
    edits, no experiment of its own: the pipeline's stages and dvc.yaml own those)."""

    def __init__(self, name: str):
        from dvclive import Live

        self.live = Live(f"{LIVE_DIR}/{name}", dvcyaml=False, save_dvc_exp=False, report=None)

    def log(self, step: int, **metrics: float) -> None:
        """Record metrics (e.g. train_loss=..., test_accuracy=...) at training step `step`."""
        self.live.step = step
        for name, value in metrics.items():
            self.live.log_metric(name, float(value))
        self.live.make_summary()

    def log_train_loss(self, step: int, loss: float) -> None:
        """A training loop's on_window hook: the mean loss of the window that ended at `step`."""
        self.log(step, train_loss=loss)

    def checkpoint_hook(self, evaluate: Callable[[], dict[str, float]]) -> Callable[[int], bool]:
        """A training loop's on_checkpoint hook: log evaluate()'s test metrics; never stop."""
        def record(step: int) -> bool:
            self.log(step, **evaluate())
            return False
        return record

    def close(self) -> None:
        self.live.end()


def checkpoint_every(total_steps: int) -> int:
    """Steps between test-metric checkpoints, so that a run logs about N_CHECKPOINTS."""
    return max(1, total_steps // N_CHECKPOINTS)


def save_run(name: str, *, weights: dict[str, np.ndarray], meta: dict[str, Any],
             metrics: dict[str, Any], accuracy_by_position: list[float] | None = None) -> None:
    """Write models/<name>.npz (weights plus `meta`: the params and what rebuilds the model),
    plots/<name>_recall.csv (if given) and, last, metrics/<name>.json."""
    save_arrays(f"models/{name}.npz", weights, {"kind": name, **meta})
    if accuracy_by_position is not None:
        write_csv(f"plots/{name}_recall.csv", {
            "position": list(range(1, len(accuracy_by_position) + 1)),
            "accuracy": [float(a) for a in accuracy_by_position]})
    write_json(f"metrics/{name}.json", metrics)
