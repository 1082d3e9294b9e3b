"""`rnnlab compare`: the named experiments over seeds, as queued DVC experiments, summarised.

Experiments (each run once per seed as `NAME-sSEED`, every seed key of the stages it runs set to
SEED, so data and model draws change together):

    lstm, rnn                 the TF cells at equal parameter counts (questions 2d, 2f)
    gaussian, identity,       the numpy RNN's W_hh init in the project's training regime
    orthogonal, permutation   (params.yaml: Adam, batch 64, 8,000 steps, clipping at 1)
    sheet-gaussian, ...       the same four in the sheet's own regime (question 1f): plain
                              SGD, batch size 1, learning rate 0.001, 70,000 steps, clipping at 5

Each run's numbers come from its experiment's per-stage records, results/<stem>.json (the
metrics/ files hold only headlines). The summary holds, for every experiment and test metric,
the mean, sample standard deviation, min, max, n, the per-seed values and their seeds; for the
pairs the README compares, on how many of the seeds both sides finished the first beats the
second. Experiments that already ran with the same params and code are not run again.

The committed study (every experiment, seeds 0, 1, 2: the defaults) writes reports/compare.json,
refreshes the README's tables and docs/figures/. Any other selection (--only, another --seeds)
writes reports/compare-custom/ (summary.json and its figures), labelled as not the committed
study, and leaves those alone.

    rnnlab compare [--seeds 3] [--jobs 2] [--only lstm rnn]
    python -m rnnlab.workflows.compare ...      (the same options)
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.choices import RNN_INITS
from rnnlab.errors import RnnlabError
from rnnlab.pipeline.code_deps import upstream_sections
from rnnlab.pipeline.files import atomic_output, write_json, write_png
from rnnlab.pipeline.params import read_params, validate
from rnnlab.workflows.capacity import int_at_least
from rnnlab.workflows.dvc_commands import describe_failure, dvc_output
from rnnlab.workflows.entry import module_main, module_parser
from rnnlab.workflows.readme import refresh_readme
from rnnlab.workflows.queue import Experiment, Run, run_all

# matplotlib (through rnnlab.pipeline.plotting) is imported where it is used: `rnnlab --help`
# builds this module's parser and should not wait a third of a second for it.

TF_STAGES = ("train_sine", "train_memory", "gradient_flow_memory")
NUMPY_STAGES = ("train_numpy_rnn", "gradient_flow_copy")
# The per-stage records (results/<stem>.json, DVC outs) an experiment's stages write.
RESULT_STEMS = {TF_STAGES: ("sine", "memory", "gradient_flow_memory"),
                NUMPY_STAGES: ("numpy_rnn_copy", "gradient_flow_copy")}
# The metrics the summary keeps: every test metric, the parameter count, and how much the
# recall loss's gradient shrinks on its way back (gradient_flow_*.json).
SUMMARISED = re.compile(r"^(test_|n_params$|(init|trained)\.shrink_)")
SHEET_REGIME = {"numpy_rnn.optimizer": "sgd", "numpy_rnn.batch_size": 1,
                "numpy_rnn.learning_rate": 0.001, "numpy_rnn.steps": 70000,
                "numpy_rnn.clip_norm": 5.0}
# name -> (stages it runs, params overrides), in the summary's and the README's order.
EXPERIMENTS = {
    "lstm": (TF_STAGES, {"tf_model.cell": "lstm"}),
    "rnn": (TF_STAGES, {"tf_model.cell": "rnn", "tf_model.rnn_hidden": "matched"}),
    "gru": (TF_STAGES, {"tf_model.cell": "gru", "tf_model.gru_hidden": "matched"}),
    **{f"sheet-{init}": (NUMPY_STAGES, {**SHEET_REGIME, "numpy_rnn.init": init})
       for init in RNN_INITS},
    **{init: (NUMPY_STAGES, {"numpy_rnn.init": init}) for init in RNN_INITS},
}
# The order runs start in, within each seed: the longest first (make compare's logs, 7 December,
# XLA's cache empty: gru 160-170 s of stages, lstm 85-100 s, rnn 65 s, a numpy one 9-17 s).
LONGEST_FIRST = ["gru", "lstm", "rnn"]
# (a, b, metric, higher is better): the comparisons the README states, counted over seeds.
PAIRS = [("lstm", "rnn", "memory.test_accuracy", True),
         ("lstm", "gru", "memory.test_accuracy", True),
         ("gru", "rnn", "memory.test_accuracy", True),
         ("lstm", "gru", "sine.test_mse_free_running", False),
         ("lstm", "rnn", "gradient_flow_memory.trained.shrink_across_blanks", False),
         ("lstm", "rnn", "sine.test_mse_free_running", False),
         ("lstm", "rnn", "sine.test_mse_one_step", False),
         *[(f"{prefix}{a}", f"{prefix}{b}", "numpy_rnn_copy.test_accuracy", True)
           for prefix in ("", "sheet-") for a, b in
           [("identity", "gaussian"), ("permutation", "gaussian"),
            ("permutation", "identity"), ("orthogonal", "gaussian")]]]
DEFAULT_SEEDS = 3  # the committed study: seeds 0, 1, 2
SUMMARY = "reports/compare.json"  # the committed study's summary
CUSTOM = Path("reports/compare-custom")  # any other selection's summary and figures
FIGURES = Path("docs/figures")
HELP = "the named experiments over seeds, summarised (about 11 min for 3 seeds)"
DESCRIPTION = f"""\
Runs each named experiment once per seed as a queued DVC experiment (NAME-sSEED), skipping
those that already ran with the same params and code, and summarises them over seeds: mean,
std, min, max and per-seed values of every test metric, and on how many seeds each comparison
the README states holds.

Writes, for the committed study (all experiments, --seeds {DEFAULT_SEEDS}): {SUMMARY}, the
README's two result tables, docs/figures/gradient_flow.png and
docs/figures/sine_extrapolation_rnn.png. Any other selection (--only, another --seeds)
writes {CUSTOM}/ instead (summary.json and the two figures) and touches none
of those.

Takes about 11 min on this project's 2-core machine for 3 seeds with --jobs 2 (33
experiments, seed by seed, each TensorFlow one run beside numpy ones; from a fresh clone with
an empty XLA cache `make compare` took 640 s on 7 December against 684 s back to back for the
commit before the seed order, 951 s on the slower 6 December), seconds again with nothing
changed."""


def runs_for(names: list[str], seeds: list[int]) -> list[Run]:
    """One Run per experiment and seed; the seeds of every section the stages read follow.

    In the order they start: seed by seed, so that a later seed's TensorFlow run finds its
    compiled steps in XLA's cache rather than compiling them at the same time as the first
    (GRU's train_sine step takes 30 s to compile), and within a seed the longest first, so
    that the sweep does not end on a long run alone."""
    def start_rank(name: str) -> int:
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    params = read_params()
    seeded = {name: [s for s in upstream_sections(list(EXPERIMENTS[name][0]))
                     if "seed" in params[s]] for name in names}
    order = sorted(names, key=start_rank)  # stable: the rest in EXPERIMENTS' order
    return [Run(f"{name}-s{seed}", {**EXPERIMENTS[name][1],
                                    **{f"{s}.seed": seed for s in seeded[name]}},
                EXPERIMENTS[name][0])
            for seed in seeds for name in order]


def spread(values: list[float], seeds: list[int] | None = None) -> dict:
    """mean, sample standard deviation (0 for one value), min, max, n, the values and (given)
    the seed of each value."""
    stats = {"mean": statistics.fmean(values),
             "std": statistics.stdev(values) if len(values) > 1 else 0.0,
             "min": min(values), "max": max(values), "n": len(values), "values": values}
    return stats if seeds is None else {**stats, "seeds": seeds}


def experiment_of(run_name: str) -> str:
    """"sheet-gaussian-s2" -> "sheet-gaussian"."""
    return run_name.rsplit("-s", 1)[0]


def read_records(experiment: Experiment) -> tuple[dict[str, dict], list[str]]:
    """({results/<stem>.json: its JSON}, [the records it lacks]) of a finished run: the
    per-stage records of the stages its experiment runs."""
    stages = EXPERIMENTS[experiment_of(experiment.name)][0]
    found, lacking = {}, []
    for path in (f"results/{stem}.json" for stem in RESULT_STEMS[stages]):
        text = experiment.read(path)
        if text is None:
            lacking.append(path)
        else:
            found[path] = json.loads(text)
    return found, lacking


def per_seed(records: dict[str, dict], name: str, seeds: list[int]) -> dict[str, dict[int, float]]:
    """{"memory.test_accuracy": {seed: value}} for one experiment, over the seeds that
    finished; `records` is {run name: {records file: its JSON}}."""
    stems = set(RESULT_STEMS[EXPERIMENTS[name][0]])
    by_metric: dict[str, dict[int, float]] = {}
    for seed in seeds:
        for path, values in records.get(f"{name}-s{seed}", {}).items():
            stem = Path(path).stem
            if stem not in stems:
                continue
            for metric, value in flatten(values).items():
                if SUMMARISED.match(metric):
                    by_metric.setdefault(f"{stem}.{metric}", {})[seed] = value
    return by_metric


def count_pairs(experiments: dict[str, dict]) -> list[dict]:
    """For each comparison the README states: on how many of the seeds that finished on both
    sides the first beats the second. Seeds are paired by number, never by position: with seeds
    0, 1, 2 on one side and 0, 2 on the other, seeds 0 and 2 are compared."""
    pairs = []
    for a, b, metric, higher in PAIRS:
        stats_a, stats_b = experiments.get(a, {}).get(metric), experiments.get(b, {}).get(metric)
        if not (stats_a and stats_b):
            continue
        by_seed_a = dict(zip(stats_a["seeds"], stats_a["values"], strict=True))
        by_seed_b = dict(zip(stats_b["seeds"], stats_b["values"], strict=True))
        both = sorted(by_seed_a.keys() & by_seed_b.keys())
        holds = sum((by_seed_a[s] > by_seed_b[s]) if higher else (by_seed_a[s] < by_seed_b[s])
                    for s in both)
        pairs.append({"better": a, "than": b, "metric": metric, "seeds": len(both),
                      "holds": holds, "paired_seeds": both})
    return pairs


def summarise(records: dict[str, dict], failures: dict[str, str], names: list[str],
              seeds: list[int], study: dict | None = None) -> dict:
    """The summary from {run name: {records file: its JSON}} of the finished runs; `study`
    labels which selection of experiments and seeds it is."""
    experiments = {}
    for name in names:
        by_metric = per_seed(records, name, seeds)
        experiments[name] = {metric: spread(list(values.values()), list(values))
                             for metric, values in sorted(by_metric.items())}
    summary = {"seeds": seeds, "experiments": experiments, "pairs": count_pairs(experiments),
               "failures": failures}
    return summary if study is None else {"study": study, **summary}


def flatten(values: dict, prefix: str = "") -> dict[str, float]:
    """{"trained": {"shrink_across_blanks": 1.0}} -> {"trained.shrink_across_blanks": 1.0}."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def _fmt(stat: dict, digits: int) -> str:
    if stat["n"] == 0:
        return "—"
    return f"{stat['mean']:.{digits}g} ± {stat['std']:.1g} (n={stat['n']})"


COPY, MEMORY = ("copy task, L = 13", "numpy_rnn_copy.test_accuracy"), \
    ("memory task, L = 8, B = 5", "memory.test_accuracy")
LSTM, RNN = "TF `MyLSTMCell`", "TF ReLU RNN, parameter-matched"
GRU = "TF `MyGRUCell`, parameter-matched"
TABLE_ROWS = [  # (experiment, what it is, task, metric, significant digits)
    ("permutation", "numpy RNN, `init: permutation` (the default)", *COPY, 3),
    ("identity", "numpy RNN, `init: identity` (IRNN)", *COPY, 3),
    ("gaussian", "numpy RNN, `init: gaussian` (the sheet's random init)", *COPY, 3),
    ("orthogonal", "numpy RNN, `init: orthogonal` (Haar)", *COPY, 3),
    ("sheet-identity", "numpy RNN, identity, the sheet's regime", *COPY, 3),
    ("sheet-gaussian", "numpy RNN, gaussian, the sheet's regime", *COPY, 3),
    ("sheet-orthogonal", "numpy RNN, orthogonal, the sheet's regime", *COPY, 3),
    ("sheet-permutation", "numpy RNN, permutation, the sheet's regime", *COPY, 3),
    ("lstm", LSTM, *MEMORY, 3),
    ("rnn", RNN, *MEMORY, 3),
    ("gru", GRU, *MEMORY, 3),
    ("lstm", LSTM, "sine, free-running MSE", "sine.test_mse_free_running", 2),
    ("rnn", RNN, "sine, free-running MSE", "sine.test_mse_free_running", 2),
    ("gru", GRU, "sine, free-running MSE", "sine.test_mse_free_running", 2),
    ("lstm", LSTM, "sine, one-step MSE", "sine.test_mse_one_step", 2),
    ("rnn", RNN, "sine, one-step MSE", "sine.test_mse_one_step", 2),
    ("gru", GRU, "sine, one-step MSE", "sine.test_mse_one_step", 2),
]


GRADIENT_ROWS = [  # (experiment, what it is, task, metric, significant digits)
    (name, label, f"{task}, {when}", f"{metric_file}.{when}.{ratio}", 3)
    for name, label, task, metric_file in [
        ("lstm", LSTM, "memory task", "gradient_flow_memory"),
        ("rnn", RNN, "memory task", "gradient_flow_memory"),
        ("gru", GRU, "memory task", "gradient_flow_memory"),
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


def keep_rnn_sine_figure(seed: int, figures: Path,
                         out_dir: str = "dvc_plots/rnn_vs_lstm") -> Path:
    """`dvc plots diff rnn-sS lstm-sS` as an offline page (the plots template), and the RNN's
    sine figure from it copied to `figures` (docs/figures for the README)."""
    a, b = f"rnn-s{seed}", f"lstm-s{seed}"
    dvc_output("plots", "diff", a, b, "-o", out_dir, check=True)
    with atomic_output(figures / "sine_extrapolation_rnn.png") as tmp:
        page_figure = Path(out_dir) / "static" / f"{a}_plots_sine_extrapolation.png"
        tmp.write_bytes(page_figure.read_bytes())
    return Path(out_dir) / "index.html"


GRADIENT_FIGURE = {  # panel title -> (the gradient-flow stage's plot data, {experiment: label})
    "memory task, L = 8, B = 5 (TF cells, equal parameters)":
        ("plots/gradient_flow_memory.csv", {"lstm": "MyLSTMCell", "gru": "MyGRUCell",
                                            "rnn": "ReLU RNN"}),
    "copy task, L = 13 (numpy RNN, project's regime)":
        ("plots/gradient_flow_copy.csv", {"permutation": "permutation", "identity": "identity",
                                          "gaussian": "gaussian"}),
}


def gradient_flow_figure(results: dict, seeds: list[int], figures: Path = FIGURES) -> Path | None:
    """figures/gradient_flow.png: each model's ||dL/dh_t|| per step, the geometric mean over
    the seeds that finished, from the plot data of the experiments' gradient-flow stages."""
    from rnnlab.pipeline import plotting

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
    write_png(figures / "gradient_flow.png", plotting.gradient_flow(panels))
    return figures / "gradient_flow.png"


@dataclass(frozen=True)
class Outputs:
    """Where one compare run writes, and the label its summary carries."""

    summary: Path
    figures: Path
    refresh_readme: bool
    study: dict


def outputs_for(names: list[str], seeds: list[int], json_path: str | None = None) -> Outputs:
    """The committed study (every experiment, seeds 0..DEFAULT_SEEDS-1) writes reports/ and
    docs/figures/ and refreshes the README; any other selection writes reports/compare-custom/
    only, so that trying a subset never overwrites the committed results. --json moves the
    summary alone (and then the README is left alone too)."""
    if names == list(EXPERIMENTS) and seeds == list(range(DEFAULT_SEEDS)):
        study = {"committed": True, "note": "the committed study: every experiment over seeds "
                 f"0..{DEFAULT_SEEDS - 1} (the README's tables)"}
        summary, figures = Path(SUMMARY), FIGURES
    else:
        study = {"committed": False, "experiments": names,
                 "note": f"not the committed study ({SUMMARY}): experiments "
                         f"{', '.join(names)} over seeds 0..{seeds[-1]}"}
        summary, figures = CUSTOM / "summary.json", CUSTOM
    if json_path:
        summary = Path(json_path)
    return Outputs(summary, figures, study["committed"] and summary == Path(SUMMARY), study)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """compare's options, for `rnnlab compare` and `python -m rnnlab.workflows.compare`."""
    parser.add_argument("--seeds", type=int_at_least(1), default=DEFAULT_SEEDS, metavar="N",
                        help=f"how many seeds per experiment: seeds 0..N-1 (default "
                             f"{DEFAULT_SEEDS}, the committed study)")
    parser.add_argument("--jobs", type=int_at_least(1), default=2, metavar="N",
                        help="parallel queue workers (default 2)")
    parser.add_argument("--only", nargs="+", choices=list(EXPERIMENTS), metavar="NAME",
                        help=f"run only these experiments (of: {', '.join(EXPERIMENTS)}); "
                             f"the summary goes to {CUSTOM}/")
    parser.add_argument("--json", metavar="PATH",
                        help="write the summary to PATH instead (the README is then not "
                             "refreshed)")
    parser.set_defaults(command_name=parser.prog)


def run(args: argparse.Namespace) -> int:
    """Run (or reuse) the experiments and write the summary; the exit status (1 if a run
    failed). Errors end the process with one line."""
    prog = getattr(args, "command_name", "compare")
    names = [name for name in EXPERIMENTS if name in (args.only or EXPERIMENTS)]
    seeds = list(range(args.seeds))
    try:
        return compare(names, seeds, args.jobs, outputs_for(names, seeds, args.json))
    except KeyboardInterrupt:
        sys.exit(f"{prog}: interrupted; the queue is stopped and this run's queued "
                 "experiments removed")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{prog}: error: {describe_failure(exc)}")
    except (RnnlabError, RuntimeError, OSError) as exc:
        sys.exit(f"{prog}: error: {exc}")


def compare(names: list[str], seeds: list[int], jobs: int, outputs: Outputs) -> int:
    """The workflow: run, read each run's records, summarise, write; the exit status."""
    validate(read_params())
    results, failures, current = run_all(runs_for(names, seeds), jobs, "compare")
    records = {}
    for run_name, experiment in results.items():
        records[run_name], lacking = read_records(experiment)
        if lacking:  # e.g. an experiment from before the records moved to results/
            failures[run_name] = f"finished, but its commit has no {', '.join(lacking)}"
    for name, reason in failures.items():
        print(f"compare: {name}: {reason}", file=sys.stderr)
    summary = summarise(records, failures, names, seeds, outputs.study)
    write_json(outputs.summary, summary)
    print_summary(summary, outputs)
    figure = gradient_flow_figure(results, seeds, outputs.figures)
    if figure:
        print(f"compare: wrote {figure}")
    if "rnn" in names and "lstm" in names and f"rnn-s{seeds[0]}" in results:
        page = keep_rnn_sine_figure(seeds[0], outputs.figures)
        print(f"compare: `dvc plots diff rnn-s{seeds[0]} lstm-s{seeds[0]}`: {page}")
    print(f"compare: {len(results)} experiments ({len(current)} already current, "
          f"{len(failures)} failed); wrote {outputs.summary}")
    return 1 if failures else 0


def print_summary(summary: dict, outputs: Outputs) -> None:
    """The two tables (into the README too, for the committed study) and the pair counts."""
    tables = {"results-table": results_table(summary), "gradient-table": gradient_table(summary)}
    if outputs.refresh_readme:
        refresh_readme(tables)
    print("\n\n".join(tables.values()))
    for pair in summary["pairs"]:
        print(f"compare: {pair['better']} beats {pair['than']} on {pair['metric']} in "
              f"{pair['holds']} of {pair['seeds']} seeds")


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m rnnlab.workflows.compare` (`rnnlab compare` builds its own
    from the same add_arguments)."""
    return module_parser("compare", DESCRIPTION, add_arguments)


def main(argv: list[str] | None = None) -> None:
    module_main(build_parser(), run, argv)


if __name__ == "__main__":
    main()
