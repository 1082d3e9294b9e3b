"""`make compare`: the named experiments over seeds, as queued DVC experiments, summarised.

Experiments (each run once per seed as `NAME-sSEED`, every seed key of the stages it runs set to
SEED, so data and model draws change together):

    lstm, rnn                 the TF cells at equal parameter counts (questions 2d, 2f)
    gaussian, identity,       the numpy RNN's W_hh init in the project's training regime
    orthogonal, permutation   (params.yaml: Adam, batch 64, 8,000 steps, clipping at 1)
    sheet-gaussian, ...       the same four in the sheet's own regime (question 1f): plain
                              SGD, batch size 1, learning rate 0.001, 70,000 steps, clipping at 5

Writes metrics/compare.json: for every experiment and test metric the mean, sample standard
deviation, min, max, n and the per-seed values; for the pairs the README compares, on how many
seeds the first beats the second. Refreshes the README's results table from it. Experiments that
already ran on this commit with the same params and code are not run again.

    python -m rnnlab.workflows.compare [--seeds 3] [--jobs 2] [--only lstm rnn]
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

from rnnlab.choices import RNN_INITS
from rnnlab.errors import RnnlabError
from rnnlab.pipeline.code_deps import upstream_sections
from rnnlab.pipeline.files import atomic_output, write_json, write_text
from rnnlab.pipeline.params import read_params, validate
from rnnlab.workflows.dvc_commands import describe_failure, dvc_output
from rnnlab.workflows.queue import Run, metrics_of, run_all

TF_STAGES = ("train_sine", "train_memory")
NUMPY_STAGES = ("train_numpy_rnn",)
SHEET_REGIME = {"numpy_rnn.optimizer": "sgd", "numpy_rnn.batch_size": 1,
                "numpy_rnn.learning_rate": 0.001, "numpy_rnn.steps": 70000,
                "numpy_rnn.clip_norm": 5.0}
# name -> (stages it runs, params overrides); TF experiments first: they take longest.
EXPERIMENTS = {
    "lstm": (TF_STAGES, {"tf_model.cell": "lstm"}),
    "rnn": (TF_STAGES, {"tf_model.cell": "rnn", "tf_model.rnn_hidden": "matched"}),
    **{f"sheet-{init}": (NUMPY_STAGES, {**SHEET_REGIME, "numpy_rnn.init": init})
       for init in RNN_INITS},
    **{init: (NUMPY_STAGES, {"numpy_rnn.init": init}) for init in RNN_INITS},
}
# (a, b, metric, higher is better): the comparisons the README states, counted over seeds.
PAIRS = [("lstm", "rnn", "memory.test_accuracy", True),
         ("lstm", "rnn", "sine.test_mse_free_running", False),
         ("lstm", "rnn", "sine.test_mse_one_step", False),
         *[(a, b, "numpy_rnn_copy.test_accuracy", True)
           for prefix in ("", "sheet-") for a, b in
           [(f"{prefix}identity", f"{prefix}gaussian"), (f"{prefix}permutation", f"{prefix}gaussian"),
            (f"{prefix}permutation", f"{prefix}identity"), (f"{prefix}orthogonal", f"{prefix}gaussian")]]]
SUMMARY = "metrics/compare.json"
README = Path("README.md")
TABLE_START, TABLE_END = "<!-- compare-table: made by make compare -->", "<!-- /compare-table -->"
FIGURES = Path("docs/figures")


def runs_for(names: list[str], seeds: list[int]) -> list[Run]:
    """One Run per experiment and seed; the seeds of every section the stages read follow."""
    runs = []
    for name in names:
        stages, overrides = EXPERIMENTS[name]
        seeded = [s for s in upstream_sections(list(stages)) if "seed" in read_params()[s]]
        for seed in seeds:
            runs.append(Run(f"{name}-s{seed}", {**overrides, **{f"{s}.seed": seed for s in seeded}},
                            stages))
    return runs


def spread(values: list[float]) -> dict:
    """mean, sample standard deviation (0 for one value), min, max, n and the values."""
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values), "values": values}


def summarise(results: dict[str, dict], failures: dict[str, str], names: list[str],
              seeds: list[int]) -> dict:
    """compare.json from the runs' `dvc exp show` data."""
    experiments = {}
    for name in names:
        per_metric: dict[str, list[float]] = {}
        for seed in seeds:
            for path, values in metrics_of(results.get(f"{name}-s{seed}", {})).items():
                stem = Path(path).stem
                if stem not in _metric_files(name):
                    continue
                for metric, value in values.items():
                    if metric.startswith("test_") or metric == "n_params":
                        per_metric.setdefault(f"{stem}.{metric}", []).append(value)
        experiments[name] = {metric: spread(values) for metric, values in sorted(per_metric.items())}
    pairs = []
    for a, b, metric, higher in PAIRS:
        if a in experiments and b in experiments and metric in experiments[a] and metric in experiments[b]:
            va, vb = experiments[a][metric]["values"], experiments[b][metric]["values"]
            wins = sum((x > y) if higher else (x < y) for x, y in zip(va, vb))
            pairs.append({"better": a, "than": b, "metric": metric, "seeds": len(va), "holds": wins})
    return {"seeds": seeds, "experiments": experiments, "pairs": pairs, "failures": failures}


def _metric_files(name: str) -> set[str]:
    return {"sine", "memory"} if EXPERIMENTS[name][0] == TF_STAGES else {"numpy_rnn_copy"}


def _fmt(stat: dict, digits: int) -> str:
    if stat["n"] == 0:
        return "—"
    return f"{stat['mean']:.{digits}g} ± {stat['std']:.1g} (n={stat['n']})"


TABLE_ROWS = [  # (experiment, what it is, task, metric, significant digits)
    ("permutation", "numpy RNN, `init: permutation` (the default)", "copy task, L = 13", "numpy_rnn_copy.test_accuracy", 3),
    ("identity", "numpy RNN, `init: identity` (IRNN)", "copy task, L = 13", "numpy_rnn_copy.test_accuracy", 3),
    ("gaussian", "numpy RNN, `init: gaussian` (the sheet's random init)", "copy task, L = 13", "numpy_rnn_copy.test_accuracy", 3),
    ("orthogonal", "numpy RNN, `init: orthogonal` (Haar)", "copy task, L = 13", "numpy_rnn_copy.test_accuracy", 3),
    ("sheet-identity", "numpy RNN, identity, the sheet's regime", "copy task, L = 13", "numpy_rnn_copy.test_accuracy", 3),
    ("sheet-gaussian", "numpy RNN, gaussian, the sheet's regime", "copy task, L = 13", "numpy_rnn_copy.test_accuracy", 3),
    ("sheet-orthogonal", "numpy RNN, orthogonal, the sheet's regime", "copy task, L = 13", "numpy_rnn_copy.test_accuracy", 3),
    ("sheet-permutation", "numpy RNN, permutation, the sheet's regime", "copy task, L = 13", "numpy_rnn_copy.test_accuracy", 3),
    ("lstm", "TF `MyLSTMCell`", "memory task, L = 8, B = 5", "memory.test_accuracy", 3),
    ("rnn", "TF ReLU RNN, parameter-matched", "memory task, L = 8, B = 5", "memory.test_accuracy", 3),
    ("lstm", "TF `MyLSTMCell`", "sine, free-running MSE", "sine.test_mse_free_running", 2),
    ("rnn", "TF ReLU RNN, parameter-matched", "sine, free-running MSE", "sine.test_mse_free_running", 2),
    ("lstm", "TF `MyLSTMCell`", "sine, one-step MSE", "sine.test_mse_one_step", 2),
    ("rnn", "TF ReLU RNN, parameter-matched", "sine, one-step MSE", "sine.test_mse_one_step", 2),
]


def results_table(summary: dict) -> str:
    """The README's results table: mean ± sample std over the seeds (n), with parameter counts."""
    lines = ["| model | task | parameters | test result, mean ± std (n seeds) |",
             "|---|---|---:|---|"]
    for name, label, task, metric, digits in TABLE_ROWS:
        stats = summary["experiments"].get(name, {})
        if metric not in stats:
            continue
        params = stats.get(f"{metric.split('.')[0]}.n_params", {}).get("values", [None])[0]
        lines.append(f"| {label} | {task} | {params:,} | {_fmt(stats[metric], digits)} |")
    return "\n".join(lines)


def refresh_readme(table: str, readme: Path = README) -> None:
    """Put `table` between the README's compare-table markers (if it has them)."""
    text = readme.read_text()
    pattern = re.compile(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), re.DOTALL)
    if pattern.search(text):
        write_text(readme, pattern.sub(lambda _: f"{TABLE_START}\n{table}\n{TABLE_END}", text))


def keep_rnn_sine_figure(seed: int, out_dir: str = "dvc_plots/rnn_vs_lstm") -> Path:
    """`dvc plots diff rnn-sS lstm-sS` as an offline page (the plots template), and the RNN's
    sine figure from it copied to docs/figures for the README."""
    a, b = f"rnn-s{seed}", f"lstm-s{seed}"
    dvc_output("plots", "diff", a, b, "-o", out_dir, check=True)
    with atomic_output(FIGURES / "sine_extrapolation_rnn.png") as tmp:
        tmp.write_bytes((Path(out_dir) / "static" / f"{a}_plots_sine_extrapolation.png").read_bytes())
    return Path(out_dir) / "index.html"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per experiment (0..N-1)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel queue workers")
    parser.add_argument("--only", nargs="+", choices=list(EXPERIMENTS), help="a subset")
    parser.add_argument("--json", default=SUMMARY)
    args = parser.parse_args(argv)
    names, seeds = args.only or list(EXPERIMENTS), list(range(args.seeds))
    try:
        validate(read_params())
        results, failures, current = run_all(runs_for(names, seeds), args.jobs, "compare")
    except RnnlabError as exc:
        sys.exit(f"compare: error: {exc}")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"compare: {describe_failure(exc)}")
    except KeyboardInterrupt:
        sys.exit("compare: interrupted; the queue is stopped and this run's queued experiments removed")
    for name, reason in failures.items():
        print(f"compare: {name}: {reason}", file=sys.stderr)
    summary = summarise(results, failures, names, seeds)
    write_json(args.json, summary)
    table = results_table(summary)
    if args.json == SUMMARY and not args.only:
        refresh_readme(table)
    print(table)
    for pair in summary["pairs"]:
        print(f"compare: {pair['better']} beats {pair['than']} on {pair['metric']} in "
              f"{pair['holds']} of {pair['seeds']} seeds")
    if "rnn" in names and "lstm" in names and f"rnn-s{seeds[0]}" in results:
        page = keep_rnn_sine_figure(seeds[0])
        print(f"compare: `dvc plots diff rnn-s{seeds[0]} lstm-s{seeds[0]}`: {page}")
    print(f"compare: {len(results)} experiments ({len(current)} already current, "
          f"{len(failures)} failed); wrote {args.json}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
