"""Writing the outputs of one training run: model, loss curve, recall by position, metrics.

All writes are atomic and happen only after training and evaluation succeeded, so a failed
or diverged run leaves no metrics behind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.io import save_arrays, write_csv, write_json


def save_run(stem: str, *, weights: dict[str, np.ndarray], params: dict[str, Any],
             history: dict[str, list], metrics: dict[str, Any],
             accuracy_by_position: list[float] | None = None) -> None:
    """Write models/<stem>.npz, plots/<stem>_loss.csv, plots/<stem>_recall.csv (if given) and,
    last, metrics/<stem>.json.

    Metrics hold results only, never timings: the same params and seed give the same file, so
    `dvc metrics diff` shows what a change did and nothing else (the stage's last line gives
    the time)."""
    save_arrays(f"models/{stem}.npz", weights, {"kind": stem, "params": params})
    write_csv(f"plots/{stem}_loss.csv", {"step": history["step"], "loss": history["loss"]})
    if accuracy_by_position is not None:
        write_csv(f"plots/{stem}_recall.csv", {
            "position": list(range(1, len(accuracy_by_position) + 1)),
            "accuracy": [float(a) for a in accuracy_by_position]})
    write_json(f"metrics/{stem}.json", metrics)
