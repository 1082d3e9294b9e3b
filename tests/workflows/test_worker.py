"""rnnlab.workflows.worker on a real git + DVC project (no TensorFlow): an experiment a worker
makes is the commit `dvc exp run --temp` makes, whatever the worker ran before; its stages run
in the worker's process; a failing stage fails its experiment alone. (Slow: real dvc commands.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import VENV_BIN, Project, benchmark_module

pytestmark = pytest.mark.slow

# Writes a git-tracked metric and a cached output from its params section; says in `witness`
# (outside the repository, so not part of the experiment) whether it ran in a worker's process.
STAGE = """\
import json, pathlib, sys
import yaml
name = sys.argv[1]
params = yaml.safe_load(open("params.yaml"))[name]
if params["n"] < 0:
    sys.exit(f"{name}: error: n must be at least 0, got {params['n']}")
in_worker = b"rnnlab.workflows.worker" in open("/proc/self/cmdline", "rb").read()
with open(params["witness"], "a") as witness:
    witness.write(f"{name} {in_worker}\\n")
if params["n"] == 99:  # a long run: its pid to the witness, then wait to be stopped
    with open(params["witness"], "a") as witness:
        witness.write(f"pid {__import__('os').getpid()}\\n")
    __import__("time").sleep(120)
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path(f"out/{name}.txt").write_text(name * params["n"])
json.dump({"n": params["n"]}, open(f"{name}.json", "w"))
"""
SWEEP = """
import json, sys
from rnnlab.workflows import queue
runs = [queue.Run(name, overrides, tuple(targets)) for name, overrides, targets
        in json.loads(sys.argv[1])]
results, failures, current = queue.run_all(runs, 1, "test")
print("RESULT", json.dumps({"results": sorted(results), "failures": failures}))
"""


def two_stage_project(root: Path) -> tuple[Project, Path]:
    """Stages `one` and `two`, each from its own params section, committed with their outputs;
    then uncommitted changes every experiment must carry: params.yaml changed, a file added
    (staged), a tracked file deleted."""
    project, witness = Project(root / "repo"), root / "witness.txt"
    (project.root / "stages").mkdir(parents=True)
    (project.root / "stages/count.py").write_text(STAGE)
    stages = {name: {"cmd": f"python stages/count.py {name}", "deps": ["stages/count.py"],
                     "params": [name], "outs": [f"out/{name}.txt"],
                     "metrics": [{f"{name}.json": {"cache": False}}]} for name in ("one", "two")}
    (project.root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    project.write_params({name: {"n": 1, "witness": str(witness)} for name in ("one", "two")})
    project.git("init", "-q", "-b", "main")
    project.dvc("init", "-q")
    project.dvc("repro", "-q")
    (project.root / "old.txt").write_text("deleted in the workspace")
    project.commit("two stages")
    witness.unlink()  # what the build wrote
    project.set_params(two__n=2)  # uncommitted
    (project.root / "new.txt").write_text("added in the workspace")
    project.git("add", "new.txt")
    (project.root / "old.txt").unlink()
    return project, witness


def sweep(project: Project, runs: list) -> dict:
    out = project.run(str(VENV_BIN / "python"), "-c", SWEEP, json.dumps(runs)).stdout
    return json.loads(out.split("RESULT", 1)[1])


def tree(project: Project, name: str) -> str:
    refs = project.git("for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    ref = next(r for r in refs if r.rsplit("/", 1)[-1] == name)
    return project.git("rev-parse", f"{ref}^{{tree}}").stdout.strip()


def test_an_experiment_is_the_commit_dvc_exp_run_temp_makes(tmp_path):
    project, witness = two_stage_project(tmp_path)
    # one worker: "b" runs after "a" changed stage one's outputs, lock entry and metric
    assert sweep(project, [["a", {"one.n": 3}, ["one"]], ["b", {"two.n": 4}, ["two"]]]) == {
        "results": ["a", "b"], "failures": {}}
    assert witness.read_text().splitlines() == ["one True", "two True"]  # in the worker
    for name, value, stage in (("a", "one.n=3", "one"), ("b", "two.n=4", "two")):
        project.dvc("exp", "run", "--temp", "-n", f"{name}-temp", "-S", value, stage)
        assert tree(project, name) == tree(project, f"{name}-temp"), name
    files = project.git("ls-tree", "-r", "--name-only", tree(project, "a")).stdout.split()
    assert ".dvc/tmp/repro.dat" not in files  # dropped from what `exp save` commits
    assert "new.txt" in files and "old.txt" not in files
    shown = project.git("show", f"{tree(project, 'a')}:params.yaml").stdout
    assert yaml.safe_load(shown)["two"]["n"] == 2  # the workspace's uncommitted change
    assert project.dvc("exp", "show", "--json").returncode == 0
    for name in ("a", "b"):  # each log ends with the time its experiment took, as
        # benchmarks/sweep_overhead.py reads it
        log = (project.root / ".dvc/tmp/rnnlab/logs" / f"{name}.log").read_text()
        assert log.endswith("\n") and "Running stage" in log, log
        took = benchmark_module("sweep_overhead").EXPERIMENT.findall(log)
        assert len(took) == 1 and 0 < float(took[0]) < 300, log
        assert log.splitlines()[-1].startswith(f"rnnlab worker: {name} took "), log



def test_a_failing_stage_fails_its_experiment_alone_with_its_error(tmp_path):
    project, witness = two_stage_project(tmp_path)
    result = sweep(project, [["bad", {"one.n": -1}, ["one"]], ["good", {"one.n": 5}, ["one"]]])
    assert result == {"results": ["good"], "failures": {"bad": "n must be at least 0, got -1"}}
    assert witness.read_text().splitlines() == ["one True"]
    assert list((project.root / ".dvc/tmp/rnnlab/workers").iterdir()) == []  # copy removed


def start_worker(project: Project) -> subprocess.Popen:
    """A worker (no TensorFlow) serving `project`, in a session of its own, as the pool starts
    one."""
    return subprocess.Popen([str(VENV_BIN / "python"), "-m", "rnnlab.workflows.worker",
                             "--no-tensorflow", str(project.root)], cwd=project.root,
                            env=project.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)


def request(worker: subprocess.Popen, spec: dict) -> None:
    worker.stdin.write(json.dumps(spec) + "\n")
    worker.stdin.flush()


def wait_for(witness: Path, text: str, worker: subprocess.Popen, timeout: float = 120) -> None:
    """Until the stage's witness file says `text` (the worker still running)."""
    deadline = time.monotonic() + timeout
    while text not in (witness.read_text() if witness.exists() else ""):
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.1)


def test_a_run_ends_with_its_worker(tmp_path):
    """kill -9 of a worker (which runs no clean-up) ends the run it was on at once: nothing
    goes on training for a pool that has given it up, and the pool sees the worker's end."""
    project, witness = two_stage_project(tmp_path)
    worker = start_worker(project)
    try:
        request(worker, {"name": "long", "overrides": {"one.n": 99}, "targets": ["one"]})
        wait_for(witness, "pid ", worker)
        run = int(witness.read_text().split("pid ")[1].split()[0])
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.stdout.readline() == ""  # the end of its replies, not a reply
        deadline = time.monotonic() + 10
        while Path(f"/proc/{run}").exists() and not is_zombie(run):
            assert time.monotonic() < deadline, "the run outlived its worker"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def test_a_worker_commits_to_the_shared_cache_only_while_it_holds_the_cache_lock(tmp_path):
    """Workers share DVC's cache: one commits its outputs there only while no other is
    committing (rnnlab.workflows.worker.CACHE_LOCK), so two committing the same new files at
    the same moment cannot fail each other. Here the test holds the lock: the experiment's
    stage runs, its commit waits until the test lets go, then it is saved."""
    import fcntl
    import select

    from rnnlab.workflows.worker import CACHE_LOCK

    project, witness = two_stage_project(tmp_path)
    (project.root / CACHE_LOCK).parent.mkdir(parents=True, exist_ok=True)
    lock = (project.root / CACHE_LOCK).open("a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    worker = start_worker(project)
    try:
        request(worker, {"name": "a", "overrides": {"one.n": 3}, "targets": ["one"]})
        worker.stdin.close()
        wait_for(witness, "one True", worker)  # the stage ran
        assert select.select([worker.stdout], [], [], 3)[0] == []  # the commit waits
        fcntl.flock(lock, fcntl.LOCK_UN)
        assert select.select([worker.stdout], [], [], 60)[0] != []
        assert json.loads(worker.stdout.readline()) == {"name": "a", "ok": True, "reason": None}
        assert worker.wait(timeout=60) == 0
    finally:
        lock.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
    assert tree(project, "a")  # the experiment was saved


IMPORTS = """
import contextlib, json, sys
from pathlib import Path
from rnnlab.workflows import worker
worker.preload(tensorflow=False)
repository = Path(sys.argv[1])
start = worker.snapshot(repository)
copy = worker.make_copy(repository, start)
with contextlib.chdir(copy), worker.dvc_as_workers_run_it(repository):
    before = set(sys.modules)
    worker.run_experiment(copy, start, repository, {"name": "x", "overrides": {"one.n": 3},
                                                    "targets": ["one"]})
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_an_experiment_imports_nothing_the_worker_has_not_imported_already(tmp_path):
    """DVC imports most of itself lazily, on the way through an experiment (hundreds of
    modules in each experiment's fork before the worker imported them first): the worker's preload
    (rnnlab.workflows.worker.EXPERIMENT_IMPORTS) leaves nothing for the experiment to import.
    A module listed here is one to add there."""
    project, _ = two_stage_project(tmp_path)
    out = project.run(str(VENV_BIN / "python"), "-c", IMPORTS, str(project.root)).stdout
    assert json.loads(out.splitlines()[-1]) == []
