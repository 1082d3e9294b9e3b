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
import io
import re
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from rnnlab.choices import RNN_INITS
from rnnlab.errors import RnnlabError
from rnnlab.pipeline.code_deps import upstream_sections
from rnnlab.pipeline import plotting
from rnnlab.pipeline.files import atomic_output, write_json, write_png, write_text
from rnnlab.pipeline.params import read_params, validate
from rnnlab.workflows.dvc_commands import describe_failure, dvc_output
from rnnlab.workflows.queue import Run, run_all

TF_STAGES = ("train_sine", "train_memory", "gradient_flow_memory")
NUMPY_STAGES = ("train_numpy_rnn", "gradient_flow_copy")
# The metrics compare.json summarises: every test metric, the parameter count, and how much
# the recall loss's gradient shrinks on its way back (gradient_flow_*.json).
SUMMARISED = re.compile(r"^(test_|n_params$|(init|trained)\.shrink_)")
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
         ("lstm", "rnn", "gradient_flow_memory.trained.shrink_across_blanks", False),
         ("lstm", "rnn", "sine.test_mse_free_running", False),
         ("lstm", "rnn", "sine.test_mse_one_step", False),
         *[(a, b, "numpy_rnn_copy.test_accuracy", True)
           for prefix in ("", "sheet-") for a, b in
           [(f"{prefix}identity", f"{prefix}gaussian"), (f"{prefix}permutation", f"{prefix}gaussian"),
            (f"{prefix}permutation", f"{prefix}identity"), (f"{prefix}orthogonal", f"{prefix}gaussian")]]]
SUMMARY = "metrics/compare.json"
README = Path("README.md")
MARKERS = {name: (f"<!-- {name}: made by make compare -->", f"<!-- /{name} -->")
           for name in ("results-table", "gradient-table")}
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
    """compare.json from {run name: {metrics file: its JSON}} of the finished runs."""
    experiments = {}
    for name in names:
        per_metric: dict[str, list[float]] = {}
        for seed in seeds:
            for path, values in results.get(f"{name}-s{seed}", {}).items():
                stem = Path(path).stem
                if stem not in _metric_files(name):
                    continue
                for metric, value in flatten(values).items():
                    if SUMMARISED.match(metric):
                        per_metric.setdefault(f"{stem}.{metric}", []).append(value)
        experiments[name] = {metric: spread(values) for metric, values in sorted(per_metric.items())}
    pairs = []
    for a, b, metric, higher in PAIRS:
        if a in experiments and b in experiments and metric in experiments[a] and metric in experiments[b]:
            va, vb = experiments[a][metric]["values"], experiments[b][metric]["values"]
            wins = sum((x > y) if higher else (x < y) for x, y in zip(va, vb))
            pairs.append({"better": a, "than": b, "metric": metric, "seeds": len(va), "holds": wins})
    return {"seeds": seeds, "experiments": experiments, "pairs": pairs, "failures": failures}


def flatten(values: dict, prefix: str = "") -> dict[str, float]:
    """{"trained": {"shrink_across_blanks": 1.0}} -> {"trained.shrink_across_blanks": 1.0}."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def _metric_files(name: str) -> set[str]:
    if EXPERIMENTS[name][0] == TF_STAGES:
        return {"sine", "memory", "gradient_flow_memory"}
    return {"numpy_rnn_copy", "gradient_flow_copy"}


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


GRADIENT_ROWS = [  # (experiment, what it is, task, metric, significant digits)
    (name, label, f"{task}, {when}", f"{metric_file}.{when}.{ratio}", 3)
    for name, label, task, metric_file in [
        ("lstm", "TF `MyLSTMCell`", "memory task", "gradient_flow_memory"),
        ("rnn", "TF ReLU RNN, parameter-matched", "memory task", "gradient_flow_memory"),
        ("permutation", "numpy RNN, `init: permutation`", "copy task", "gradient_flow_copy"),
        ("identity", "numpy RNN, `init: identity`", "copy task", "gradient_flow_copy"),
        ("gaussian", "numpy RNN, `init: gaussian`", "copy task", "gradient_flow_copy")]
    for when in ("init", "trained")
    for ratio in (["shrink_across_blanks"] if metric_file == "gradient_flow_memory"
                  else ["shrink_to_first_symbol"])]


MODEL_FILE = {"gradient_flow_memory": "memory", "gradient_flow_copy": "numpy_rnn_copy"}


def markdown_table(summary: dict, rows: list[tuple], header: str) -> str:
    """Rows (experiment, label, task, metric, digits) as mean ± sample std over the seeds (n),
    with the parameter count of the experiment's model where there is one."""
    lines = [f"| model | {header} | parameters | mean ± std (n seeds) |", "|---|---|---:|---|"]
    for name, label, task, metric, digits in rows:
        stats = summary["experiments"].get(name, {})
        if metric not in stats:
            continue
        model_file = MODEL_FILE.get(metric.split(".")[0], metric.split(".")[0])
        count = stats.get(f"{model_file}.n_params")
        params = f"{count['values'][0]:,}" if count else ""
        lines.append(f"| {label} | {task} | {params} | {_fmt(stats[metric], digits)} |")
    return "\n".join(lines)


def results_table(summary: dict) -> str:
    """The README's results table."""
    return markdown_table(summary, TABLE_ROWS, "task: test result")


def gradient_table(summary: dict) -> str:
    """How many times ||dL/dh_t|| shrinks going back, at initialisation and after training."""
    return markdown_table(summary, GRADIENT_ROWS, "task, when: ||dL/dh_t|| shrinks by")


def refresh_readme(tables: dict[str, str], readme: Path = README) -> None:
    """Put each table between its markers in the README (where it has them)."""
    text = readme.read_text()
    for name, table in tables.items():
        start, end = MARKERS[name]
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
        text = pattern.sub(lambda _: f"{start}\n{table}\n{end}", text)
    write_text(readme, text)


def keep_rnn_sine_figure(seed: int, out_dir: str = "dvc_plots/rnn_vs_lstm") -> Path:
    """`dvc plots diff rnn-sS lstm-sS` as an offline page (the plots template), and the RNN's
    sine figure from it copied to docs/figures for the README."""
    a, b = f"rnn-s{seed}", f"lstm-s{seed}"
    dvc_output("plots", "diff", a, b, "-o", out_dir, check=True)
    with atomic_output(FIGURES / "sine_extrapolation_rnn.png") as tmp:
        tmp.write_bytes((Path(out_dir) / "static" / f"{a}_plots_sine_extrapolation.png").read_bytes())
    return Path(out_dir) / "index.html"


GRADIENT_FIGURE = {  # panel title -> (the gradient-flow stage's plot data, {experiment: label})
    "memory task, L = 8, B = 5 (TF cells, equal parameters)":
        ("plots/gradient_flow_memory.csv", {"lstm": "MyLSTMCell", "rnn": "ReLU RNN"}),
    "copy task, L = 13 (numpy RNN, project's regime)":
        ("plots/gradient_flow_copy.csv", {"permutation": "permutation", "identity": "identity",
                                          "gaussian": "gaussian"}),
}


def gradient_flow_figure(results: dict, seeds: list[int]) -> Path | None:
    """docs/figures/gradient_flow.png: each model's ||dL/dh_t|| per step, the geometric mean
    over the seeds that finished, from the plot data of the experiments' gradient-flow stages."""
    panels = {}
    for title, (path, labels) in GRADIENT_FIGURE.items():
        curves = {}
        for name, label in labels.items():
            texts = [results[run].read(path) for run in (f"{name}-s{s}" for s in seeds)
                     if run in results]
            tables = [np.genfromtxt(io.StringIO(t), delimiter=",", names=True) for t in texts if t]
            if tables:
                curves[f"{label} (n={len(tables)})"] = {"distance": tables[0]["distance"], **{
                    when: 10 ** np.mean([t[f"log10_grad_norm_{when}"] for t in tables], axis=0)
                    for when in ("init", "trained")}}
        if curves:
            panels[title] = curves
    if not panels:
        return None
    write_png(FIGURES / "gradient_flow.png", plotting.gradient_flow(panels))
    return FIGURES / "gradient_flow.png"


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
    except (RnnlabError, RuntimeError) as exc:
        sys.exit(f"compare: error: {exc}")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"compare: {describe_failure(exc)}")
    except KeyboardInterrupt:
        sys.exit("compare: interrupted; the queue is stopped and this run's queued experiments removed")
    for name, reason in failures.items():
        print(f"compare: {name}: {reason}", file=sys.stderr)
    summary = summarise({name: exp.metrics() for name, exp in results.items()}, failures,
                        names, seeds)
    write_json(args.json, summary)
    tables = {"results-table": results_table(summary), "gradient-table": gradient_table(summary)}
    if args.json == SUMMARY and not args.only:
        refresh_readme(tables)
    print("\n\n".join(tables.values()))
    for pair in summary["pairs"]:
        print(f"compare: {pair['better']} beats {pair['than']} on {pair['metric']} in "
              f"{pair['holds']} of {pair['seeds']} seeds")
    figure = gradient_flow_figure(results, seeds)
    if figure:
        print(f"compare: wrote {figure}")
    if "rnn" in names and "lstm" in names and f"rnn-s{seeds[0]}" in results:
        page = keep_rnn_sine_figure(seeds[0])
        print(f"compare: `dvc plots diff rnn-s{seeds[0]} lstm-s{seeds[0]}`: {page}")
    print(f"compare: {len(results)} experiments ({len(current)} already current, "
          f"{len(failures)} failed); wrote {args.json}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
