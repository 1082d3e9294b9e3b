"""The outputs of one run: live progress while it trains, then its results and its headline
metrics; and loading a trained model back.

Two files per run, so that the views a DVC user opens stay readable:
- results/<run>.json: everything the run measured (test metrics, losses, parameter counts,
  ...), a DVC output that `make compare` and the capacity study read;
- metrics/<run>.json: the run's headline numbers only, nested under a short task name
  ({"memory": {"accuracy": ...}}), the only per-experiment metrics dvc.yaml declares: one
  column each in `dvc exp show`, unique without the file's name, short enough that
  `dvc metrics show` fits a terminal.
While training, `LiveLog` writes DVCLive's curves to dvclive/<run>/ (`dvc plots`) and the
progress so far (step, training loss, latest test metric) to metrics/<run>.json, where
`dvc exp show` reads it for a queued experiment that is still running. A run that fails or is
interrupted removes that progress file: no metrics are left for a run that did not finish.
After training and evaluation succeeded, `save_run` writes models/<run>.npz,
plots/<run>_recall.csv, results/<run>.json and, last, metrics/<run>.json, each atomically.
Results hold no timings, so the same params and seed give the same files (`dvc repro -f`
reproduces them bit for bit).
Loading a trained model back is rnnlab.pipeline.trained_models (kept apart, so that a numpy
stage does not depend on the TensorFlow code that rebuilds a TF model, and the reverse).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnnlab.pipeline.files import save_arrays, write_csv, write_json

LIVE_DIR = "dvclive"
N_CHECKPOINTS = 10  # test metrics logged this many times per run (and once more at the end)


# run -> (its name in metric keys, {results key: headline metric key}): the table behind
# every metrics/<run>.json, so `dvc exp show` columns read memory.accuracy, sine.free_mse, ...
HEADLINES = {
    "numpy_rnn_copy": ("copy", {"test_accuracy": "accuracy"}),
    "sine": ("sine", {"test_mse_free_running": "free_mse", "test_mse_one_step": "step_mse"}),
    "memory": ("memory", {"test_accuracy": "accuracy"}),
    "adding": ("adding", {"test_mse": "mse", "solved_fraction": "solved"}),
    "gradcheck": ("gradcheck", {"max_rel_error": "max_rel_error"}),
}


def headline(run: str, results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The headline metrics of `run` picked from its results: {"memory": {"accuracy": x}}."""
    task, keys = HEADLINES[run]
    return {task: {short: results[long] for long, short in keys.items() if long in results}}


def save_results(run: str, results: dict[str, Any]) -> None:
    """results/<run>.json (everything) and then metrics/<run>.json (the headline numbers)."""
    write_json(f"results/{run}.json", results)
    write_json(f"metrics/{run}.json", headline(run, results))


class LiveLog:
    """Step-wise progress of run `name` while it trains: DVCLive's curves (no timestamps, no
    dvc.yaml edits, no experiment of its own: the stages and dvc.yaml own those) and the
    progress in metrics/<name>.json. Use it as a context manager: leaving it with an error or
    Ctrl-C removes the progress file."""

    def __init__(self, name: str):
        from dvclive import Live

        self.name, self.progress = name, {}
        self.live = Live(f"{LIVE_DIR}/{name}", dvcyaml=False, save_dvc_exp=False, report=None)

    def __enter__(self) -> "LiveLog":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.live.end()
        if exc_type is not None:
            Path(f"metrics/{self.name}.json").unlink(missing_ok=True)

    def log(self, step: int, **metrics: float) -> None:
        """Record metrics (e.g. train_loss=..., test_accuracy=...) at training step `step`."""
        self.live.step = step
        for name, value in metrics.items():
            self.live.log_metric(name, float(value))
        self.live.make_summary()
        self.progress.update({"step": step, **{k: float(v) for k, v in metrics.items()}})
        task, keys = HEADLINES[self.name]
        write_json(f"metrics/{self.name}.json",
                   {task: {keys.get(k, k): v for k, v in self.progress.items()}})

    def log_train_loss(self, step: int, loss: float) -> None:
        """A training loop's on_window hook: the mean loss of the window that ended at `step`."""
        self.log(step, train_loss=loss)

    def checkpoint_hook(self, evaluate: Callable[[], dict[str, float]]) -> Callable[[int], bool]:
        """A training loop's on_checkpoint hook: log evaluate()'s test metrics; never stop."""
        def record(step: int) -> bool:
            self.log(step, **evaluate())
            return False
        return record


def checkpoint_every(total_steps: int) -> int:
    """Steps between test-metric checkpoints, so that a run logs about N_CHECKPOINTS."""
    return max(1, total_steps // N_CHECKPOINTS)


def save_run(name: str, *, weights: dict[str, np.ndarray], meta: dict[str, Any],
             results: dict[str, Any], accuracy_by_position: list[float] | None = None) -> None:
    """Write models/<name>.npz (weights plus `meta`: the params and what rebuilds the model),
    plots/<name>_recall.csv (if given), results/<name>.json and, last, metrics/<name>.json."""
    save_arrays(f"models/{name}.npz", weights, {"kind": name, **meta})
    if accuracy_by_position is not None:
        write_csv(f"plots/{name}_recall.csv", {
            "position": list(range(1, len(accuracy_by_position) + 1)),
            "accuracy": [float(a) for a in accuracy_by_position]})
    save_results(name, results)
