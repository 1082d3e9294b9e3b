"""`make capacity`: recall accuracy against delay for RNN, IRNN and LSTM, via DVC's queue.

Each grid point (blank separation B x cell x seed) is one queued experiment
`dvc exp run --queue train_memory -S ...`, so the sweep is DVC's, not a home-made loop: the
queue runs them in parallel workers (`dvc queue start -j N`) and each result stays a
first-class experiment (`dvc exp show`, `dvc exp push` to share them). The summary is built
from `dvc exp show --json` into metrics/memory_capacity.json and plots/memory_capacity.png.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from typing import Any

from rnnlab.compare import dvc, set_args

CELLS = {
    "rnn": {"tf_model.cell": "rnn", "tf_model.init": "random", "tf_model.match_params": True},
    "irnn": {"tf_model.cell": "rnn", "tf_model.init": "identity", "tf_model.match_params": True},
    "lstm": {"tf_model.cell": "lstm"},
}
LABELS = {"rnn": "ReLU RNN (orthogonal init)", "irnn": "IRNN (identity init)", "lstm": "LSTM"}
# The full grid's budget: 15 epochs of 10,000 sequences (1,500 steps) instead of the default
# 35, so that 36 experiments fit in 30 minutes on 2 cores (B = 80 makes 97-step sequences).
FULL = {"delays": [0, 5, 10, 20, 40, 80], "seeds": [0, 1],
        "overrides": {"tf_memory.epochs": 15}}
QUICK = {"delays": [0, 20], "seeds": [0, 1],
         "overrides": {"memory_task.n_train": 2000, "memory_task.n_test": 500,
                       "tf_model.hidden": 32, "tf_memory.epochs": 10}}
PREFIX = "cap"
FINISHED = ("Success", "Failed")


def experiment_name(cell: str, delay: int, seed: int) -> str:
    return f"{PREFIX}-{cell}-b{delay}-s{seed}"


def grid_points(cells: list[str], delays: list[int], seeds: list[int]) -> list[tuple]:
    """(cell, delay, seed), longest sequences and the LSTM first.

    Longest-first keeps both workers busy to the end: a long run started last would leave
    one worker idle while the other finishes it.
    """
    order = sorted(cells, key=lambda c: c != "lstm")
    return [(c, d, s) for d in sorted(delays, reverse=True) for c in order for s in seeds]


def _dvc_out(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True,
                          text=True).stdout


def queue_statuses() -> dict[str, str]:
    """Experiment name -> status (Queued, Running, Success, Failed) from `dvc queue status`."""
    statuses = {}
    for line in _dvc_out("queue", "status").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 4 and fields[1].startswith(PREFIX + "-"):
            statuses[fields[1]] = fields[-1]
    return statuses


def clear_old_runs(names: list[str]) -> None:
    """Drop earlier experiments and queued tasks of the same names, so the grid can re-run."""
    queued = [n for n, status in queue_statuses().items() if n in names and status == "Queued"]
    if queued:
        dvc("queue", "remove", *queued, check=False, quiet=True)
    existing = set(_dvc_out("exp", "list", "--name-only").split()) & set(names)
    if existing:
        dvc("exp", "remove", *sorted(existing), check=False, quiet=True)


def queue_grid(points: list[tuple], overrides: dict, jobs: int) -> list[str]:
    """Queue one experiment per grid point; the workers start as soon as there is work."""
    names = [experiment_name(*point) for point in points]
    clear_old_runs(names)
    for i, ((cell, delay, seed), name) in enumerate(zip(points, names)):
        settings = {**overrides, **CELLS[cell],
                    "memory_task.blank_separation_len": delay, "tf_model.seed": seed}
        dvc("exp", "run", "--queue", "-n", name, *set_args(settings), "train_memory", quiet=True)
        if i + 1 == jobs:  # queueing the rest takes ~2 s each: let the workers run meanwhile
            dvc("queue", "start", "-j", str(jobs), quiet=True)
    # Idle workers exit after ~10 s; this start is a no-op unless they did (or jobs > grid).
    dvc("queue", "start", "-j", str(jobs), quiet=True)
    return names


def wait_for_queue(names: list[str], poll_seconds: float = 5.0) -> None:
    """Block until every named experiment has finished, with a progress bar."""
    from tqdm import tqdm

    with tqdm(total=len(names), desc="capacity", unit="exp", file=sys.stdout) as bar:
        while True:
            statuses = queue_statuses()
            done = sum(statuses.get(n) in FINISHED for n in names)
            bar.update(done - bar.n)
            pending = [n for n in names if statuses.get(n) in ("Queued", "Running")]
            if not pending:
                return
            time.sleep(poll_seconds)


def stop_queue(names: list[str]) -> None:
    """Ctrl-C: kill the running experiments and drop the queued ones of this grid."""
    dvc("queue", "stop", "--kill", check=False, quiet=True)
    queued = [n for n, status in queue_statuses().items() if n in names and status == "Queued"]
    if queued:
        dvc("queue", "remove", *queued, check=False, quiet=True)


def collect(names: list[str], exp_show: list[dict]) -> dict[str, dict[str, Any]]:
    """Pick each named experiment's memory metrics and params out of `dvc exp show --json`."""
    found = {}
    for baseline in exp_show:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs", []):
                if rev.get("name") in names and rev.get("data"):
                    data = rev["data"]
                    metrics = data.get("metrics", {}).get("metrics/memory.json", {}).get("data", {})
                    found[rev["name"]] = metrics
    missing = sorted(set(names) - set(found))
    if missing:
        raise RuntimeError(f"no results for {', '.join(missing)} (see `dvc queue logs NAME`)")
    return found


def memoryless_loss(to_remember_len: int, delay: int, n_symbols: int = 8) -> float:
    """Per-step cross-entropy of a model that predicts blanks perfectly and guesses symbols."""
    return to_remember_len * math.log(n_symbols) / (2 * to_remember_len + delay + 1)


def summarise(results: dict, cells: list[str], delays: list[int], seeds: list[int],
              to_remember_len: int) -> dict[str, Any]:
    table = {"to_remember_len": to_remember_len, "delays": delays, "seeds": seeds,
             "chance_accuracy": 1 / 8,
             "memoryless_loss": [memoryless_loss(to_remember_len, d) for d in delays],
             "cells": {}}
    for cell in cells:
        rows = []
        for delay in delays:
            runs = [results[experiment_name(cell, delay, s)] for s in seeds]
            acc = [r["test_accuracy"] for r in runs]
            loss = [r["train_loss_final"] for r in runs]
            rows.append({"blank_separation_len": delay, "accuracy_mean": sum(acc) / len(acc),
                         "accuracy_min": min(acc), "accuracy_max": max(acc),
                         "train_loss_mean": sum(loss) / len(loss), "train_loss_min": min(loss),
                         "train_loss_max": max(loss), "n_params": runs[0]["n_params"]})
        table["cells"][cell] = rows
    return table


def write_summary(table: dict, json_path: str, png_path: str) -> None:
    from rnnlab import plotting
    from rnnlab.io import write_json, write_png

    def series(prefix):
        return {LABELS[c]: tuple([r[f"{prefix}_{s}"] for r in rows] for s in ("mean", "min", "max"))
                for c, rows in table["cells"].items()}
    write_json(json_path, table)
    write_png(png_path, plotting.memory_capacity(table["delays"], series("accuracy"),
                                                 table["chance_accuracy"], series("train_loss"),
                                                 table["memoryless_loss"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Recall accuracy against delay, as queued DVC experiments.")
    parser.add_argument("--jobs", type=int, default=2, help="parallel queue workers")
    parser.add_argument("--quick", action="store_true", help="a small grid for trying it out")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--delays", nargs="+", type=int, help="blank separations to sweep")
    parser.add_argument("--seeds", nargs="+", type=int, help="model seeds per grid point")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra params override for every grid point")
    parser.add_argument("--json", default="metrics/memory_capacity.json")
    parser.add_argument("--png", default="plots/memory_capacity.png")
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    delays, seeds = args.delays or grid["delays"], args.seeds or grid["seeds"]
    overrides = dict(grid["overrides"], **dict(item.split("=", 1) for item in args.set))
    start = time.perf_counter()
    points = grid_points(args.cells, delays, seeds)
    names = [experiment_name(*point) for point in points]
    try:
        queue_grid(points, overrides, args.jobs)
        wait_for_queue(names)
        shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"],
                               capture_output=True, text=True, check=True).stdout
        results = collect(names, json.loads(shown))
    except KeyboardInterrupt:
        stop_queue(names)
        sys.exit("capacity: interrupted; the queue is stopped and this grid's queued runs removed")
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        sys.exit(f"capacity: error: {exc}")
    from rnnlab.config import read_params

    remember = int(overrides.get("memory_task.to_remember_len",
                                 read_params()["memory_task"]["to_remember_len"]))
    write_summary(summarise(results, args.cells, delays, seeds, remember), args.json, args.png)
    print(f"capacity: {len(names)} experiments in {time.perf_counter() - start:.0f} s; "
          f"wrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()
