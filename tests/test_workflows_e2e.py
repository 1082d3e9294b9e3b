"""`rnnlab compare` and `rnnlab capacity` on tiny params, through real DVC experiments, the queue,
a bare git repository standing in for the shared git remote and a local DVC remote; their
summaries are read from each run's results/<stem>.json and written apart from the committed
ones (reports/compare.json, reports/capacity/) unless the run is the committed study.
(Slow: real dvc commands.)"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import VENV_BIN, Project, make_project

pytestmark = pytest.mark.slow

# Tiny settings for every capacity run, on top of --quick (`-S` wins over the grid's own).
TINY = ["-S", "memory_task.n_train=64", "-S", "memory_task.n_test=32",
        "-S", "memory_task.to_remember_len=2", "-S", "tf_model.lstm_hidden=4",
        "-S", "tf_memory.epochs=1", "-S", "tf_memory.batch_size=8"]
GRID = ["--quick", "--cells", "lstm", "--delays", "0", "2", "--seeds", "0", *TINY]


def _python(project: Project, *args: str, check: bool = True):
    return project.run(str(VENV_BIN / "python"), "-m", *args, check=check)


# What a run that is not the committed study must leave as it was.
COMMITTED = ("metrics", "plots", "reports/compare.json", "reports/capacity", "docs", "README.md")


def test_compare_summarises_seeds_and_reruns_nothing(built_copy):
    project = built_copy
    args = ("rnnlab.cli", "compare", "--seeds", "2", "--only", "identity", "--jobs", "2")
    out = _python(project, *args).stdout
    assert "2 experiments (0 already current, 0 failed)" in out, out
    summary = json.loads((project.root / "reports/compare-custom/summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    assert summary["study"]["committed"] is False
    assert summary["study"]["experiments"] == ["identity"]
    assert project.git("status", "--porcelain", "--", *COMMITTED).stdout == ""
    stats = summary["experiments"]["identity"]
    assert set(stats) == {"numpy_rnn_copy.test_accuracy", "numpy_rnn_copy.test_loss",
                          "numpy_rnn_copy.n_params", "gradient_flow_copy.init.shrink_across_blanks",
                          "gradient_flow_copy.init.shrink_to_first_symbol",
                          "gradient_flow_copy.trained.shrink_across_blanks",
                          "gradient_flow_copy.trained.shrink_to_first_symbol"}
    for stat in stats.values():
        assert stat["n"] == 2 and len(stat["values"]) == 2 and stat["seeds"] == [0, 1]
        assert stat["min"] <= stat["mean"] <= stat["max"]
    # Different seeds drew different data and weights.
    assert len(set(stats["numpy_rnn_copy.test_loss"]["values"])) == 2
    names = project.dvc("exp", "ls", "--name-only").stdout.split()
    assert {"identity-s0", "identity-s1"} <= set(names)
    # Again, with nothing changed: every experiment is current, nothing is queued or trained.
    again = _python(project, *args).stdout
    assert "2 experiments (2 already current, 0 failed)" in again, again
    assert json.loads((project.root / "reports/compare-custom/summary.json").read_text()) == summary
    # A change to code the runs use makes them stale (no third run: the check that decides).
    cell = project.root / "src/rnnlab/numpy_rnn/cell.py"
    cell.write_text(cell.read_text() + "# changed\n")
    project.commit("touch the numpy cell")
    assert project.run(str(VENV_BIN / "python"), "-c", STALE).stdout.split() == ["False", "True"]


# Is identity-s0 current with the workspace's code, for its own stages, and for stages that do
# not import the changed cell (data@sine)? Run inside the project.
STALE = """
from rnnlab.pipeline.params import read_params
from rnnlab.workflows import compare, queue
run = compare.runs_for(["identity"], [0])[0]
exp, workspace = queue.experiments([run.name])[run.name], read_params()
print(exp.is_current_for(run, workspace))
print(exp.is_current_for(queue.Run(run.name, run.overrides, ("data@sine",)), workspace))
"""


def _clone(origin: Path, dest: Path, store: Path) -> Project:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True)
    clone = Project(dest)
    clone.dvc("remote", "add", "--local", "-d", "store", str(store))
    return clone


def _summary(project: Project) -> tuple[dict, str]:
    """The summary of GRID, a grid other than the committed one: reports/capacity-custom/."""
    return (json.loads((project.root / "reports/capacity-custom/summary.json").read_text()),
            (project.root / "reports/capacity-custom/curve.csv").read_text())


def test_a_sweep_sharded_over_two_machines_equals_one_machine(tmp_path):
    seed_repo = make_project(tmp_path / "seed")
    origin, store = tmp_path / "origin.git", tmp_path / "dvc-store"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed_repo.root), str(origin)], check=True)
    machines = [_clone(origin, tmp_path / f"machine{k}", store) for k in (1, 2)]
    # Both shards at once, as two CI jobs of a matrix would run them.
    procs = [subprocess.Popen([str(VENV_BIN / "python"), "-m", "rnnlab.workflows.capacity", *GRID,
                               "--jobs", "1", "--shard", f"{k}/2", "--push", "origin"],
                              cwd=m.root, env=m.env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
             for k, m in zip((1, 2), machines, strict=True)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    for k, (proc, output) in enumerate(zip(procs, outputs, strict=True), start=1):
        assert proc.returncode == 0, output
        assert f"shard {k}/2: 1 of 1 experiments finished" in output, output
        assert "pushed to origin" in output, output
    collector = _clone(origin, tmp_path / "collector", store)
    out = _python(collector, "rnnlab.workflows.capacity", *GRID, "--collect", "origin").stdout
    assert "2 grid points, 2 finished, 0 missing" in out, out
    # The outputs came with the experiments: each pulled experiment's model is in the cache.
    for baseline in json.loads(collector.dvc("exp", "show", "--json").stdout):
        for exp in baseline.get("experiments") or []:
            md5 = exp["revs"][0]["data"]["outs"]["models/memory.npz"]["hash"]
            assert (collector.root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).is_file()
    single = _clone(origin, tmp_path / "single", store)
    _python(single, "rnnlab.workflows.capacity", *GRID, "--jobs", "2")
    assert _summary(collector) == _summary(single)  # the runs are deterministic
    grid = _summary(single)[0]["grid"]
    assert (grid["name"], grid["committed_study"], grid["prefix"]) == ("custom", False, "cap-quick")
    assert single.git("status", "--porcelain", "--", *COMMITTED).stdout == ""
    # A collection with a point missing reports it instead of dropping it.
    out = _python(collector, "rnnlab.workflows.capacity", *GRID[:4], "4", *GRID[5:],
                  "--collect", "origin").stdout
    runs = json.loads((collector.root / "reports/capacity-custom/runs.json").read_text())
    assert "1 missing" in out and list(runs["problems"]) == ["cap-quick-lstm-b4-s0"]


@pytest.mark.parametrize("args, message", [
    (["--shard", "3/2"], "argument --shard: expected K/N with 1 <= K <= N (e.g. 1/2), got '3/2'"),
    (["--shard", "0/2"], "argument --shard: expected K/N with 1 <= K <= N (e.g. 1/2), got '0/2'"),
    (["--push", "nosuch"], "git remote 'nosuch' is unknown or unreachable"),
    (["--collect", "/nonexistent/origin.git"],
     "git remote '/nonexistent/origin.git' is unknown or unreachable"),
    (["-S", "nosuchsection.x=1"], "DVC refused to run cap-quick-lstm-b* "
     "Invalid `--set-param` value: Could not override 'nosuchsection.x'."),
], ids=["shard-over", "shard-zero", "unknown-remote", "unreachable-remote", "unknown-param"])
def test_bad_sweep_arguments_end_with_one_line_and_write_nothing(built_project, args, message):
    proc = _python(built_project, "rnnlab.cli", "capacity", *GRID, *args, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("rnnlab capacity: error: "), proc.stderr
    assert fnmatch.fnmatchcase(lines[-1], f"*{message}*"), proc.stderr  # * any run's name
    assert "Traceback" not in proc.stderr, proc.stderr
    assert built_project.git("status", "--porcelain", "--", *COMMITTED).stdout == ""
    assert not (built_project.root / "reports/capacity-custom").exists()
    assert "cap-" not in built_project.dvc("exp", "ls", "--name-only").stdout  # nothing ran


def test_push_without_a_dvc_remote_is_refused_before_any_training(built_project, tmp_path):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(built_project.root), str(origin)],
                   check=True)
    proc = _python(built_project, "rnnlab.cli", "capacity", *GRID, "--shard", "1/2",
                   "--push", str(origin), check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "rnnlab capacity: error: no default DVC remote for the experiments' outputs"), proc.stderr


# A sweep of one run, train_memory then gradient_flow_memory at seed 1, on one worker.
ONE_RUN = """
import json
from rnnlab.pipeline.code_deps import upstream_sections
from rnnlab.pipeline.params import read_params
from rnnlab.workflows import queue
stages = ("gradient_flow_memory",)
params = read_params()
seeds = {f"{s}.seed": 1 for s in upstream_sections(list(stages)) if "seed" in params[s]}
print(json.dumps(seeds))
results, failures, _ = queue.run_all([queue.Run("one", seeds, stages)], 1, "test")
assert not failures, failures
"""


def test_a_workers_experiment_has_the_outputs_dvc_repro_makes(built_copy):
    """Two TensorFlow stages in one experiment (training, then the gradient flow through the
    trained model) come out with every output's md5 as `dvc repro` makes them in new processes.
    Run one after the other in one process, the second stage's last bits differed."""
    project = built_copy
    out = project.run(str(VENV_BIN / "python"), "-c", ONE_RUN).stdout
    overrides = json.loads(out.splitlines()[0])  # then the progress bar
    refs = project.git("for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    ref = next(r for r in refs if r.endswith("/one"))
    experiment = yaml.safe_load(project.git("show", f"{ref}:dvc.lock").stdout)["stages"]
    project.set_params(**{key.replace(".", "__"): value for key, value in overrides.items()})
    project.dvc("repro", "--no-run-cache", "gradient_flow_memory")
    workspace = yaml.safe_load((project.root / "dvc.lock").read_text())["stages"]
    for stage in ("train_memory", "gradient_flow_memory"):
        assert experiment[stage]["outs"] == workspace[stage]["outs"], stage
    # and dvc.lock byte for byte (the worker reads back what DVC wrote from memory)
    assert project.git("show", f"{ref}:dvc.lock").stdout == (project.root / "dvc.lock").read_text()
