"""The outputs of the gradient-flow stages: per-step plot data and the shrink factors.

Plot data has one row per time step t (0-based), with `distance` = first recalled position - t
(how many steps back from where the loss begins), so that `dvc plots diff` overlays cells,
inits and tasks on the same axis.
"""

from __future__ import annotations

import numpy as np

from rnnlab.pipeline.files import write_csv, write_json

GATES = ("input_gate", "forget_gate", "output_gate")


def shrink_factors(norms: np.ndarray, delimiter: int, last_symbol: int) -> dict[str, float]:
    """How many times ||dL/dh_t|| shrinks going back: from the delimiter across the blanks to
    the last symbol, and from the delimiter to the first symbol (> 1: it shrank)."""
    return {"shrink_across_blanks": float(norms[delimiter] / norms[last_symbol]),
            "shrink_to_first_symbol": float(norms[delimiter] / norms[0])}


def save_gradient_flow(task: str, norms: dict[str, np.ndarray], *, first_recall: int,
                       delimiter: int, last_symbol: int) -> dict[str, dict[str, float]]:
    """plots/gradient_flow_<task>.csv and results/gradient_flow_<task>.json from the per-step
    mean norms {"init": (T,), "trained": (T,)}; returns the shrink factors written."""
    T = len(norms["trained"])
    columns = {"step": list(range(T)), "distance": [first_recall - t for t in range(T)]}
    for name, values in norms.items():
        columns[f"grad_norm_{name}"] = [float(v) for v in values]
        columns[f"log10_grad_norm_{name}"] = [float(np.log10(max(v, 1e-300))) for v in values]
    write_csv(f"plots/gradient_flow_{task}.csv", columns)
    shrink = {name: shrink_factors(values, delimiter, last_symbol)
              for name, values in norms.items()}
    write_json(f"results/gradient_flow_{task}.json", shrink)
    return shrink


def state_columns(trace: dict[str, np.ndarray]) -> dict[str, list]:
    """Per-step means over the sequences: gate values (mean over units; empty for a cell
    without gates), ||c_t|| and ||h_t||."""
    T = trace["hidden"].shape[1]
    columns = {"step": list(range(T))}
    for gate in GATES:
        columns[gate] = ([float(v) for v in trace[gate].mean(axis=(0, 2))] if gate in trace
                         else [""] * T)
    columns["cell_norm"] = ([float(v) for v in np.linalg.norm(trace["cell"], axis=-1).mean(axis=0)]
                            if "cell" in trace else [""] * T)
    columns["hidden_norm"] = [float(v)
                              for v in np.linalg.norm(trace["hidden"], axis=-1).mean(axis=0)]
    return columns


def write_state_trace(path: str, trace: dict[str, np.ndarray]) -> None:
    write_csv(path, state_columns(trace))
