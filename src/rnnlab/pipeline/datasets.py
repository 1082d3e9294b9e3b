"""The datasets of the pipeline on disk: how each is generated, written and checked on load.

One table entry per dataset kind; stages call `write_dataset` / `read_dataset` with the
validated params section, so a file made with other params is refused instead of used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnnlab.pipeline import sequences
from rnnlab.pipeline.files import expect_arrays, load_checked, save_arrays


@dataclass(frozen=True)
class DatasetKind:
    stage: str            # the DVC stage that writes it (named in error messages)
    section: str          # the params.yaml section it is generated from
    folder: str
    make: Callable[[dict[str, Any], str, np.random.Generator], dict[str, np.ndarray]]
    check: Callable[[dict[str, np.ndarray], dict[str, Any], str], str | None]


def _split_size(params: dict[str, Any], split: str) -> int:
    return params["n_train"] if split == "train" else params["n_test"]


def _make_copy(params, split, rng):
    inputs, targets = sequences.copy_task(_split_size(params, split), params["to_remember_len"],
                                          params["vocab_size"] - 2, rng,
                                          params["blank_separation_len"])
    return {"inputs": inputs, "targets": targets}


def _make_memory(params, split, rng):
    inputs, targets = sequences.memory_task(_split_size(params, split), params["to_remember_len"],
                                       params["blank_separation_len"], params["vocab_size"] - 2,
                                       rng)
    return {"inputs": inputs, "targets": targets}


def _make_sine(params, split, rng):
    # Training curves hold seq_len inputs plus the one target beyond them; test curves hold
    # the given part and the part the model generates.
    length = (params["seq_len"] + 1 if split == "train"
              else params["n_given"] + params["n_generated"])
    return {"curves": sequences.sine_curves(_split_size(params, split), length,
                                            params["x_spacing"], rng)}


def _check_sequences(arrays, params, split):
    length = 2 * params["to_remember_len"] + params.get("blank_separation_len", 0) + 1
    shape = (_split_size(params, split), length)
    problem = expect_arrays(arrays, {"inputs": ("uint8", shape), "targets": ("uint8", shape)})
    if (problem is None
            and max(arrays["inputs"].max(), arrays["targets"].max()) >= params["vocab_size"]):
        problem = f"class ids reach beyond vocab_size {params['vocab_size']}"
    return problem


def _check_sine(arrays, params, split):
    length = (params["seq_len"] + 1 if split == "train"
              else params["n_given"] + params["n_generated"])
    problem = expect_arrays(arrays, {"curves": ("float32", (_split_size(params, split), length))})
    if problem is None and not (np.all(np.isfinite(arrays["curves"]))
                                and np.abs(arrays["curves"]).max() <= 1.0):
        problem = "sine values outside [-1, 1] or not finite"
    return problem


def _make_adding(params, split, rng):
    inputs, targets = sequences.adding_problem(_split_size(params, split), params["seq_len"], rng)
    return {"inputs": inputs, "targets": targets}


def _check_adding(arrays, params, split):
    n, T = _split_size(params, split), params["seq_len"]
    problem = expect_arrays(arrays, {"inputs": ("float32", (n, T, 2)),
                                     "targets": ("float32", (n,))})
    if problem is not None:
        return problem
    values, markers = arrays["inputs"][..., 0], arrays["inputs"][..., 1]
    if not (np.all(np.isfinite(values)) and values.min() >= 0.0 and values.max() <= 1.0):
        return "adding values outside [0, 1] or not finite"
    if not (np.all((markers == 0) | (markers == 1))
            and np.all(markers.sum(axis=1) == sequences.ADDING_MARKERS)):
        return f"a sequence without exactly {sequences.ADDING_MARKERS} markers (0/1 values)"
    if not np.allclose((values * markers).sum(axis=1), arrays["targets"], atol=1e-5):
        return "a target that is not the sum of its two marked values"
    return None


DATASETS = {
    "copy_task": DatasetKind("data@copy_task", "copy_task", "data/copy_task", _make_copy,
                             _check_sequences),
    "memory": DatasetKind("data@memory", "memory_task", "data/memory", _make_memory,
                          _check_sequences),
    "sine": DatasetKind("data@sine", "sine_task", "data/sine", _make_sine, _check_sine),
    "adding": DatasetKind("data@adding", "adding_task", "data/adding", _make_adding,
                          _check_adding),
}
SPLITS = ("train", "test")


def dataset_path(kind: str, split: str, root: str | Path = ".") -> Path:
    return Path(root) / DATASETS[kind].folder / f"{split}.npz"


def make_dataset(kind: str, params: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """Generate the train and test splits from `params` (its section of params.yaml).

    Train and test use independent streams of the seed, so resizing one leaves the other.
    """
    spec = DATASETS[kind]
    seeds = np.random.SeedSequence(params["seed"]).spawn(len(SPLITS))
    return {split: spec.make(params, split, np.random.default_rng(seed))
            for split, seed in zip(SPLITS, seeds, strict=True)}


def write_dataset(kind: str, params: dict[str, Any], root: str | Path = ".") -> dict[str, int]:
    """Generate both splits and write them; returns the number of sequences per split."""
    sizes = {}
    for split, arrays in make_dataset(kind, params).items():
        save_arrays(dataset_path(kind, split, root), arrays,
                    {"kind": kind, "split": split, "params": params})
        sizes[split] = len(next(iter(arrays.values())))
    return sizes


def read_dataset(kind: str, split: str, params: dict[str, Any], root: str | Path = "."):
    """Load one split, checking its format, its recorded params and its arrays."""
    spec = DATASETS[kind]
    arrays, _ = load_checked(dataset_path(kind, split, root), stage=spec.stage, kind=kind,
                             section=spec.section, params=params,
                             check=lambda a: spec.check(a, params, split))
    return arrays
