"""`rnnlab papers`: the field's classic long-memory benchmarks, the adding problem and the long
copy task, over cells, sequence lengths T and seeds as queued DVC experiments, each result set
beside the published number or claim it answers (the README's table).

Each grid point (benchmark x cell x T x seed) is one experiment `pap-adding-lstm-t100-s1`:
the benchmark's training stage with the point's params, run by a worker of
rnnlab.workflows.queue as `dvc exp run --temp` would run it, resumable (a point that ran with
today's params and code is not run again) and shardable like `rnnlab capacity` (--shard K/N
--push REMOTE, then --collect REMOTE).

Writes reports/papers/summary.json (every point: mean, min, max and the per-seed values),
reports/papers/runs.json (the grid and its problems) and the README's two tables, for the
default grid only; any other grid writes reports/papers-custom/ (or papers-PREFIX/).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rnnlab.workflows import capacity
from rnnlab.workflows.capacity import experiment_prefix, int_at_least
from rnnlab.workflows.dvc_commands import key_value
from rnnlab.workflows.entry import module_main, module_parser
from rnnlab.workflows.queue import Run
from rnnlab.workflows.readme import refresh_readme

ADDING_BASELINE = 1 / 6  # always answering 1: Var(U1 + U2)
COPY_SYMBOLS, N_SYMBOLS = 10, 8  # Arjovsky et al.: 10 symbols from 8 categories


def copy_baseline(seq_len: int) -> float:
    """Arjovsky et al.'s memoryless cross-entropy on the long copy task of length T (T + 20
    steps): the memory task's memoryless loss at L = 10, B = T - 1."""
    return capacity.memoryless_loss(COPY_SYMBOLS, seq_len - 1, N_SYMBOLS)


def _adding_length(T: int) -> dict:
    return {"adding_task.seq_len": T}


def _tf_copy_length(T: int) -> dict:  # the memory task is the long copy task at L = 10, B = T-1
    return {"memory_task.to_remember_len": COPY_SYMBOLS, "memory_task.blank_separation_len": T - 1}


def _numpy_copy_length(T: int) -> dict:
    return {"copy_task.to_remember_len": COPY_SYMBOLS, "copy_task.blank_separation_len": T - 1}


def _tf_cells(learning_rate_key: str) -> dict[str, dict]:
    """rnn, irnn, lstm, gru as the capacity study sets them (matched parameter counts); the
    IRNN's smaller step moved to this benchmark's training section."""
    cells = {}
    for name in ("rnn", "irnn", "lstm", "gru"):
        settings = {k: v for k, v in capacity.CELLS[name].items() if not k.startswith("tf_memory.")}
        if name == "irnn":
            settings[learning_rate_key] = capacity.CELLS["irnn"]["tf_memory.learning_rate"]
        cells[name] = settings
    return cells


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the grid: the stage that trains and scores a run, what it records, the
    cells it compares and how a run sets its length, its seed and its training budget."""

    stage: str
    record: str                       # the stage's results JSON in the experiment's commit
    cells: dict[str, dict]            # cell name -> its params overrides
    lengths: tuple[int, ...]          # the default grid's T
    at_length: Callable[[int], dict]  # T -> the params overrides that make it
    seed_key: str                     # the model seed (the data seed stays fixed)
    budget: dict                      # training overrides shared by every run
    cost: float                       # relative cost per time step (shard balancing only)


NUMPY_INITS = {init: {"numpy_rnn.init": init} for init in ("gaussian", "identity", "permutation")}
# Budgets: the adding problem 1,500 steps of 100 sequences (150,000 sequences, twice
# Hochreiter's ~74,000 at T = 100); the TF copy task the capacity study's 1,500 steps; the
# numpy RNN its default 8,000 steps of 64.
BENCHMARKS = {
    "adding": Benchmark("train_adding", "results/adding.json", _tf_cells("tf_adding.learning_rate"),
                        (50, 100, 200), _adding_length, "tf_model.seed",
                        {"tf_adding.epochs": 15}, 1.0),
    "copy": Benchmark("train_memory", "results/memory.json", _tf_cells("tf_memory.learning_rate"),
                      (100, 200), _tf_copy_length, "tf_model.seed", {"tf_memory.epochs": 15},
                      1.0),
    "copy_numpy": Benchmark("train_numpy_rnn", "results/numpy_rnn_copy.json", NUMPY_INITS,
                            (100, 200), _numpy_copy_length, "numpy_rnn.seed", {}, 0.6),
}
LABELS = {"rnn": "ReLU RNN (orthogonal init)", "irnn": "IRNN (identity init, lr 1e-3)",
          "lstm": "LSTM", "gru": "GRU", "gaussian": "numpy RNN, gaussian W_hh",
          "identity": "numpy RNN, identity W_hh", "permutation": "numpy RNN, permutation W_hh"}
PREFIX, SEEDS = "pap", (0, 1, 2)
REPORTS = Path("reports")
FOLDER = REPORTS / "papers"
FILES = {"json": "summary.json", "runs": "runs.json"}


def experiment_name(bench: str, cell: str, seq_len: int, seed: int, prefix: str = PREFIX) -> str:
    return f"{prefix}-{bench.replace('_', '')}-{cell}-t{seq_len}-s{seed}"


@dataclass(frozen=True)
class Point:
    bench: str
    cell: str
    seq_len: int
    seed: int


@dataclass(frozen=True)
class Grid:
    """The grid a command line asks for, and where its summary goes."""

    points: tuple[Point, ...]
    overrides: dict
    prefix: str
    folder: Path

    def run_of(self, p: Point) -> Run:
        b = BENCHMARKS[p.bench]
        return Run(experiment_name(p.bench, p.cell, p.seq_len, p.seed, self.prefix),
                   {**b.cells[p.cell], **b.budget, **self.overrides, **b.at_length(p.seq_len),
                    b.seed_key: p.seed}, (b.stage,))

    def runs(self) -> list[Run]:
        """Longest sequences first, so that no worker idles at the end behind a long run."""
        order = sorted(self.points, key=lambda p: (-self.cost(p), p.bench, p.cell, p.seed))
        return [self.run_of(p) for p in order]

    def cost(self, p: Point) -> float:
        return p.seq_len * BENCHMARKS[p.bench].cost


def choose_grid(args: argparse.Namespace) -> Grid:
    """The default grid with the command line's changes (--benchmarks, --lengths, --seeds,
    -S, --prefix); only the default grid unchanged writes reports/papers/ and the README."""
    benches = [b for b in BENCHMARKS if b in (args.benchmarks or BENCHMARKS)]
    seeds = sorted(set(args.seeds)) if args.seeds else list(SEEDS)
    points = tuple(Point(b, cell, T, s) for b in benches for cell in BENCHMARKS[b].cells
                   for T in (sorted(set(args.lengths)) if args.lengths else BENCHMARKS[b].lengths)
                   for s in seeds)
    overrides, prefix = dict(args.set), args.prefix or PREFIX
    default = (benches == list(BENCHMARKS) and not args.lengths and seeds == list(SEEDS)
               and not overrides and prefix == PREFIX)
    folder = FOLDER if default else REPORTS / f"papers-{prefix if prefix != PREFIX else 'custom'}"
    return Grid(points, overrides, prefix, folder)


# What each benchmark's record says, by the name the summary gives it.
METRICS = {"adding": {"mse": "test_mse", "solved": "solved_fraction",
                     "sequences_to_criterion": "sequences_to_criterion",
                     "baseline_mse_measured": "baseline_mse_measured"},
           "copy": {"loss": "test_loss", "accuracy": "test_accuracy"},
           "copy_numpy": {"loss": "test_loss", "accuracy": "test_accuracy"}}


def spread(by_seed: dict[int, float]) -> dict:
    """mean, min, max and n of the seeds' values (None where a value is None: e.g. a run
    that never reached the criterion), with the values by seed."""
    values = [v for v in by_seed.values() if v is not None]
    stats = ({"mean": statistics.fmean(values), "min": min(values), "max": max(values)}
             if values else {"mean": None, "min": None, "max": None})
    return {**stats, "n": len(values), "by_seed": {str(s): v for s, v in by_seed.items()}}


LOSS = {"adding": "mse", "copy": "loss", "copy_numpy": "loss"}  # the metric training lowers
DIVERGED = "training diverged"  # in a run's failure reason: the stage's own NaN/inf stop


def summarise(records: dict[str, dict], grid: Grid,
              problems: dict[str, str] | None = None) -> dict:
    """{bench: {cell: {"t100": {metric: spread}}}} over the seeds that finished, each point
    with its memoryless baseline and the seeds whose training diverged (a result too: the
    claims count such a seed as a loss of infinity; the spreads leave it out)."""
    problems, summary = problems or {}, {}
    points = sorted({(p.bench, p.cell, p.seq_len) for p in grid.points},
                    key=lambda k: (list(BENCHMARKS).index(k[0]),
                                   list(BENCHMARKS[k[0]].cells).index(k[1]), k[2]))
    for bench, cell, T in points:
        seeds = [p.seed for p in grid.points if (p.bench, p.cell, p.seq_len) == (bench, cell, T)]
        names = {s: experiment_name(bench, cell, T, s, grid.prefix) for s in seeds}
        done = {s: records[n] for s, n in names.items() if n in records}
        row = {metric: spread({s: r.get(key) for s, r in done.items()})
               for metric, key in METRICS[bench].items()}
        row["baseline"] = ADDING_BASELINE if bench == "adding" else copy_baseline(T)
        row["n_params"] = next((r["n_params"] for r in done.values()), None)
        row["diverged"] = [s for s, n in names.items() if DIVERGED in problems.get(n, "")]
        row["n_missing"] = len(seeds) - len(done) - len(row["diverged"])
        summary.setdefault(bench, {}).setdefault(cell, {})[f"t{T}"] = row
    return summary


def _per_seed(summary: dict, bench: str, cell: str, T: int, metric: str) -> dict[str, float]:
    """{seed: value} of one point; a seed whose training diverged has an infinite loss."""
    point = summary.get(bench, {}).get(cell, {}).get(f"t{T}")
    if not point:
        return {}
    values = dict(point[metric]["by_seed"])
    if metric == LOSS[bench]:
        values.update({str(s): math.inf for s in point["diverged"]})
    return values


AT_BASELINE = 0.9  # a copy-task loss at or above 0.9 x the memoryless baseline is "at" it
SOLVED_MSE = ADDING_BASELINE / 10  # the adding problem counts as learnt below a tenth of 1/6
ABOUT_AS_WELL = 2.0  # "about as well": a test MSE at most twice the other's, seed by seed
HOCHREITER_SEQUENCES = 74_000  # their count at T = 100, quoted secondhand


def _fmt(stat: dict, digits: int = 3) -> str:
    """mean (min–max, n) of a spread (digits significant; 0: whole numbers with commas), or a
    dash when no seed has a value."""
    if not stat or stat["n"] == 0:
        return "—"

    def number(x: float) -> str:
        return f"{round(x):,}" if digits == 0 else f"{x:.{digits}g}"
    if stat["n"] == 1:
        return f"{number(stat['mean'])} (n=1)"
    return f"{number(stat['mean'])} ({number(stat['min'])}–{number(stat['max'])}, n={stat['n']})"


def _count(flags: list[bool]) -> str:
    return f"{sum(flags)} of {len(flags)}"


def _lengths(summary: dict, bench: str, cell: str) -> list[int]:
    return sorted(int(t[1:]) for t in summary.get(bench, {}).get(cell, {}))


def _paired(summary: dict, bench: str, a: str, b: str, T: int, metric: str):
    """[(a's value, b's value)] for the seeds on which both have one."""
    va, vb = (_per_seed(summary, bench, c, T, metric) for c in (a, b))
    return [(va[s], vb[s]) for s in va if s in vb and None not in (va[s], vb[s])]


def claim_always_one(summary: dict) -> tuple[str, str]:
    rows = summary.get("adding", {})
    points = {T: p["baseline_mse_measured"]["mean"] for cell in rows.values()
              for T, p in ((int(t[1:]), p) for t, p in cell.items())
              if p["baseline_mse_measured"]["n"]}
    ours = "; ".join(f"{v:.4f} at T = {T}" for T, v in sorted(points.items()))
    close = [abs(v - ADDING_BASELINE) < 0.01 for v in points.values()]
    return ours or "—", f"holds on {_count(close)} test sets (within 0.01)" if close else "—"


def claim_hochreiter_count(summary: dict) -> tuple[str, str]:
    stat = summary.get("adding", {}).get("lstm", {}).get("t100", {}).get("sequences_to_criterion")
    if not stat:
        return "—", "—"
    runs = stat["n"] + sum(v is None for v in stat["by_seed"].values())
    ours = (f"test MSE < 0.01 after {_fmt(stat, 0)} training sequences; "
            f"{stat['n']} of {runs} seeds got there within the budget")
    if stat["n"] == 0:
        return ours, "not reached"
    ratio = statistics.median(v for v in stat["by_seed"].values() if v is not None) / \
        HOCHREITER_SEQUENCES
    order = ("within 2x of theirs" if 0.5 <= ratio <= 2 else
             "fewer than half of theirs" if ratio < 0.5 else "more than twice theirs")
    return ours, (f"{order}: the median is {ratio:.2g}x 74,000 (our criterion is the test MSE "
                  f"alone, our optimiser Adam)")


def _loss_text(point: dict, metric: str) -> str:
    """The spread of the seeds that finished, and how many diverged."""
    text = _fmt(point[metric])
    if point["diverged"]:
        n = len(point["diverged"])
        text = (f"diverged on {n}" if text == "—" else f"{text}; diverged on {n} more")
    return text


def _known_values(values: dict[str, float]) -> list[float]:
    return [v for v in values.values() if v is not None]


def claim_irnn_like_lstm(summary: dict) -> tuple[str, str]:
    ours, verdict = [], []
    for T in _lengths(summary, "adding", "irnn"):
        pairs = _paired(summary, "adding", "irnn", "lstm", T, "mse")
        irnn, lstm = (summary["adding"][c][f"t{T}"] for c in ("irnn", "lstm"))
        ours.append(f"T = {T}: {_loss_text(irnn, 'mse')} against {_loss_text(lstm, 'mse')}")
        verdict.append(f"{_count([i <= ABOUT_AS_WELL * m for i, m in pairs])} at T = {T}")
    return "; ".join(ours) or "—", ("IRNN MSE at most 2x the LSTM's, seed by seed (a diverged "
                                    "run fails): " + ", ".join(verdict)) if verdict else "—"


def claim_plain_rnn_fails(summary: dict) -> tuple[str, str]:
    ours, verdict = [], []
    for T in _lengths(summary, "adding", "rnn"):
        ours.append(f"T = {T}: {_loss_text(summary['adding']['rnn'][f't{T}'], 'mse')}")
        values = _known_values(_per_seed(summary, "adding", "rnn", T, "mse"))
        verdict.append(f"{_count([v > SOLVED_MSE for v in values])} at T = {T}")
    return "; ".join(ours) or "—", ("MSE above a tenth of 1/6, or diverged, on "
                                    + ", ".join(verdict) if verdict else "—")


def _copy_claim(bench: str, cell: str, at: bool) -> Callable[[dict], tuple[str, str]]:
    """The copy-task loss of `cell` against the memoryless baseline: at it (`at`) or below."""
    def check(summary: dict) -> tuple[str, str]:
        ours, verdict = [], []
        for T in _lengths(summary, bench, cell):
            point = summary[bench][cell][f"t{T}"]
            values = _known_values(_per_seed(summary, bench, cell, T, "loss"))
            ours.append(f"T = {T}: loss {_loss_text(point, 'loss')}, baseline "
                        f"{point['baseline']:.3f}; recall accuracy {_fmt(point['accuracy'], 2)}")
            verdict.append(_count([(v >= AT_BASELINE * point["baseline"]) == at for v in values])
                           + f" at T = {T}")
        what = "at the baseline (loss ≥ 0.9x it)" if at else "below 0.9x the baseline"
        return "; ".join(ours) or "—", f"{what} on " + ", ".join(verdict) if verdict else "—"
    return check


# (source, the claim or number, how ours is checked): the README's table, in this order.
CLAIMS = [
    ("Hochreiter & Schmidhuber 1997, exp. 4; Le et al. 2015, §4.2",
     "Always answering 1 scores MSE 1/6 ≈ 0.167 on the adding problem", claim_always_one),
    ("Hochreiter & Schmidhuber 1997, exp. 4 (secondhand: not checked against the paper)",
     "The LSTM needs about 74,000 training sequences at T = 100 (mean error < 0.01, the last "
     "2,000 sequences solved)", claim_hochreiter_count),
    ("Le, Jaitly & Hinton 2015, §4.2 (fig. 2)",
     "The IRNN does about as well as the LSTM on the adding problem", claim_irnn_like_lstm),
    ("Le, Jaitly & Hinton 2015, §4.2 (theirs a tanh RNN; ours ReLU, orthogonal init)",
     "A plain RNN fails at long T: it stays near 1/6", claim_plain_rnn_fails),
    ("Arjovsky, Shah & Bengio 2016, §4.1 (fig. 1)",
     "On the long copy task the LSTM stays at the memoryless baseline 10 ln 8 / (T + 20) "
     "(0.173 at T = 100)", _copy_claim("copy", "lstm", at=True)),
    ("this project's question; permutation-like solutions: Henaff, Szlam & LeCun 2016; "
     "Orhan & Pitkow 2020",
     "The numpy RNN with a permutation W_hh goes below the baseline at T = 100 and 200, "
     "where the paper's LSTM does not", _copy_claim("copy_numpy", "permutation", at=False)),
]


def claims_table(summary: dict) -> str:
    lines = ["| source | claim or number | ours (mean (min–max, n seeds)) | holds? |",
             "|---|---|---|---|"]
    for source, claim, check in CLAIMS:
        ours, verdict = check(summary)
        lines.append(f"| {source} | {claim} | {ours} | {verdict} |")
    return "\n".join(lines)


def results_table(summary: dict) -> str:
    """Every point: the benchmark's loss (MSE or cross-entropy) against its baseline, and its
    second number (solved fraction or recall accuracy)."""
    lines = ["| benchmark | cell | parameters | T | loss | memoryless | solved / recall |",
             "|---|---|---:|---:|---|---:|---|"]
    for bench, cells in summary.items():
        loss, second = ("mse", "solved") if bench == "adding" else ("loss", "accuracy")
        what = {"adding": "adding (MSE)", "copy": "long copy, TF (cross-entropy)",
                "copy_numpy": "long copy, numpy (cross-entropy)"}[bench]
        for cell, points in cells.items():
            for t, p in points.items():
                count = f"{p['n_params']:,}" if p["n_params"] else "—"
                lines.append(f"| {what} | {LABELS[cell]} | {count} | {t[1:]} | "
                             f"{_loss_text(p, loss)} | {p['baseline']:.3f} | "
                             f"{_fmt(p[second], 2)} |")
    return "\n".join(lines)


def check_grid_params(runs: list[Run]) -> None:
    """Every run's params as it will see them, validated before anything runs (ConfigError
    naming the key otherwise)."""
    from rnnlab.pipeline.params import read_params, validate
    from rnnlab.workflows.queue import expected_params

    workspace = read_params()
    for run in runs:
        validate(expected_params(workspace, run.overrides))


def read_records(results: dict, problems: dict[str, str], grid: Grid) -> dict[str, dict]:
    """{name: its benchmark's record} of the finished runs; one without it joins `problems`."""
    record_of = {grid.run_of(p).name: BENCHMARKS[p.bench].record for p in grid.points}
    records = {}
    for name, experiment in results.items():
        text = experiment.read(record_of[name])
        if text is None:
            problems[name] = f"finished, but its commit has no {record_of[name]}"
        else:
            records[name] = json.loads(text)
    return records


def papers(args: argparse.Namespace, grid: Grid, prog: str) -> int:
    """The workflow: run (or collect) the grid, read the records, summarise, write."""
    from rnnlab.pipeline.files import write_json

    start = time.perf_counter()
    runs = grid.runs()
    check_grid_params(runs)
    costs = {grid.run_of(p).name: grid.cost(p) for p in grid.points}
    outcome = capacity.run_or_collect(args, runs, lambda run: costs[run.name])
    if outcome is None:
        return 0
    results, problems = outcome
    records = read_records(results, problems, grid)
    if not records:
        sys.exit(f"{prog}: error: no run of the grid finished (reasons above)")
    summary = summarise(records, grid, problems)
    tables = {"papers-table": claims_table(summary), "papers-results": results_table(summary)}
    label = {"committed_study": grid.folder == FOLDER, "prefix": grid.prefix,
             "overrides": grid.overrides, "seconds": round(time.perf_counter() - start)}
    write_json(grid.folder / FILES["runs"], {"grid": label, "problems": problems,
                                             "runs": {r.name: r.overrides for r in runs}})
    write_json(grid.folder / FILES["json"], {"grid": label, "benchmarks": summary})
    if grid.folder == FOLDER:
        refresh_readme(tables, made_by="make papers")
    print("\n\n".join(tables.values()))
    print(f"{prog}: {len(runs)} grid points, {len(records)} finished, {len(problems)} missing "
          f"or failed, in {time.perf_counter() - start:.0f} s; wrote {grid.folder}/")
    return 1 if problems else 0


def run(args: argparse.Namespace) -> int:
    """Run, shard or collect the grid and write its summary; the exit status. Errors end the
    process with one line."""
    return capacity.run_study(args, lambda prog: papers(args, choose_grid(args), prog))


HELP = ("the adding problem and the long copy task beside the papers' numbers (about 65 min "
        "here; shardable)")
DESCRIPTION = """\
The classic long-memory benchmarks, each result beside the published number or claim: the
adding problem (rnn, irnn, lstm, gru at T = 50, 100, 200; MSE against always answering 1,
1/6) and the long copy task (Arjovsky et al. 2016: 10 symbols, T - 1 blanks; the TF cells
and the numpy RNN with gaussian, identity and permutation W_hh at T = 100 and 200;
cross-entropy over all T + 20 steps against 10 ln 8 / (T + 20)), seeds 0, 1, 2, one queued
DVC experiment per point (pap-BENCH-CELL-tT-sSEED), resumable and shardable like
`rnnlab capacity`.

Writes reports/papers/ (summary.json, runs.json) and the README's two tables for the default
grid only; any other grid writes reports/papers-PREFIX/ (or papers-custom/).

Took about 65 min on this project's 2-core machine with --jobs 2, run in two parts (57
experiments in 2475 s, then the 21 copy-task ones at T = 200 in 1395 s); the 12 whose training
diverged (ReLU RNNs at T >= 100) run again each time, about 2.5 min;
--shard K/N splits it over machines."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """papers' options, for `rnnlab papers` and `python -m rnnlab.workflows.papers`."""
    parser.add_argument("--jobs", type=int_at_least(1), default=2, metavar="N",
                        help="parallel queue workers (default 2)")
    parser.add_argument("--benchmarks", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"which benchmarks (of: {', '.join(BENCHMARKS)}; default all)")
    parser.add_argument("--lengths", nargs="+", type=int_at_least(2), metavar="T",
                        help="sequence lengths T for every benchmark chosen (default: adding "
                             "50 100 200, the copy tasks 100 200)")
    parser.add_argument("--seeds", nargs="+", type=int_at_least(0), metavar="SEED",
                        help="model seeds per grid point (default 0 1 2)")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        type=key_value, help="extra params override for every grid point")
    parser.add_argument("--prefix", type=experiment_prefix, metavar="PREFIX",
                        help=f"experiment names PREFIX-BENCH-CELL-tT-sSEED (default {PREFIX}); "
                             "another prefix writes reports/papers-PREFIX/")
    capacity.add_remote_arguments(parser)
    parser.set_defaults(command_name=parser.prog, study="papers")


def build_parser() -> argparse.ArgumentParser:
    return module_parser("papers", DESCRIPTION, add_arguments)


def main(argv: list[str] | None = None) -> None:
    module_main(build_parser(), run, argv)


if __name__ == "__main__":
    main()
