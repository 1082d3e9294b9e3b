"""Named DVC experiments run through DVC's queue: what `make compare` and `make capacity` share.

Each run is `dvc exp run --queue -n NAME -S key=value ... [stages]`; `dvc queue start -j N`
runs them in N workers (each in its own temporary copy of the repository), and every result
stays an ordinary experiment (`dvc exp show`, `dvc metrics diff`, `dvc exp push`). Progress
is tracked by task id; a run that fails is reported with the stage's own one-line error.

Results are read from the experiments' git commits (refs/exps/...). A run whose experiment
already exists with the same params and the same code for the stages it runs (its dvc.lock
against the workspace's files) is not queued again, whatever commit it was run on, so
repeating a workflow with nothing changed trains nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.pipeline.code_deps import declared, expand_stages, upstream_stages
from rnnlab.pipeline.params import parse_yaml, read_params
from rnnlab.workflows.dvc_commands import dvc, dvc_output, quiet_dvc, set_values

FINISHED = ("Success", "Failed")
TASK_ID = re.compile(r"[0-9a-f]{7,}")
STAGE_ERROR = re.compile(r"^[\w@.-]+: error: (.*)$", re.MULTILINE)  # run_stage's one-line errors


@dataclass(frozen=True)
class Run:
    """One named experiment: params overrides ({"section.key": value}) and the stages it runs
    (with their upstream stages; all of them if empty)."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()


def queue_tasks() -> list[tuple[str, str, str]]:
    """(task id, experiment name, status) of every task `dvc queue status` lists.

    Status is Queued, Running, Success or Failed. Names can repeat across runs of a
    workflow, task ids cannot, so progress is tracked by id.
    """
    tasks = []
    for line in dvc_output("queue", "status").splitlines():
        fields = line.split()  # task id, name, created (e.g. "02:01 PM"), status
        if len(fields) >= 4 and TASK_ID.fullmatch(fields[0]):
            tasks.append((fields[0], fields[1], fields[-1]))
    return tasks


@dataclass(frozen=True)
class Experiment:
    """A finished experiment, read from its git commit (refs/exps/...), whatever its baseline."""

    name: str
    sha: str

    def read(self, path: str) -> str | None:
        """A file of the experiment's commit, or None if it has none."""
        proc = subprocess.run(["git", "show", f"{self.sha}:{path}"], capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else None

    def metrics(self) -> dict[str, dict]:
        """{metrics file: its JSON} for every metrics file dvc.yaml declares that it has."""
        found = {}
        for path in metric_files():
            text = self.read(path)
            if text is not None:
                found[path] = json.loads(text)
        return found

    def is_current_for(self, run: Run, workspace: dict) -> bool:
        """True if it is `run` as the workspace would run it now: params.yaml with the run's
        overrides, and the current code of the stages it runs and of those upstream."""
        return self.is_current(expected_params(workspace, run.overrides),
                               upstream_stages(list(run.targets)))

    def is_current(self, params: dict, stages: dict[str, dict]) -> bool:
        """True if it ran with exactly these params and with the workspace's current version of
        every code file (src/, stages/) that these stages depend on, per its dvc.lock."""
        if yaml_load(self.read("params.yaml")) != params:
            return False
        locked = (yaml_load(self.read("dvc.lock")) or {}).get("stages", {})
        for name in stages:
            deps = {d["path"]: d.get("md5") for d in locked.get(name, {}).get("deps", [])}
            code = [p for p in declared(stages[name], "deps") if p.startswith(("src/", "stages/"))]
            if not code or any(deps.get(path) != file_md5(path) for path in code):
                return False
        return True


def yaml_load(text: str | None):
    return None if text is None else parse_yaml(text, "experiment")


def metric_files() -> list[str]:
    """Every metrics file the stages of dvc.yaml declare."""
    stages = expand_stages(yaml_load(Path("dvc.yaml").read_text()))
    return sorted({path for stage in stages.values() for path in declared(stage, "metrics")})


def experiments(names: list[str]) -> dict[str, Experiment]:
    """{name: the newest finished experiment of that name} among `names`, on any baseline (a
    failed run leaves no experiment)."""
    refs = subprocess.run(["git", "for-each-ref", "--sort=committerdate",
                           "--format=%(objectname) %(refname)", "refs/exps/"],
                          capture_output=True, text=True, check=True).stdout
    found = {}
    for line in refs.splitlines():
        sha, ref = line.split()
        name = ref.rsplit("/", 1)[-1]
        if name in names:  # sorted oldest first: the newest of a name wins
            found[name] = Experiment(name, sha)
    return found


def file_md5(path: str) -> str | None:
    try:
        return hashlib.md5(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def clear(names: list[str]) -> None:
    """Drop earlier experiments (on any baseline) and waiting queue entries of these names."""
    old = [task for task, name, status in queue_tasks() if name in names and status != "Running"]
    if old:
        dvc("queue", "remove", *old, check=False, quiet=True)
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"],
                          capture_output=True, text=True, check=True).stdout.split()
    for ref in refs:
        if ref.rsplit("/", 1)[-1] in names:
            subprocess.run(["git", "update-ref", "-d", ref], check=True)


def start_workers(jobs: int) -> None:
    """`dvc queue start -j jobs`. Each worker uses every core, as `dvc repro` does, so a queued
    experiment computes the very bits the same params give in the workspace (RNNLAB_CORES=1 in
    the caller's environment would run the LSTM's one-core path instead: other last bits)."""
    dvc("queue", "start", "-j", str(jobs), quiet=True)


def queue_runs(runs: list[Run], jobs: int) -> dict[str, str]:
    """Queue the runs (earlier experiments of their names are replaced) and start `jobs`
    workers as soon as there is work for them; return {name: task id}.

    Queued through DVC's Python API, the very call `dvc exp run --queue -n NAME -S ...` makes:
    a `dvc` process per run would cost about a second of CPU more each (a new interpreter
    importing DVC), taken from the experiments already training on the same cores."""
    from dvc.repo import Repo

    names = [run.name for run in runs]
    clear(names)
    listed_before = {task for task, _, _ in queue_tasks()}
    with Repo() as repo, quiet_dvc():
        for i, run in enumerate(runs):
            queue_one(repo, run)
            if i + 1 == jobs:  # let the workers run while the rest are queued
                start_workers(jobs)
    # Idle workers exit after ~10 s; this start is a no-op unless they did (or jobs > runs).
    start_workers(jobs)
    return {name: task for task, name, _ in queue_tasks()
            if task not in listed_before and name in names}


def queue_one(repo, run: Run) -> None:
    """`dvc exp run --queue -n NAME -S ... [stages]` through DVC's API; RuntimeError with DVC's
    own reason (e.g. an -S value it cannot apply) if DVC refuses."""
    from dvc.exceptions import DvcException

    try:
        repo.experiments.run(targets=list(run.targets) or None, name=run.name, queue=True,
                             params=set_values(run.overrides))
    except DvcException as exc:
        reason = f"{exc}: {exc.__cause__}" if exc.__cause__ else str(exc)
        # the first line: what DVC could not do (the rest is Hydra's hint on its own syntax)
        raise RuntimeError(f"DVC refused to queue {run.name}: {reason.splitlines()[0]}") \
            from None


# DVC's local celery queue writes one file here for every task that finishes (success or
# failure). Listing it costs microseconds where `dvc queue status` costs a second of CPU, which
# every poll would take from the experiments training on the same cores.
CELERY_RESULTS = Path(".dvc/tmp/exps/celery/result")


def task_results() -> frozenset | None:
    """The names in DVC's task-result folder, or None if this DVC keeps none there."""
    try:
        return frozenset(p.name for p in CELERY_RESULTS.iterdir())
    except OSError:
        return None


def sleep_until_results(before: frozenset, count: int, longest: float, bar,
                        tick: float = 0.5) -> None:
    """Sleep until `count` task results have come in since `before`, at most `longest`
    seconds; the progress bar follows them."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        new = len((task_results() or frozenset()) - before)
        bar.update(max(0, min(new, count) - bar.n))
        if new >= count:
            return
        time.sleep(tick)


def wait(tasks: dict[str, str], jobs: int, desc: str, results_before: frozenset,
         status_seconds: float = 60.0, stall_seconds: float = 120.0) -> None:
    """Block until every task has finished (Success or Failed), with a progress bar.

    `dvc queue status` decides, but runs only when DVC's result folder holds as many new
    results (since `results_before`) as there are tasks, and at least every `status_seconds`
    (every 5 s where there is no such folder). Work queued with nothing running for
    `stall_seconds / 2` (the workers were stopped, or could not start) gets one
    `dvc queue start`; after `stall_seconds` it is an error rather than a wait without end.
    """
    from tqdm import tqdm

    idle_since = None
    with tqdm(total=len(tasks), desc=desc, unit="exp", file=sys.stdout) as bar:
        while True:
            status = {task: st for task, _, st in queue_tasks()}
            ours = [status.get(task, "Missing") for task in tasks.values()]
            bar.update(max(0, sum(st in FINISHED for st in ours) - bar.n))
            if not any(st in ("Queued", "Running") for st in ours):
                return
            idle_since = _check_workers(idle_since, "Running" in status.values(), jobs,
                                        stall_seconds)
            results = task_results()
            if results is None:
                time.sleep(5.0)
            elif len(results - results_before) >= len(tasks):
                time.sleep(2.0)  # every result is in; the status follows within moments
            else:
                sleep_until_results(results_before, len(tasks), status_seconds, bar)


def _check_workers(idle_since: float | None, running: bool, jobs: int,
                   stall_seconds: float) -> float | None:
    """Restart the workers once half of `stall_seconds` has passed with work queued and none
    running; raise after all of it. Returns when the idle time began (None: not idle)."""
    if running:
        return None
    now = time.monotonic()
    if idle_since is None:
        return now
    if now - idle_since >= stall_seconds:
        raise RuntimeError("experiments are queued but no worker runs them; see "
                           "`dvc queue status` and .dvc/tmp/exps/celery/*.out")
    if now - idle_since >= stall_seconds / 2:
        start_workers(jobs)  # a no-op while workers run; idle ones exit after ~10 s
    return idle_since


def stop(names: list[str]) -> None:
    """Ctrl-C: kill the running experiments and drop the queued ones of these names."""
    dvc("queue", "stop", "--kill", check=False, quiet=True)
    queued = [task for task, name, st in queue_tasks() if name in names and st == "Queued"]
    if queued:
        dvc("queue", "remove", *queued, check=False, quiet=True)


def failure_reason(task: str) -> str:
    """The stage's own one-line error from `dvc queue logs` (e.g. 'training diverged ...')."""
    errors = STAGE_ERROR.findall(dvc_output("queue", "logs", task))
    return errors[-1] if errors else f"failed; see `dvc queue logs {task}`"


def expected_params(workspace: dict, overrides: dict[str, Any]) -> dict:
    """params.yaml as a run with these overrides will see it."""
    params = json.loads(json.dumps(workspace))  # a deep copy of plain YAML data
    for dotted, value in overrides.items():
        section, key = dotted.split(".", 1)
        params[section][key] = value
    return params


def run_all(runs: list[Run], jobs: int, desc: str) -> tuple[dict[str, Experiment], dict[str, str], list[str]]:
    """Run what is not current yet through the queue, then find every run's experiment.

    Returns ({name: Experiment} of the finished runs, {name: failure reason}, [names that were
    current already and did not run again]).
    """
    workspace, before = read_params(), experiments([run.name for run in runs])
    current = [run.name for run in runs
               if run.name in before and before[run.name].is_current_for(run, workspace)]
    todo = [run for run in runs if run.name not in current]
    tasks = {}
    if todo:
        try:
            results_before = task_results() or frozenset()  # none yet in a new clone
            tasks = queue_runs(todo, jobs)
            wait(tasks, jobs, desc, results_before)
        except KeyboardInterrupt:
            stop([run.name for run in todo])
            raise
    after = experiments([run.name for run in runs])
    results = {run.name: after[run.name] for run in runs
               if run.name in after and (run.name in current or run.name in tasks)}
    failures = {run.name: failure_reason(tasks.get(run.name, run.name))
                for run in runs if run.name not in results}
    return results, failures, current
