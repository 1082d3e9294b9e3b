"""`make capacity`: recall accuracy against delay for RNN, IRNN and LSTM, via DVC's queue.

Each grid point (blank separation B x cell x seed) is one queued experiment
`dvc exp run --queue train_memory -S ...`, so the sweep is DVC's, not a home-made loop: the
queue runs them in parallel workers (`dvc queue start -j N`) and each result stays a
first-class experiment (`dvc exp show`, `dvc exp push` to share them). The summary is built
from `dvc exp show --json` into metrics/memory_capacity.json and plots/memory_capacity.png.
A run that fails (a ReLU RNN diverging at long delays, say) is part of the result: the table
lists it with the stage's own error line, the plot marks it, the means leave it out.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from typing import Any

from rnnlab.dvc_cli import describe_failure, dvc, dvc_output, set_args

CELLS = {
    "rnn": {"tf_model.cell": "rnn", "tf_model.init": "random", "tf_model.match_params": True},
    # The identity-initialised ReLU RNN needs a smaller step: at the default 1e-2 its spectral
    # radius grows past 1 within a few updates and long sequences overflow (README, capacity).
    "irnn": {"tf_model.cell": "rnn", "tf_model.init": "identity", "tf_model.match_params": True,
             "tf_memory.learning_rate": 0.001},
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
PREFIX = "cap"  # experiment names: cap-lstm-b40-s1
FINISHED = ("Success", "Failed")
TASK_ID = re.compile(r"[0-9a-f]{7,}")
STAGE_ERROR = re.compile(r"^[\w@.-]+: error: (.*)$", re.MULTILINE)  # run_stage's one-line errors


def experiment_name(cell: str, delay: int, seed: int, prefix: str = PREFIX) -> str:
    return f"{prefix}-{cell}-b{delay}-s{seed}"


def run_settings(cell: str, overrides: dict) -> dict:
    """A cell's params overrides: its own settings, with `overrides` winning over them."""
    return {**CELLS[cell], **overrides}


def grid_points(cells: list[str], delays: list[int], seeds: list[int]) -> list[tuple]:
    """(cell, delay, seed), longest sequences and the LSTM first.

    Longest-first keeps both workers busy to the end: a long run started last would leave
    one worker idle while the other finishes it.
    """
    order = sorted(cells, key=lambda c: c != "lstm")
    return [(c, d, s) for d in sorted(delays, reverse=True) for c in order for s in seeds]


def queue_tasks() -> list[tuple[str, str, str]]:
    """(task id, experiment name, status) of every task `dvc queue status` lists.

    Status is Queued, Running, Success or Failed. Names can repeat across runs of the grid,
    task ids cannot, so progress is tracked by id.
    """
    tasks = []
    for line in dvc_output("queue", "status").splitlines():
        fields = line.split()  # task id, name, created (e.g. "02:01 PM"), status
        if len(fields) >= 4 and TASK_ID.fullmatch(fields[0]):
            tasks.append((fields[0], fields[1], fields[-1]))
    return tasks


def clear_old_runs(names: list[str]) -> set[str]:
    """Drop earlier experiments and queue entries of these names; return the ids still listed."""
    old = [task for task, name, status in queue_tasks() if name in names and status != "Running"]
    if old:
        dvc("queue", "remove", *old, check=False, quiet=True)
    existing = set(dvc_output("exp", "list", "--name-only").split()) & set(names)
    if existing:
        dvc("exp", "remove", *sorted(existing), check=False, quiet=True)
    return {task for task, _, _ in queue_tasks()}


def queue_grid(points: list[tuple], names: list[str], overrides: dict, jobs: int) -> dict[str, str]:
    """Queue one experiment per grid point; return {name: task id}.

    The workers start as soon as there is work for them. `overrides` win over the cell's own
    settings, the grid point's delay and seed over both.
    """
    listed_before = clear_old_runs(names)
    for i, ((cell, delay, seed), name) in enumerate(zip(points, names)):
        settings = {**run_settings(cell, overrides),
                    "memory_task.blank_separation_len": delay, "tf_model.seed": seed}
        dvc("exp", "run", "--queue", "-n", name, *set_args(settings), "train_memory", quiet=True)
        if i + 1 == jobs:  # queueing the rest takes ~2 s each: let the workers run meanwhile
            dvc("queue", "start", "-j", str(jobs), quiet=True)
    # Idle workers exit after ~10 s; this start is a no-op unless they did (or jobs > grid).
    dvc("queue", "start", "-j", str(jobs), quiet=True)
    return {name: task for task, name, _ in queue_tasks()
            if task not in listed_before and name in names}


def wait_for_queue(tasks: dict[str, str], jobs: int, poll_seconds: float = 5.0,
                   stall_polls: int = 24) -> None:
    """Block until every task has finished (Success or Failed), with a progress bar.

    Work queued with nothing running for `stall_polls` polls in a row (the workers were
    stopped, or could not start) gets one `dvc queue start`; if that does not help either,
    it is an error rather than a wait without end.
    """
    from tqdm import tqdm

    idle_polls = 0
    with tqdm(total=len(tasks), desc="capacity", unit="exp", file=sys.stdout) as bar:
        while True:
            status = {task: st for task, _, st in queue_tasks()}
            ours = [status.get(task, "Missing") for task in tasks.values()]
            bar.update(sum(st in FINISHED for st in ours) - bar.n)
            if not any(st in ("Queued", "Running") for st in ours):
                return
            idle_polls = 0 if "Running" in status.values() else idle_polls + 1
            if idle_polls == stall_polls // 2:
                dvc("queue", "start", "-j", str(jobs), quiet=True)
            elif idle_polls >= stall_polls:
                raise RuntimeError("experiments are queued but no worker runs them; see "
                                   "`dvc queue status` and .dvc/tmp/exps/celery/*.out")
            time.sleep(poll_seconds)


def stop_queue(names: list[str]) -> None:
    """Ctrl-C: kill the running experiments and drop the queued ones of this grid."""
    dvc("queue", "stop", "--kill", check=False, quiet=True)
    queued = [task for task, name, st in queue_tasks() if name in names and st == "Queued"]
    if queued:
        dvc("queue", "remove", *queued, check=False, quiet=True)


def failure_reason(task: str) -> str:
    """The stage's own one-line error from `dvc queue logs` (e.g. 'training diverged ...')."""
    errors = STAGE_ERROR.findall(dvc_output("queue", "logs", task))
    return errors[-1] if errors else f"failed; see `dvc queue logs {task}`"


def collect(names: list[str], exp_show: list[dict]) -> dict[str, dict[str, Any]]:
    """Pick the named experiments' memory metrics out of `dvc exp show --json`."""
    found = {}
    for baseline in exp_show:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs", []):
                # A failed run is listed too, with an error and the baseline's metrics.
                if rev.get("name") in names and rev.get("data") and not rev.get("error"):
                    data = rev["data"]
                    metrics = data.get("metrics", {}).get("metrics/memory.json", {}).get("data", {})
                    found[rev["name"]] = metrics
    return found


def memoryless_loss(to_remember_len: int, delay: int, n_symbols: int = 8) -> float:
    """Per-step cross-entropy of a model that predicts blanks perfectly and guesses symbols."""
    return to_remember_len * math.log(n_symbols) / (2 * to_remember_len + delay + 1)


def _spread(values: list[float], prefix: str) -> dict[str, float | None]:
    """Mean, min and max over the seeds that finished (None if none did)."""
    if not values:
        return {f"{prefix}_{stat}": None for stat in ("mean", "min", "max")}
    return {f"{prefix}_mean": sum(values) / len(values), f"{prefix}_min": min(values),
            f"{prefix}_max": max(values)}


def summarise(results: dict, failures: dict[str, str], cells: list[str], delays: list[int],
              seeds: list[int], to_remember_len: int, prefix: str = PREFIX) -> dict[str, Any]:
    """The table: per cell and delay, accuracy and final loss over seeds; failed runs listed."""
    table = {"to_remember_len": to_remember_len, "delays": delays, "seeds": seeds,
             "chance_accuracy": 1 / 8,
             "memoryless_loss": [memoryless_loss(to_remember_len, d) for d in delays],
             "cells": {}, "failures": failures}
    for cell in cells:
        rows = []
        for delay in delays:
            names = [experiment_name(cell, delay, s, prefix) for s in seeds]
            runs = [results[n] for n in names if n in results]
            rows.append({"blank_separation_len": delay,
                         **_spread([r["test_accuracy"] for r in runs], "accuracy"),
                         **_spread([r["train_loss_final"] for r in runs], "train_loss"),
                         "n_params": runs[0]["n_params"] if runs else None,
                         "n_failed": sum(n in failures for n in names)})
        table["cells"][cell] = rows
    return table


def write_summary(table: dict, json_path: str, png_path: str) -> None:
    from rnnlab import plotting
    from rnnlab.io import write_json, write_png

    def series(prefix):  # None (no seed finished) becomes a gap in the line
        return {LABELS[c]: tuple([math.nan if r[f"{prefix}_{s}"] is None else r[f"{prefix}_{s}"]
                                  for r in rows] for s in ("mean", "min", "max"))
                for c, rows in table["cells"].items()}
    failed = {LABELS[c]: [r["n_failed"] for r in rows] for c, rows in table["cells"].items()}
    write_json(json_path, table)
    write_png(png_path, plotting.memory_capacity(table["delays"], series("accuracy"),
                                                 table["chance_accuracy"], series("train_loss"),
                                                 table["memoryless_loss"], failed))


def _key_value(text: str) -> tuple[str, Any]:
    """`section.key=value` -> (key, value), the value read as params.yaml would read it."""
    from rnnlab.config import parse_yaml
    from rnnlab.errors import ConfigError

    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise argparse.ArgumentTypeError(f"expected section.key=value, got {text!r}")
    try:
        return key, parse_yaml(value, f"-S {key}")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Recall accuracy against delay, as queued DVC experiments.")
    parser.add_argument("--jobs", type=int, default=2, help="parallel queue workers")
    parser.add_argument("--quick", action="store_true", help="a small grid for trying it out")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--delays", nargs="+", type=int, help="blank separations to sweep")
    parser.add_argument("--seeds", nargs="+", type=int, help="model seeds per grid point")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        type=_key_value, help="extra params override for every grid point")
    parser.add_argument("--prefix", default=PREFIX, help="experiment names: PREFIX-CELL-bB-sSEED")
    parser.add_argument("--json", default="metrics/memory_capacity.json")
    parser.add_argument("--png", default="plots/memory_capacity.png")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    grid = QUICK if args.quick else FULL
    delays, seeds = args.delays or grid["delays"], args.seeds or grid["seeds"]
    overrides = dict(grid["overrides"], **dict(args.set))
    start = time.perf_counter()
    points = grid_points(args.cells, delays, seeds)
    names = [experiment_name(*point, args.prefix) for point in points]
    try:
        tasks = queue_grid(points, names, overrides, args.jobs)
        wait_for_queue(tasks, args.jobs)
        shown = dvc_output("exp", "show", "--json", check=True)
        results = collect(names, json.loads(shown))
    except KeyboardInterrupt:
        stop_queue(names)
        sys.exit("capacity: interrupted; the queue is stopped and this grid's queued runs removed")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"capacity: {describe_failure(exc)}")
    except RuntimeError as exc:
        sys.exit(f"capacity: error: {exc}")
    # A failed run (e.g. diverged training) is a result of the study, not the end of it.
    failures = {name: failure_reason(tasks.get(name, name)) for name in names if name not in results}
    for name, reason in failures.items():
        print(f"capacity: {name}: {reason}", file=sys.stderr)
    if not results:
        sys.exit("capacity: error: every run failed (reasons above)")
    from rnnlab.config import read_params

    remember = overrides.get("memory_task.to_remember_len",
                             read_params()["memory_task"]["to_remember_len"])
    table = summarise(results, failures, args.cells, delays, seeds, remember, args.prefix)
    table["settings"] = {cell: run_settings(cell, overrides) for cell in args.cells}
    write_summary(table, args.json, args.png)
    print(f"capacity: {len(names)} experiments ({len(failures)} failed) in "
          f"{time.perf_counter() - start:.0f} s; wrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()
