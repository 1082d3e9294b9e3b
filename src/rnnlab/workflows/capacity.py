"""`rnnlab capacity`: recall accuracy against delay for the RNN, the IRNN and the LSTM, as queued
DVC experiments, on one machine or sharded over several.

Each grid point (blank separation B x cell x seed) is one experiment `cap-lstm-b40-s1`:
train_memory with the point's -S values, run by a worker of rnnlab.workflows.queue as
`dvc exp run --temp` would run it. The summary is built
from each run's record, results/memory.json in its experiment's commit, into one folder:
summary.json (the curve's numbers), curve.csv (the curve, flat, for `dvc plots`), curve.png
and runs.json (the grid, its settings, missing and failed runs with their reasons).

Only the full default grid (the committed study) writes reports/capacity/. The quick grid
(--quick, experiments `cap-quick-...`, so they never replace the full grid's) writes
reports/capacity-quick/; any other grid (other --cells, --delays or --seeds, extra -S, another
--prefix) writes reports/capacity-PREFIX/ (reports/capacity-custom/ under the default prefix).
Each summary says which grid it is and whether it is the committed study.

Past one machine, on git and DVC remotes (no scheduler of our own):

    rnnlab capacity --shard 1/2 --push origin   # machine 1
    rnnlab capacity --shard 2/2 --push origin   # machine 2
    rnnlab capacity --collect origin            # anywhere, afterwards

(`python -m rnnlab.workflows.capacity` takes the same options.) A shard runs a deterministic,
cost-balanced slice of the grid and pushes each finished experiment with its outputs
(`dvc exp push`); --collect pulls the grid's experiments (`dvc exp pull`) and builds the
summary. A point with no finished run is reported as missing.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.pipeline.params import read_params
from rnnlab.workflows.dvc_commands import describe_failure, dvc, key_value
from rnnlab.workflows.entry import module_main, module_parser
from rnnlab.workflows.queue import Run, experiments, run_all
from rnnlab.workflows.readme import refresh_readme

LSTM_PARTS = {  # cell name -> the LSTM's switches (tf_model.lstm_variant, lstm_forget_bias)
    "lstm_no_forget_gate": {"tf_model.lstm_variant": "no_forget_gate"},
    "lstm_no_input_gate": {"tf_model.lstm_variant": "no_input_gate"},
    "lstm_no_output_gate": {"tf_model.lstm_variant": "no_output_gate"},
    "lstm_coupled": {"tf_model.lstm_variant": "coupled"},
    "lstm_no_output_activation": {"tf_model.lstm_variant": "no_output_activation"},
    "lstm_forget_bias_0": {"tf_model.lstm_forget_bias": 0.0},
}
CELLS = {
    "rnn": {"tf_model.cell": "rnn", "tf_model.rnn_init": "orthogonal",
            "tf_model.rnn_hidden": "matched"},
    # The identity-initialised ReLU RNN needs a smaller step: at the default 1e-2 its spectral
    # radius grows past 1 within a few updates and long sequences overflow (README, capacity).
    "irnn": {"tf_model.cell": "rnn", "tf_model.rnn_init": "identity",
             "tf_model.rnn_hidden": "matched", "tf_memory.learning_rate": 0.001},
    "lstm": {"tf_model.cell": "lstm"},
    "gru": {"tf_model.cell": "gru", "tf_model.gru_hidden": "matched"},
    # the LSTM's variants keep the LSTM's units (a part taken away, nothing added back)
    **{name: {"tf_model.cell": "lstm", **switch} for name, switch in LSTM_PARTS.items()},
}
LABELS = {"rnn": "ReLU RNN (orthogonal init)", "irnn": "IRNN (identity init)", "lstm": "LSTM",
          "gru": "GRU", "lstm_no_forget_gate": "LSTM, no forget gate (f = 1)",
          "lstm_no_input_gate": "LSTM, no input gate (i = 1)",
          "lstm_no_output_gate": "LSTM, no output gate (o = 1)",
          "lstm_coupled": "LSTM, coupled gates (CIFG, i = 1 - f)",
          "lstm_no_output_activation": "LSTM, no output activation (h = o c)",
          "lstm_forget_bias_0": "LSTM, forget bias 0"}
# Relative cost of a run per time step, only used to balance shards. From the full grid's
# train_memory timings (`dvc queue logs`): an LSTM run took 1.3-1.5x a matched RNN run at
# B <= 40 and 2.1x at B = 80 (XLA compiling the unrolled loop with an empty cache). The GRU and
# the variants are costed as the LSTM.
CELL_COST = {cell: 1.0 if cell in ("rnn", "irnn") else 1.4 for cell in CELLS}
REPORTS = Path("reports")
# The studies' grids. Only the full capacity grid and the ablation grid, unchanged, write the
# committed summaries (their `folder`).
# The capacity grid's budget: 15 epochs of 10,000 sequences (1,500 steps) instead of the
# default 35.
FULL = {"name": "full", "prefix": "cap", "cells": ["rnn", "irnn", "lstm"],
        "delays": [0, 5, 10, 20, 40, 80], "seeds": [0, 1],
        "overrides": {"tf_memory.epochs": 15}, "folder": REPORTS / "capacity"}
# Its own experiment names: a quick run must not replace the full grid's experiments (their
# points at B = 0 and 20 would otherwise have to train again at the next full run).
QUICK = {"name": "quick", "prefix": "cap-quick", "cells": ["rnn", "irnn", "lstm"],
         "delays": [0, 20], "seeds": [0, 1],
         "overrides": {"memory_task.n_train": 2000, "memory_task.n_test": 500,
                       "tf_model.lstm_hidden": 32, "tf_memory.epochs": 10},
         "folder": REPORTS / "capacity-quick"}
# Every cell and LSTM variant at three delays and three seeds, with the capacity grid's budget
# (its rnn, irnn and lstm runs at B = 5, 20, 40, seeds 0 and 1, are the same as the capacity
# grid's: DVC's run cache restores them when that grid has run).
ABLATION = {"name": "ablation", "prefix": "abl", "cells": list(CELLS), "delays": [5, 20, 40],
            "seeds": [0, 1, 2], "overrides": {"tf_memory.epochs": 15},
            "folder": REPORTS / "ablation"}
STUDIES = {"capacity": (FULL, QUICK), "ablation": (ABLATION, ABLATION)}
PREFIX = FULL["prefix"]
COMMITTED = FULL["folder"]  # the full default grid's summary: the committed study
FILES = {"json": "summary.json", "runs": "runs.json", "csv": "curve.csv", "png": "curve.png"}
RECORD = "results/memory.json"  # what train_memory records of each run (DVC out, not metrics)
HELP = "recall against delay, RNN vs IRNN vs LSTM (about 13 min; --quick about 60 s)"
DESCRIPTION = f"""\
Trains the memory task over a grid of blank separations B x cell x seed, one queued DVC
experiment per point (PREFIX-CELL-bB-sSEED), skipping points that already ran with the same
params and code, and summarises recall accuracy and final training loss against B.

Writes {COMMITTED}/ (summary.json, runs.json, curve.csv, curve.png) for the full default
grid only (the committed study); --quick writes {REPORTS}/capacity-quick/, any other grid
(other --cells/--delays/--seeds, -S, --prefix) {REPORTS}/capacity-PREFIX/ (or
capacity-custom/). --shard writes nothing (--collect summarises).

Takes about 13 min on this project's 2-core machine with --jobs 2 (36 experiments; 765 s
on a slow day on the sweep workers, 1083 s back to back on the `dvc exp run --temp` pool
before them), --quick about 60 s
(12 small experiments), seconds when every point is already current."""


def int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum, or one clear error line."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value
    return parse


def experiment_prefix(text: str) -> str:
    """An argparse type: a prefix usable in experiment names and a folder name."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text):
        return text
    raise argparse.ArgumentTypeError(f"expected letters, digits, '_', '.' or '-', got {text!r}")


def experiment_name(cell: str, delay: int, seed: int, prefix: str = PREFIX) -> str:
    return f"{prefix}-{cell}-b{delay}-s{seed}"


def grid_runs(cells: list[str], delays: list[int], seeds: list[int], overrides: dict,
              prefix: str = PREFIX) -> list[Run]:
    """One Run per (cell, delay, seed), longest sequences and the LSTM first (so that no worker
    idles at the end while another finishes a long run), seed by seed within a delay (so that
    a later seed finds its step compiled in XLA's cache instead of compiling it at the same time
    as the first: 13 s for the LSTM at B = 80). `overrides` win over the cell's settings, the
    point's delay and seed over both."""
    order = sorted(cells, key=lambda c: c != "lstm")
    return [Run(experiment_name(c, d, s, prefix),
                {**CELLS[c], **overrides, "memory_task.blank_separation_len": d,
                 "tf_model.seed": s}, ("train_memory",))
            for d in sorted(delays, reverse=True) for s in seeds for c in order]


def expected_cost(run: Run, to_remember_len: int) -> float:
    """Relative cost of a run: sequence length 2L + B + 1 times the cell's cost per step."""
    cell = run.name.split("-")[-3]
    delay = run.overrides["memory_task.blank_separation_len"]
    return (2 * to_remember_len + delay + 1) * CELL_COST[cell]


def shard(runs: list[Run], k: int, n: int, cost: Callable[[Run], float]) -> list[Run]:
    """The runs of shard k of n (1-based): longest-processing-time-first (by `cost`) onto the
    least-loaded shard, ties broken by name and shard number, so every machine computes the
    same split."""
    loads, owner = [0.0] * n, {}
    for run in sorted(runs, key=lambda r: (-cost(r), r.name)):
        i = min(range(n), key=lambda j: (loads[j], j))
        loads[i] += cost(run)
        owner[run.name] = i + 1
    return [run for run in runs if owner[run.name] == k]


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' with 1 <= K <= N."""
    k, sep, n = text.partition("/")
    if sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n):
        return int(k), int(n)
    raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N (e.g. 1/2), got {text!r}")


def memoryless_loss(to_remember_len: int, delay: int, n_symbols: int = 8) -> float:
    """Per-step cross-entropy of a model that predicts blanks perfectly and guesses symbols."""
    return to_remember_len * math.log(n_symbols) / (2 * to_remember_len + delay + 1)


def _spread(values: list[float], prefix: str) -> dict[str, float | None]:
    """Mean, min and max over the seeds that finished (None if none did)."""
    if not values:
        return {f"{prefix}_{stat}": None for stat in ("mean", "min", "max")}
    return {f"{prefix}_mean": sum(values) / len(values), f"{prefix}_min": min(values),
            f"{prefix}_max": max(values)}


def summarise(results: dict[str, dict], problems: dict[str, str], cells: list[str],
              delays: list[int], seeds: list[int], to_remember_len: int,
              prefix: str = PREFIX) -> list[dict[str, Any]]:
    """The curve: one row per cell and delay, accuracy and final loss over the seeds that
    finished; `problems` ({name: reason}) are the runs that failed or are missing."""
    rows = []
    for cell in cells:
        for delay in delays:
            names = [experiment_name(cell, delay, s, prefix) for s in seeds]
            runs = [results[n] for n in names if n in results]
            rows.append({"cell": cell, "blank_separation_len": delay,
                         **_spread([r["test_accuracy"] for r in runs], "accuracy"),
                         **_spread([r["train_loss_final"] for r in runs], "train_loss"),
                         "memoryless_loss": memoryless_loss(to_remember_len, delay),
                         "n_params": runs[0]["n_params"] if runs else None,
                         "n_runs": len(runs), "n_missing": sum(n in problems for n in names)})
    return rows


CURVE = ("accuracy_mean", "accuracy_min", "accuracy_max", "train_loss_mean", "n_runs", "n_missing")


def curve_columns(rows: list[dict], cells: list[str], delays: list[int]) -> dict[str, list]:
    """The curve as one row per delay and a column per cell and statistic (`lstm_accuracy_mean`,
    ...), so that `dvc plots` draws one line per cell; an empty cell where no seed finished."""
    by_point = {(r["cell"], r["blank_separation_len"]): r for r in rows}
    columns = {"blank_separation_len": delays,
               "memoryless_loss": [by_point[(cells[0], d)]["memoryless_loss"] for d in delays]}
    for cell in cells:
        for stat in CURVE:
            values = [by_point[(cell, d)][stat] for d in delays]
            columns[f"{cell}_{stat}"] = ["" if v is None else v for v in values]
    return columns


# (a, b): the comparisons the ablation study states, recall accuracy at each delay, counted
# over the seeds both finished: each variant against the LSTM it is taken from, and the claims
# of Jozefowicz et al. 2015 (the forget bias against the GRU) and of question 2f.
ABLATION_PAIRS = [*[("lstm", part) for part in LSTM_PARTS], ("lstm", "gru"),
                  ("gru", "lstm_forget_bias_0"), ("gru", "rnn"), ("lstm", "irnn")]


def paired_counts(records: dict[str, dict], pairs: list[tuple[str, str]], grid) -> list[dict]:
    """For each pair (a, b) of the grid's cells and each delay: on how many of the seeds that
    finished on both sides a's recall accuracy is higher than b's, and the mean difference
    a - b over those seeds (seeds paired by number)."""
    out = []
    for a, b in (p for p in pairs if set(p) <= set(grid.cells)):
        for delay in grid.delays:
            names = {s: (experiment_name(a, delay, s, grid.prefix),
                         experiment_name(b, delay, s, grid.prefix)) for s in grid.seeds}
            both = [s for s, (na, nb) in names.items() if na in records and nb in records]
            diffs = [records[names[s][0]]["test_accuracy"] - records[names[s][1]]["test_accuracy"]
                     for s in both]
            out.append({"better": a, "than": b, "blank_separation_len": delay,
                        "seeds": len(both), "holds": sum(d > 0 for d in diffs),
                        "mean_difference": sum(diffs) / len(diffs) if diffs else None,
                        "paired_seeds": both})
    return out


def ablation_tables(rows: list[dict], pairs: list[dict], delays: list[int]) -> dict[str, str]:
    """The README's two ablation tables: recall accuracy per cell and delay (mean, min-max,
    n seeds), and the paired comparisons (a higher on k of n seeds, mean difference)."""
    head = " | ".join(f"B = {d}" for d in delays)
    lines = [f"| cell | parameters | {head} |", "|---|---:|" + "---|" * len(delays)]
    for cell in dict.fromkeys(r["cell"] for r in rows):
        mine = {r["blank_separation_len"]: r for r in rows if r["cell"] == cell}
        cells = [("—" if mine[d]["n_runs"] == 0 else
                  f"{mine[d]['accuracy_mean']:.3f} ({mine[d]['accuracy_min']:.2f}–"
                  f"{mine[d]['accuracy_max']:.2f}, n={mine[d]['n_runs']})") for d in delays]
        count = next((mine[d]["n_params"] for d in delays if mine[d]["n_params"]), None)
        lines.append(f"| {LABELS[cell]} | {count or '':,} | " + " | ".join(cells) + " |")
    pair_lines = [f"| first higher than second | {head} |", "|---|" + "---|" * len(delays)]
    for a, b in dict.fromkeys((p["better"], p["than"]) for p in pairs):
        by_delay = {p["blank_separation_len"]: p for p in pairs
                    if (p["better"], p["than"]) == (a, b)}
        cells = [("—" if by_delay[d]["seeds"] == 0 else
                  f"{by_delay[d]['holds']} of {by_delay[d]['seeds']} "
                  f"({by_delay[d]['mean_difference']:+.3f})") for d in delays]
        pair_lines.append(f"| {LABELS[a]} > {LABELS[b]} | " + " | ".join(cells) + " |")
    return {"ablation-table": "\n".join(lines), "ablation-pairs": "\n".join(pair_lines)}


def write_summary(rows: list[dict], problems: dict[str, str], settings: dict,
                  paths: dict[str, str], grid: dict | None = None,
                  pairs: list[dict] | None = None) -> None:
    """The four outputs, each atomically, the summary JSON last; `grid` (which grid, whether
    it is the committed study) labels both JSON files; `pairs` (paired_counts) join the
    summary when given."""
    from rnnlab.pipeline import plotting
    from rnnlab.pipeline.files import write_csv, write_json, write_png

    cells = list(dict.fromkeys(r["cell"] for r in rows))
    delays = list(dict.fromkeys(r["blank_separation_len"] for r in rows))

    def series(prefix):  # None (no seed finished) becomes a gap in the line
        return {LABELS[c]: tuple([math.nan if r[f"{prefix}_{s}"] is None else r[f"{prefix}_{s}"]
                                  for r in rows if r["cell"] == c] for s in ("mean", "min", "max"))
                for c in cells}

    missing = {LABELS[c]: [r["n_missing"] for r in rows if r["cell"] == c] for c in cells}
    write_csv(paths["csv"], curve_columns(rows, cells, delays))
    write_png(paths["png"], plotting.memory_capacity(
        delays, series("accuracy"), 1 / 8, series("train_loss"),
        [r["memoryless_loss"] for r in rows if r["cell"] == cells[0]], missing,
        dashed={LABELS[c] for c in cells if c in LSTM_PARTS}))
    label = {"grid": grid} if grid else {}
    write_json(paths["runs"], {**label, "settings": settings, "problems": problems})
    write_json(paths["json"], {**label, "chance_accuracy": 1 / 8, **{
        cell: {f"b{r['blank_separation_len']}": {k: r[k] for k in (
            "accuracy_mean", "accuracy_min", "accuracy_max", "train_loss_mean", "n_runs",
            "n_missing") if r[k] is not None} for r in rows if r["cell"] == cell}
        for cell in cells}, **({"pairs": pairs} if pairs is not None else {})})


def check_remote(remote: str) -> None:
    """A git remote name or URL that answers; RuntimeError with one line otherwise."""
    proc = subprocess.run(["git", "ls-remote", "--heads", remote], capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        raise RuntimeError(f"git remote {remote!r} is unknown or unreachable ({reason})")


def check_dvc_remote() -> None:
    """A default DVC remote, where `dvc exp push` sends the outputs (without one it would push
    the git refs alone, silently); RuntimeError with one line otherwise."""
    if dvc("remote", "default", check=False, quiet=True).returncode != 0:
        raise RuntimeError("no default DVC remote for the experiments' outputs; add one with "
                           "`dvc remote add -d NAME URL` (see the README)")


def push(names: list[str], remote: str) -> None:
    """`dvc exp push REMOTE NAME` for each finished experiment: git refs plus cached outputs."""
    for name in names:
        dvc("exp", "push", remote, name, quiet=True)


def pull(names: list[str], remote: str) -> list[str]:
    """`dvc exp pull` every experiment of this grid that the remote has; returns their names."""
    proc = subprocess.run(["git", "ls-remote", remote, "refs/exps/*"], capture_output=True,
                          text=True, check=True)
    there = {line.rsplit("/", 1)[-1] for line in proc.stdout.splitlines()}
    found = [name for name in names if name in there]
    for name in found:
        dvc("exp", "pull", remote, name, quiet=True)
    return found


def collected(runs: list[Run], remote: str) -> tuple[dict, dict]:
    """Pull the grid's experiments from `remote`: ({name: Experiment} of those that ran with
    this grid's params and this code, {name: why the others have no result})."""
    found = experiments(pull([run.name for run in runs], remote))
    workspace, results, problems = read_params(), {}, {}
    for run in runs:
        exp = found.get(run.name)
        if exp is None:
            problems[run.name] = f"missing: no finished run of it on {remote}"
        elif not exp.is_current_for(run, workspace):
            problems[run.name] = f"stale: the run on {remote} used other params or code"
        else:
            results[run.name] = exp
    return results, problems


@dataclass(frozen=True)
class Grid:
    """The grid a command line asks for, and where its summary goes."""

    name: str  # "full", "quick" or "custom"
    cells: list[str]
    delays: list[int]
    seeds: list[int]
    overrides: dict
    prefix: str
    folder: Path

    def runs(self) -> list[Run]:
        return grid_runs(self.cells, self.delays, self.seeds, self.overrides, self.prefix)

    def paths(self) -> dict[str, str]:
        return {key: str(self.folder / name) for key, name in FILES.items()}

    def label(self) -> dict:
        """What the summary says about itself."""
        committed = self.folder in (FULL["folder"], ABLATION["folder"])
        note = (f"the committed study: the {self.name} default grid" if committed else
                "not a committed study (reports/capacity/, reports/ablation/): "
                + ("the quick grid, for trying the workflow; too little training to separate "
                   "the cells" if self.name == "quick" else "a grid other than the default"))
        return {"name": self.name, "committed_study": committed, "note": note,
                "prefix": self.prefix, "cells": self.cells, "delays": self.delays,
                "seeds": self.seeds, "overrides": self.overrides}


def choose_grid(args: argparse.Namespace) -> Grid:
    """The study's full (or quick) grid with the command line's changes. Cells, delays and
    seeds come in a fixed order, so the same grid gives the same summary however it is typed.
    Only a study's grid unchanged writes its committed summary (e.g. reports/capacity/)."""
    study = getattr(args, "study", "capacity")
    full, quick = STUDIES[study]
    base = quick if getattr(args, "quick", False) else full
    cells = [cell for cell in CELLS if cell in (args.cells or base["cells"])]
    delays = sorted(set(args.delays)) if args.delays else base["delays"]
    seeds = sorted(set(args.seeds)) if args.seeds else base["seeds"]
    overrides = dict(base["overrides"], **dict(args.set))
    prefix = args.prefix or base["prefix"]
    unchanged = (cells == base["cells"] and delays == base["delays"] and seeds == base["seeds"]
                 and overrides == base["overrides"] and prefix == base["prefix"])
    if unchanged:
        folder = base["folder"]
    else:
        folder = REPORTS / f"{study}-{prefix if prefix != base['prefix'] else 'custom'}"
    return Grid(base["name"] if unchanged else "custom", cells, delays, seeds, overrides,
                prefix, folder)


def add_arguments(parser: argparse.ArgumentParser, study: str = "capacity") -> None:
    """A study's options (capacity or ablation), for `rnnlab STUDY` and
    `python -m rnnlab.workflows.capacity` (the capacity study)."""
    full, quick = STUDIES[study]
    parser.set_defaults(study=study, quick=False)
    parser.add_argument("--jobs", type=int_at_least(1), default=2, metavar="N",
                        help="parallel queue workers (default 2)")
    if quick is not full:
        parser.add_argument("--quick", action="store_true",
                            help=f"a small grid for trying it out (B = 0, 20; smaller data and "
                                 f"model; experiments {quick['prefix']}-...; writes "
                                 f"{quick['folder']}/)")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), metavar="CELL",
                        help=f"which cells to sweep (of: {', '.join(CELLS)}; default "
                             + (" ".join(full["cells"]) if full["cells"] != list(CELLS)
                                else "all") + ")")
    delays = " ".join(map(str, full["delays"])) + (
        f"; --quick: {' '.join(map(str, quick['delays']))}" if quick is not full else "")
    parser.add_argument("--delays", nargs="+", type=int_at_least(0), metavar="B",
                        help=f"blank separations to sweep (default {delays})")
    parser.add_argument("--seeds", nargs="+", type=int_at_least(0), metavar="SEED",
                        help=f"model seeds per grid point (default "
                             f"{' '.join(map(str, full['seeds']))})")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        type=key_value, help="extra params override for every grid point")
    parser.add_argument("--prefix", type=experiment_prefix, metavar="PREFIX",
                        help=f"experiment names PREFIX-CELL-bB-sSEED (default {full['prefix']}"
                             + (f", --quick: {quick['prefix']}" if quick is not full else "")
                             + f"); another prefix writes reports/{study}-PREFIX/")
    add_remote_arguments(parser)
    parser.set_defaults(command_name=parser.prog)


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    """--shard, --push, --collect: a queued study over several machines."""
    parser.add_argument("--shard", type=parse_shard, metavar="K/N",
                        help="run only slice K of N of the grid (no summary: see --collect)")
    parser.add_argument("--push", metavar="REMOTE",
                        help="dvc exp push each finished experiment to this git remote")
    parser.add_argument("--collect", metavar="REMOTE",
                        help="pull the grid's experiments from this git remote and summarise")


def run_or_collect(args, runs: list[Run],
                   cost: Callable[[Run], float]) -> tuple[dict, dict] | None:
    """Run this machine's runs (and push them), or collect them from a remote: ({name: exp
    data}, {name: why it has no result}); None when a shard is done (no summary)."""
    for remote in filter(None, (args.push, args.collect)):
        check_remote(remote)
    if args.push:
        check_dvc_remote()
    if args.collect:
        results, problems = collected(runs, args.collect)
        for name, reason in problems.items():
            print(f"{args.study}: {name}: {reason}", file=sys.stderr)
        return results, problems
    mine = shard(runs, *args.shard, cost) if args.shard else runs
    results, failures, current = run_all(mine, args.jobs, args.study)
    for name, reason in failures.items():
        print(f"{args.study}: {name}: {reason}", file=sys.stderr)
    if args.push:
        push(sorted(results), args.push)
    if args.shard:
        print(f"{args.study}: shard {args.shard[0]}/{args.shard[1]}: {len(results)} of {len(mine)} "
              f"experiments finished ({len(current)} were current)"
              + (f", pushed to {args.push}" if args.push else ""))
        if failures:
            sys.exit(1)
        return None
    return results, failures


def read_records(results: dict, problems: dict[str, str]) -> dict[str, dict]:
    """{name: the run's results/memory.json} of the finished runs; a finished run without it
    (e.g. one from before the records moved to results/) joins `problems`."""
    records = {}
    for name, experiment in results.items():
        text = experiment.read(RECORD)
        if text is None:
            problems[name] = f"finished, but its commit has no {RECORD}"
        else:
            records[name] = json.loads(text)
    return records


def run(args: argparse.Namespace) -> int:
    """Run, shard or collect the grid and write its summary; the exit status. Errors end the
    process with one line."""
    return run_study(args, lambda prog: capacity(args, choose_grid(args), prog))


def run_study(args: argparse.Namespace, study: Callable[[str], int]) -> int:
    """A queued study's command (capacity, ablation, papers): study(prog) with its option
    conflicts refused and its errors, Ctrl-C included, ended with one line."""
    prog = getattr(args, "command_name", args.study)
    if args.collect and (args.shard or args.push):
        print(f"{prog}: error: --collect runs nothing: use it without --shard and --push",
              file=sys.stderr)
        return 2
    try:
        return study(prog)
    except KeyboardInterrupt:
        sys.exit(f"{prog}: interrupted; the queue is stopped and this grid's queued runs removed")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{prog}: error: {describe_failure(exc)}")
    except (RnnlabError, RuntimeError, OSError) as exc:
        sys.exit(f"{prog}: error: {exc}")


def capacity(args: argparse.Namespace, grid: Grid, prog: str) -> int:
    """The workflow: run (or collect) the grid's runs, read their records, summarise."""
    start = time.perf_counter()
    remember = grid.overrides.get("memory_task.to_remember_len",
                                  read_params()["memory_task"]["to_remember_len"])
    runs = grid.runs()
    outcome = run_or_collect(args, runs, lambda run: expected_cost(run, remember))
    if outcome is None:
        return 0
    results, problems = outcome
    records = read_records(results, problems)
    if not records:
        sys.exit(f"{prog}: error: no run of the grid finished (reasons above)")
    rows = summarise(records, problems, grid.cells, grid.delays, grid.seeds, remember,
                     grid.prefix)
    settings = {cell: {**CELLS[cell], **grid.overrides} for cell in grid.cells}
    pairs = paired_counts(records, ABLATION_PAIRS, grid) if args.study == "ablation" else None
    write_summary(rows, problems, settings, grid.paths(), grid.label(), pairs)
    if grid.folder == ABLATION["folder"]:
        refresh_readme(ablation_tables(rows, pairs, grid.delays), made_by="make ablation")
    print(f"{args.study}: {len(runs)} grid points, {len(records)} finished, {len(problems)} "
          f"missing or failed, in {time.perf_counter() - start:.0f} s; wrote {grid.folder}/ "
          f"({grid.label()['note']})")
    return 0


ABLATION_HELP = ("recall against delay for every cell and LSTM variant, 3 seeds (42 min "
                 "here; shardable)")
ABLATION_DESCRIPTION = """\
Which part of the LSTM does the remembering? The capacity workflow over another grid: every
cell (rnn, irnn, lstm, gru) and every LSTM variant (tf_model.lstm_variant, and the forget bias
0) at B = {delays}, seeds {seeds}, one queued DVC experiment per point (abl-CELL-bB-sSEED),
resumable and shardable like `rnnlab capacity`. The LSTM's variants keep its units; the GRU
and the RNNs are matched to its parameter count.

Writes reports/ablation/ (summary.json with the paired comparisons, runs.json, curve.csv,
curve.png) and the README's two ablation tables for the default grid only; any other grid
writes reports/ablation-PREFIX/ (or ablation-custom/).

Took 41 min 47 s on this project's 2-core machine with --jobs 2 (90 experiments, a benchmark
running beside it); --shard K/N splits it over machines.""".format(
    delays=", ".join(map(str, ABLATION["delays"])), seeds=", ".join(map(str, ABLATION["seeds"])))


def add_ablation_arguments(parser: argparse.ArgumentParser) -> None:
    """ablation's options (the capacity study's, over the ablation grid)."""
    add_arguments(parser, study="ablation")


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m rnnlab.workflows.capacity` (`rnnlab capacity` builds its own
    from the same add_arguments)."""
    return module_parser("capacity", DESCRIPTION, add_arguments)


def main(argv: list[str] | None = None) -> None:
    module_main(build_parser(), run, argv)


if __name__ == "__main__":
    main()
