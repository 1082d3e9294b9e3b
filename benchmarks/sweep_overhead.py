"""Where a sweep experiment's wall time goes: DVC (reproduce's bookkeeping, `exp save`), the
workers' start (copy of the repository, imports), XLA compilation, data loading, training,
evaluation and writing.

Runs capacity-grid experiments (train_memory at the full grid's 15 epochs) in a temporary clone
of this repository, as `make capacity` does (a pool of rnnlab.workflows.worker processes,
rnnlab.workflows.queue), and reads every run's log (.dvc/tmp/rnnlab/logs/NAME.log) for the
timing line each stage prints. DVC's share is the experiment's wall time left over by the
stages: the workers' start shared out, checking out, DVC's reproduce bookkeeping, saving the
experiment and pushing its ref. The overhead is everything but training proper.

    python benchmarks/sweep_overhead.py [--jobs 2] [--cells lstm rnn] [--delays 5 40]
    python benchmarks/sweep_overhead.py --existing cap --wall 794   # a sweep that already ran
    python benchmarks/sweep_overhead.py --existing compare --wall 585   # `make compare`'s runs

Each run's log ends with the time its experiment took in its worker (since 8 December), which
splits DVC's share in two: DVC's work in the experiment, and the sweep's start and end shared
out (its checks, the workers' imports and copies; a worker's wait with nothing left to run while
another finishes; the summary). Logs without that line give the two as one.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import env_with_xla_cache

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMING = re.compile(r"^(?P<stage>[\w@]+): .* \[(?P<total>[\d.]+) s: (?P<phases>[^;\]]*)")
# rnnlab.workflows.worker.EXPERIMENT_TIME, the last line of a run's log (none before 8 December)
EXPERIMENT = re.compile(r"^rnnlab worker: \S+ took (?P<seconds>[\d.]+) s$", re.MULTILINE)
LOGS = Path(".dvc/tmp/rnnlab/logs")  # rnnlab.workflows.queue writes one log per run here
TRAINING = "training (with 10 test-metric checkpoints)"  # training proper; the rest: overhead
SHARED = ("the sweep's start, end and gaps, shared out: its checks, the workers' start-up, a "
          "worker's wait with nothing left to run, the summary")


def clone(dest: Path) -> None:
    """A git clone of this repository's HEAD (what a queue worker copies)."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)


def run_grid(repo: Path, args, prefix: str, env: dict) -> float:
    """Run the capacity grid in `repo`; return its wall time in seconds."""
    command = [str(BIN / "python"), "-m", "rnnlab.workflows.capacity", "--jobs", str(args.jobs),
               "--cells", *args.cells, "--delays", *map(str, args.delays), "--seeds",
               *map(str, args.seeds), "--prefix", prefix]
    start = time.perf_counter()
    subprocess.run(command, cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_log_name(prefix: str) -> re.Pattern:
    """The log names of a capacity grid's runs (PREFIX-CELL-bB-sS.log; for cap, not the
    cap-quick-... of --quick), or with prefix "compare" of `rnnlab compare`'s (NAME-sS.log)."""
    if prefix == "compare":
        from rnnlab.workflows.compare import EXPERIMENTS

        return re.compile(rf"({'|'.join(map(re.escape, EXPERIMENTS))})-s\d+\.log")
    return re.compile(rf"{re.escape(prefix)}-[^-]+-b\d+-s\d+\.log")


def stage_timings(repo: Path, prefix: str) -> list[dict[str, float]]:
    """Per experiment of `prefix` with a log: {phase: seconds} summed over its stages, plus
    "stages" (their total wall time). A run that was already current ran no stage this time:
    its log has no timing line and it is left out."""
    experiments = []
    name = run_log_name(prefix)
    for log in sorted(p for p in (repo / LOGS).glob("*.log") if name.fullmatch(p.name)):
        phases: dict[str, float] = defaultdict(float)
        text = log.read_text()
        for match in filter(None, map(TIMING.match, text.splitlines())):
            phases["stages"] += float(match["total"])
            for part in match["phases"].split(", "):
                name_, _, seconds = part.rpartition(" ")
                phases[name_] += float(seconds)
        took = EXPERIMENT.findall(text)
        if phases and took:
            phases["experiment"] = float(took[-1])
        if phases:
            experiments.append(dict(phases))
    return experiments


def sweep_parts(wall: float, mean: dict, n: int, jobs: int) -> list[tuple[str, float]]:
    """DVC's part of the worker time per experiment (wall * jobs / n) left over by the stages:
    split, where the logs say how long each experiment took in its worker, into DVC's work in
    the experiment (checkout, reproduce, save, push) and the rest, shared out: the sweep's
    start (its checks, the workers' imports and copies), a worker's wait with nothing left to
    run while another finishes, and the summary at the end."""
    per_experiment = wall * jobs / n
    if "experiment" not in mean:
        return [("DVC and the workers: start, copy, checkout, reproduce, save, wait at the end",
                 per_experiment - mean["stages"])]
    return [("DVC in the experiment: checkout, reproduce, save, push",
             mean["experiment"] - mean["stages"]),
            (SHARED, per_experiment - mean["experiment"])]


def breakdown(wall: float, experiments: list[dict], jobs: int) -> list[tuple[str, float]]:
    """Mean seconds per experiment, by part (sweep_parts: DVC's and the workers')."""
    n = len(experiments)
    keys = {k for e in experiments for k in e}
    if not all("experiment" in e for e in experiments):
        if "experiment" in keys:  # some runs' logs have the line, some not: no split
            print(f"sweep_overhead.py: {sum('experiment' not in e for e in experiments)} of {n} "
                  "run logs do not end with the worker's time; DVC's part is not split",
                  file=sys.stderr)
        keys.discard("experiment")  # logs from before the worker timed its experiments
    mean = {key: sum(e.get(key, 0.0) for e in experiments) / n for key in keys}
    compile_ = mean.get("of which first step (compile)", 0.0)
    stage_parts = [("interpreter start-up (all stages)", mean.get("startup", 0.0)),
                   ("TensorFlow import", mean.get("import", 0.0)),
                   ("data loading", mean.get("data", 0.0)),
                   ("XLA tracing + compilation (first step)", compile_),
                   (TRAINING, mean.get("train", 0.0) - compile_),
                   ("evaluation", mean.get("evaluate", 0.0)),
                   ("writing outputs", mean.get("write", 0.0))]
    other = mean["stages"] - sum(seconds for _, seconds in stage_parts)
    return [*sweep_parts(wall, mean, n, jobs), *stage_parts,
            ("other stages (params check, data generation, gradient-flow studies)", other)]


def table(title: str, wall: float, rows: list[tuple[str, float]], n: int, jobs: int) -> str:
    per_exp = wall * jobs / n
    lines = [f"{title}: {n} experiments, {jobs} workers, {wall:.0f} s wall "
             f"({per_exp:.1f} s of worker time per experiment)", "",
             "| part of a sweep experiment | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {seconds:.1f} | {seconds / per_exp:.0%} |" for name, seconds in rows]
    overhead = per_exp - dict(rows)[TRAINING]
    lines.append(f"| **overhead: all but training proper** | **{overhead:.1f}** | "
                 f"**{overhead / per_exp:.0%}** |")
    if SHARED in dict(rows):
        within = overhead - dict(rows)[SHARED]
        lines.append(f"| of which within the experiments (the sweep's start, end and gaps aside) | "
                     f"{within:.1f} | {within / per_exp:.0%} |")
    return "\n".join(lines)


def measure(args, xla_cache: Path, label: str, prefix: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        clone(repo)
        env = env_with_xla_cache(str(xla_cache), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
                                 DVC_NO_ANALYTICS="1")
        env.pop("RNNLAB_CORES", None)
        wall = run_grid(repo, args, prefix, env)
        experiments = stage_timings(repo, prefix)
    return table(label, wall, breakdown(wall, experiments, args.jobs), len(experiments), args.jobs)


def report(argv=None) -> str:
    """The breakdown with XLA's compilation cache empty, then warm (as in a repeated sweep); or,
    with --existing PREFIX --wall SECONDS, of a sweep that already ran in this repository."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cells", nargs="+", default=["lstm", "rnn"])
    parser.add_argument("--delays", nargs="+", type=int, default=[5, 40])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--existing", metavar="PREFIX",
                        help="experiments that already ran here (their logs are read): "
                        "a capacity grid's prefix, or compare")
    parser.add_argument("--wall", type=float, help="with --existing: the sweep's wall time, s")
    args = parser.parse_args(argv)
    if args.existing is not None:  # "" too: never fall through to running a sweep
        if args.wall is None:
            parser.error("--existing needs --wall (the seconds the sweep printed)")
        return existing(args.existing, args.wall, args.jobs)
    with tempfile.TemporaryDirectory() as cache:
        cache = Path(cache)
        return "\n\n".join([measure(args, cache, "XLA compilation cache empty", "cold"),
                             measure(args, cache, "the same again, cache warm", "warm")])


def existing(prefix: str, wall: float, jobs: int) -> str:
    """The same breakdown for the experiments of `prefix` that already ran in this repository
    (e.g. `make capacity`'s `cap`), given the wall time the sweep printed."""
    experiments = stage_timings(REPO, prefix)
    if not experiments:
        sys.exit(f"sweep_overhead.py: no run log matching {run_log_name(prefix).pattern} with "
                 f"stage timings in {REPO / LOGS}")
    return table(f"`{prefix}` experiments run in this repository", wall,
                 breakdown(wall, experiments, jobs), len(experiments), jobs)


if __name__ == "__main__":
    print(report())
