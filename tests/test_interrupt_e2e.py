"""Interrupting a sweep leaves DVC healthy: Ctrl-C, a kill -9 of the workflow (a closed
terminal) and a kill -9 of one run's training process, each on a real project, then `dvc exp
show` and `dvc queue status` work and a re-run finishes the grid, reusing what finished.
(Slow: real dvc commands.)

The runs are of a stage added for the test, which waits for a file per run before it
finishes: a test decides when each run ends, and knows a run is training when the stage has
said so (a file), without fixed sleeps. A re-run's runs wait for files of their own (another
generation), so that a run left training by a killed workflow never finishes by itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import VENV_BIN, Project, terminal_sigint
from rnnlab.workflows import queue

pytestmark = pytest.mark.slow

RUNS = 5  # two finish, two are interrupted while training, one waits its turn
GATED_STAGE = """\
import json, pathlib, sys, time
import yaml
params = yaml.safe_load(open("params.yaml"))["gated"]
gate, x = pathlib.Path(params["gate"]), params["x"]
generation = gate / "generation"
release = gate / f"release-{x}-{generation.read_text() if generation.exists() else 0}"
(gate / f"started-{x}-{time.monotonic_ns()}").touch()
deadline = time.monotonic() + 120
while not release.exists():
    if time.monotonic() > deadline:
        sys.exit("gated: error: never released")
    time.sleep(0.05)
pathlib.Path("metrics").mkdir(exist_ok=True)
json.dump({"x": x}, open("metrics/gated.json", "w"))
"""
# What compare and capacity do around the runs, for a grid of the gated stage.
SWEEP = """
import sys
from rnnlab.workflows import queue
runs = [queue.Run(f"gated-{x}", {"gated.x": x}, ("gated",)) for x in range(int(sys.argv[1]))]
try:
    results, failures, current = queue.run_all(runs, 2, "gated")
except KeyboardInterrupt:
    sys.exit("gated: interrupted")
print("RESULT", sorted(results), len(current), failures)
"""


def gated_project(root: Path) -> tuple[Project, Path]:
    """A git + DVC project whose pipeline is the gated stage alone (a copy of this repository
    would do, but each run of it costs ~4 s more: DVC copies and indexes the whole pipeline);
    and its gate folder."""
    project, gate = Project(root / "repo"), root / "gate"
    (project.root / "stages").mkdir(parents=True)
    gate.mkdir()
    (project.root / "stages/gated.py").write_text(GATED_STAGE)
    stage = {"cmd": "python stages/gated.py", "deps": ["stages/gated.py"], "params": ["gated"],
             "metrics": [{"metrics/gated.json": {"cache": False}}]}
    (project.root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"gated": stage}}))
    project.write_params({"gated": {"x": 0, "gate": str(gate)}})
    project.git("init", "-q", "-b", "main")
    project.dvc("init", "-q")
    project.commit("a gated stage")
    return project, gate


def start_sweep(project: Project) -> subprocess.Popen:
    """The sweep in a process group of its own, as a terminal runs a foreground command."""
    return subprocess.Popen([str(VENV_BIN / "python"), "-c", SWEEP, str(RUNS)], cwd=project.root,
                            env=project.env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=terminal_sigint)


def wait_for(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def started(gate: Path, x: int) -> bool:
    return any(gate.glob(f"started-{x}-*"))


def experiment_names(project: Project) -> set[str]:
    refs = project.git("for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    return {ref.rsplit("/", 1)[-1] for ref in refs}


def two_finished_two_training(project: Project, gate: Path) -> None:
    """Let runs 0 and 1 finish; return when 2 and 3 are training (4 waits its turn)."""
    for x in (0, 1):
        (gate / f"release-{x}-0").touch()
    wait_for(lambda: {"gated-0", "gated-1"} <= experiment_names(project), "two finished runs")
    wait_for(lambda: started(gate, 2) and started(gate, 3), "two runs training")


def stage_processes(gate: Path) -> list[int]:
    """Pids of the processes running a gated stage, still alive: a worker's children (the
    worker forks one per experiment, which runs the stage) in this test's folder."""
    import psutil

    def in_test(p):
        return queue.is_worker(p.info["cmdline"] or []) and str(gate.parent) in (
            p.info["cwd"] or "")

    workers = [p for p in psutil.process_iter(["cmdline", "cwd", "ppid"]) if in_test(p)]
    pids = {p.pid for p in workers}
    return [p.pid for p in workers if p.info["ppid"] in pids]


def assert_dvc_healthy(project: Project) -> None:
    """`dvc exp show` and `dvc queue status` work; no task is Running without a worker."""
    shown = project.dvc("exp", "show", "--json", check=False)
    assert shown.returncode == 0, shown.stderr
    json.loads(shown.stdout)
    status = project.dvc("queue", "status", check=False)
    assert status.returncode == 0, status.stderr
    running = [line for line in status.stdout.splitlines() if line.endswith("Running")]
    assert not running or "0 active" not in status.stdout, status.stdout


def rerun(project: Project, gate: Path, reused: int) -> str:
    """Run the sweep again with every new run released: it finishes, reusing `reused` runs."""
    (gate / "generation").write_text("1")
    for x in range(RUNS):
        (gate / f"release-{x}-1").touch()
    out = project.run(str(VENV_BIN / "python"), "-c", SWEEP, str(RUNS), timeout=120).stdout
    result = next(line for line in out.splitlines() if line.startswith("RESULT"))
    names = [f"gated-{x}" for x in range(RUNS)]
    assert result.startswith(f"RESULT {names!r} "), out
    assert int(result.split("]")[1].split()[0]) == reused and result.endswith("{}"), out
    return out


def test_ctrl_c_stops_the_runs_and_leaves_dvc_healthy(tmp_path):
    project, gate = gated_project(tmp_path)
    sweep = start_sweep(project)
    two_finished_two_training(project, gate)
    os.killpg(sweep.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
    out = sweep.communicate(timeout=60)[0]
    assert sweep.returncode == 1 and out.strip().endswith("gated: interrupted"), out
    assert stage_processes(gate) == []  # nothing goes on training
    assert not started(gate, 4)  # the waiting run never started
    assert_dvc_healthy(project)
    assert (project.root / "params.yaml").read_text() == project.git(
        "show", "HEAD:params.yaml").stdout  # the workspace is as it was
    rerun(project, gate, reused=2)


def test_a_killed_workflow_is_healed_by_the_next_run(tmp_path):
    project, gate = gated_project(tmp_path)
    sweep = start_sweep(project)
    two_finished_two_training(project, gate)
    sweep.kill()  # kill -9 (a closed terminal): no clean-up runs
    sweep.communicate(timeout=60)
    assert_dvc_healthy(project)  # the two runs left training are running experiments
    rerun(project, gate, reused=2)
    assert stage_processes(gate) == []  # the next run stopped them first
    assert list((project.root / queue.WORKERS).iterdir()) == []  # the workers' copies


def test_a_killed_training_process_fails_its_run_alone(tmp_path):
    project, gate = gated_project(tmp_path)
    sweep = start_sweep(project)
    two_finished_two_training(project, gate)
    victim = next(pid for pid in stage_processes(gate) if _run_of(pid) == 2)
    os.kill(victim, signal.SIGKILL)
    for x in (3, 4):
        (gate / f"release-{x}-0").touch()
    out = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == 0, out
    assert re.search(r"'gated-2': 'its process was killed \(SIGKILL\); see \.dvc/tmp/rnnlab/"
                     r"logs/gated-2\.log'", out), out
    assert_dvc_healthy(project)
    rerun(project, gate, reused=4)


def _run_of(pid: int) -> int | None:
    """Which run (x) a gated stage process belongs to: its copy's params.yaml says."""
    cwd = Path(f"/proc/{pid}/cwd").resolve()
    return yaml.safe_load((cwd / "params.yaml").read_text())["gated"]["x"]
