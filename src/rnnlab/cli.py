"""`rnnlab`: the project's workflows as one command (the console script; `python -m rnnlab.cli`).

    rnnlab compare [--seeds N] [--jobs N] [--only NAME ...]     rnnlab.workflows.compare
    rnnlab capacity [--jobs N] [--quick] [--shard K/N] ...       rnnlab.workflows.capacity
    rnnlab ablation [--jobs N] [--shard K/N] ...                 the same, its ablation grid
    rnnlab papers [--jobs N] [--shard K/N] ...                   rnnlab.workflows.papers
    rnnlab bench [run.py's options]                              benchmarks/run.py
    rnnlab deps [code_deps's options]                            rnnlab.pipeline.code_deps
    rnnlab plots-template                                        rnnlab.workflows.plots_template
    rnnlab xla-cache [--max-mib N] [--dry-run] [--quiet]         rnnlab.xla_cache

compare and capacity build their options from the same add_arguments as their
`python -m rnnlab.workflows.<name>`, so both spellings take the same options. Every command runs
in the current directory, which must be an rnnlab checkout (dvc.yaml, params.yaml).
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
from pathlib import Path
from typing import Callable

from rnnlab import xla_cache
from rnnlab.workflows import capacity, compare, papers

BENCH_SCRIPT = Path("benchmarks/run.py")
FORMATTER = argparse.RawDescriptionHelpFormatter

BENCH_HELP = "rnnlab's speed against Keras into benchmarks/RESULTS.md (about 35 min)"
BENCH_DESCRIPTION = f"""\
Runs {BENCH_SCRIPT} of the checkout in the current directory with this interpreter: the
numpy RNN's and MyLSTMCell's training steps against Keras on the same shapes, the LSTM core's
layout variants, cost against sequence length and width, time to accuracy, and where a queued
sweep experiment's time goes (4 small DVC experiments in a temporary clone), and how two sweep
runs side by side share the machine.

Writes benchmarks/RESULTS.md above its "<!-- notes -->" marker (--no-write: print only). Any
other option goes to run.py as it is: --repeats N, --skip-accuracy, --skip-sizes, --quick-sizes,
--no-verify, --skip-choices, --skip-sweep, --skip-contention (see `python benchmarks/run.py
--help`).

Takes about 35 min on this project's 2-core machine: `make bench` took 33 min 37 s from
05:22 UTC on 6 December, a slow day, with Keras timed both plain and XLA-compiled; the size
sweep and the sweep breakdown are the longest parts, and the --skip-* options leave them
out. Numbers, not a test: other work on the machine changes them."""

DEPS_HELP = "check that dvc.yaml tracks exactly the code each stage runs (a second)"
DEPS_DESCRIPTION = """\
Runs rnnlab.pipeline.code_deps: derives each stage's code from its script's imports (with ast,
nothing is imported) and checks dvc.yaml's wiring against it; exit 1 with one line per problem.
Writes nothing unless one of code_deps's own options says so (today --write: the fingerprints,
data/code/*.txt); every option goes to it as it is (`python -m rnnlab.pipeline.code_deps -h`).

Takes about a second."""

PLOTS_TEMPLATE_HELP = "the offline page template for `dvc plots show` (a few seconds)"
PLOTS_TEMPLATE_DESCRIPTION = """\
Writes .dvc/tmp/rnnlab_plots_template.html (Vega, Vega-Lite and Vega-Embed inlined from the
installed vl-convert-python) and sets it as plots.html_template in .dvc/config.local, so that
plain `dvc plots show` and `dvc plots diff` render with no network. `make setup` runs it.

Takes a few seconds."""

DESCRIPTION = """\
rnnlab's workflows over its DVC pipeline (run them in an rnnlab checkout). `dvc repro` runs the
pipeline itself; these run many experiments of it, benchmarks and checks.
`rnnlab COMMAND --help` says what each writes and about how long it takes."""


# Looked up when called, not when COMMANDS is built, so that whatever replaces the module's
# function (a test's stand-in) is what runs.
def run_compare(args: argparse.Namespace) -> int:
    return compare.run(args)


def run_capacity(args: argparse.Namespace) -> int:
    return capacity.run(args)


def run_papers(args: argparse.Namespace) -> int:
    return papers.run(args)


def run_bench(options: list[str]) -> int:
    """benchmarks/run.py of the checkout here, with this interpreter and the venv first on
    PATH (its sweep part queues DVC experiments, whose workers start `dvc` by name)."""
    from rnnlab.workflows.dvc_commands import environment

    if not BENCH_SCRIPT.is_file():
        sys.exit(f"rnnlab bench: error: no {BENCH_SCRIPT} in {Path.cwd()}: run it from the top "
                 "folder of an rnnlab checkout")
    env = environment(DVC_NO_ANALYTICS="1", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, str(BENCH_SCRIPT), *options], env=env).returncode


def run_deps(options: list[str]) -> int:
    from rnnlab.pipeline import code_deps

    code_deps.main(options)
    return 0


def run_plots_template(_options: list[str]) -> int:
    from rnnlab.workflows import plots_template

    plots_template.main()
    return 0


# name -> (one-line help, description, add_arguments, run). Commands with add_arguments take a
# parsed Namespace; the others take the options rnnlab does not parse itself, passed on as they are.
USAGE = {"bench": "rnnlab bench [-h] [run.py's options ...]",
         "deps": "rnnlab deps [-h] [code_deps's options ...]"}
Command = tuple[str, str, Callable | None, Callable]
COMMANDS: dict[str, Command] = {
    "compare": (compare.HELP, compare.DESCRIPTION, compare.add_arguments, run_compare),
    "capacity": (capacity.HELP, capacity.DESCRIPTION, capacity.add_arguments, run_capacity),
    "ablation": (capacity.ABLATION_HELP, capacity.ABLATION_DESCRIPTION,
                 capacity.add_ablation_arguments, run_capacity),
    "papers": (papers.HELP, papers.DESCRIPTION, papers.add_arguments, run_papers),
    "bench": (BENCH_HELP, BENCH_DESCRIPTION, None, run_bench),
    "deps": (DEPS_HELP, DEPS_DESCRIPTION, None, run_deps),
    "plots-template": (PLOTS_TEMPLATE_HELP, PLOTS_TEMPLATE_DESCRIPTION, None, run_plots_template),
    "xla-cache": (xla_cache.HELP, xla_cache.DESCRIPTION, xla_cache.add_arguments, xla_cache.run),
}
PASSES_OPTIONS_ON = ("bench", "deps")  # whose unparsed options go to the script they run


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `rnnlab` parser and each command's own (for its error messages)."""
    parser = argparse.ArgumentParser(prog="rnnlab", description=DESCRIPTION,
                                     formatter_class=FORMATTER)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers = {}
    for name, (summary, description, add_arguments, _) in COMMANDS.items():
        subparsers[name] = commands.add_parser(name, help=summary, description=description,
                                               usage=USAGE.get(name), formatter_class=FORMATTER)
        if add_arguments:
            add_arguments(subparsers[name])
    return parser, subparsers


def check_command(argv: list[str]) -> None:
    """One line and exit 2 when argv names no known command (argparse would print its usage
    first and offer no suggestion)."""
    known = ", ".join(COMMANDS)
    if not argv:
        message = f"a command is needed: {known} (rnnlab --help says more)"
    elif argv[0].startswith("-") or argv[0] in COMMANDS:
        return
    else:
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"unknown command {argv[0]!r}{hint} (commands: {known})"
    print(f"rnnlab: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. Usage errors exit 2 with one line."""
    argv = sys.argv[1:] if argv is None else list(argv)
    check_command(argv)
    parser, subparsers = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command is None:  # only top-level options, e.g. `rnnlab -x`
        parser.error(f"unrecognized arguments: {' '.join(rest)}" if rest else
                     f"a command is needed: {', '.join(COMMANDS)}")
    if rest and args.command not in PASSES_OPTIONS_ON:
        subparsers[args.command].error(f"unrecognized arguments: {' '.join(rest)}")
    _, _, add_arguments, run = COMMANDS[args.command]
    return run(args) if add_arguments else run(rest)


if __name__ == "__main__":
    sys.exit(main())
