"""`make compare`: RNN vs LSTM and random vs identity init as named DVC experiments.

Runs the experiments in the workspace with `dvc exp run -n NAME -S key=value`, replacing older
experiments of the same names, then prints `dvc exp show` (the columns that matter),
`dvc metrics diff` for both pairs, and writes `dvc plots diff rnn lstm` as an offline page.

The experiments that equal the defaults run first; before each other one the workspace is
reset to that baseline with `dvc exp apply`, so every run re-trains only the stages whose
params it changes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from rnnlab.config import read_params, validate
from rnnlab.dvc_cli import describe_failure, dvc, set_args

# name -> overrides (params.yaml key -> value), compared in pairs below.
EXPERIMENTS = {
    "lstm": {"tf_model.cell": "lstm"},
    "rnn": {"tf_model.cell": "rnn", "tf_model.match_params": True},
    "random-init": {"numpy_rnn.init": "random"},
    "irnn": {"numpy_rnn.init": "identity"},
}
PAIRS = [("rnn", "lstm"), ("random-init", "irnn")]
FIGURES = Path("docs/figures")
# Regexes match whole column names; a metric that two files share is named "file:metric".
SHOW_COLUMNS = ("Experiment|.*test_accuracy|.*test_mse_free_running|.*test_mse_one_step|"
                ".*n_params|tf_model.cell|numpy_rnn.init")


def _lookup(params: dict, dotted: str):
    section, key = dotted.split(".")
    return params[section][key]


def run_order(params: dict, experiments: dict[str, dict]) -> list[str]:
    """Experiments equal to the defaults first (they re-run nothing after `dvc repro`)."""
    def changes(name: str) -> int:
        return sum(_lookup(params, k) != v for k, v in experiments[name].items())
    return sorted(experiments, key=changes)


def run_experiments(experiments: dict[str, dict], params: dict) -> None:
    order = run_order(params, experiments)
    for name in order:  # re-running replaces the old experiments of the same names
        dvc("exp", "remove", name, check=False, quiet=True)
    baseline = order[0]
    for name in order:
        if name != baseline:
            dvc("exp", "apply", baseline)
        dvc("exp", "run", "-n", name, *set_args(experiments[name]))
    dvc("exp", "apply", baseline)  # leave the workspace at the defaults


def report(pairs: list[tuple[str, str]], out_dir: str) -> None:
    names = sorted({n for pair in pairs for n in pair})
    keep = ["--drop", ".*", "--keep", SHOW_COLUMNS]
    dvc("exp", "show", "--no-pager", "--hide-workspace", "--md", "--precision", "4", *keep)
    for a, b in pairs:
        dvc("metrics", "diff", a, b, "--precision", "4")
    from rnnlab.plots_page import render

    a, b = pairs[0]
    page = render([a, b], f"{out_dir}/{a}_vs_{b}")
    keep_figures(page.parent, [a])  # b = lstm is the default: the README shows plots/'s figure
    print(f"compare: experiments {', '.join(names)} done; `dvc plots diff {a} {b}` "
          f"(offline page): {page}")


def keep_figures(page_dir: Path, names: list[str], dest: Path = FIGURES) -> None:
    """Copy these experiments' sine extrapolation PNGs out of the plots page into docs/figures,
    where the README shows them (the page itself is a build product, not committed)."""
    from rnnlab.io import atomic_output

    for name in names:
        with atomic_output(dest / f"sine_extrapolation_{name}.png") as tmp:
            tmp.write_bytes((page_dir / "static" / f"{name}_plots_sine_extrapolation.png").read_bytes())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run and compare the rnn/lstm and init experiments.")
    parser.add_argument("--out", default="dvc_plots", help="folder for the plots page")
    args = parser.parse_args(argv)
    from rnnlab.errors import RnnlabError

    try:
        params = validate(read_params())
        run_experiments(EXPERIMENTS, params)
        report(PAIRS, args.out)
    except RnnlabError as exc:
        sys.exit(f"compare: error: {exc}")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"compare: {describe_failure(exc)}")


if __name__ == "__main__":
    main()
