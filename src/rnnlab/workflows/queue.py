"""Named DVC experiments, run in parallel: what `make compare` and `make capacity` share.

Each run is `dvc exp run --temp -n NAME -S key=value ... [stages]`, a subprocess of its own
(in its own temporary copy of the repository); `jobs` of them run at a time, in the given order
except that a TensorFlow run (which spreads over every core) gets numpy runs beside it while
any wait (`next_run`). Every result is an ordinary experiment (`dvc exp show`,
`dvc metrics diff`, `dvc exp push`). A run that fails is
reported with the stage's own one-line error, taken from the run's output.

Why not DVC's queue (`dvc exp run --queue` + `dvc queue start`), which rnnlab used before:
stopping it mid-sweep broke the repository. After `dvc queue stop --kill` (which shuts the
Celery workers down, then kills the running tasks) the killed tasks ended Failed, but the
workers had taken the next queued ones, which stayed "Running" with no worker and no info
file, and every `dvc exp show` then failed with "No such file or directory:
.dvc/tmp/exps/run/<id>/<id>.run" (3 of 3 tries; treeverse/dvc#7068, and random failures with
-j > 1: treeverse/dvc#10673); the killed tasks' stage processes went on training. A run of
our own is one process group that we stop as a whole, and the next workflow cleans up after a
run that could not clean up itself (see `heal`, which also repairs that queue state).

Results are read from the experiments' git commits (refs/exps/...). A run whose experiment
already exists with the same params and the same code for the stages it runs (its dvc.lock
against the workspace's files) is not run again, whatever commit it was run on, so repeating
a workflow with nothing changed trains nothing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rnnlab.pipeline.code_deps import (FINGERPRINT_STAGE, current_md5, declared, is_code_dep,
                                      upstream_stages, uses_tensorflow)
from rnnlab.pipeline.params import parse_yaml, read_params
from rnnlab.workflows.dvc_commands import dvc, dvc_output_retried, environment, set_values

TASK_ID = re.compile(r"[0-9a-f]{7,}")
STAGE_ERROR = re.compile(r"^[\w@.-]+: error: (.*)$", re.MULTILINE)  # run_stage's one-line errors
DVC_ERROR = re.compile(r"^ERROR: (.*)$", re.MULTILINE)

# Our own bookkeeping, in DVC's git-ignored tmp folder: one file per running run (its process
# group, so that the next workflow can stop what a killed one left running) and each run's
# output (for its failure reason).
STATE = Path(".dvc/tmp/rnnlab")
# Where `dvc exp run --temp` copies the repository (one tmp* folder per run) and keeps each
# run's info file (run/<id>/<id>.run); every --temp run also leaves an info file in
# .dvc/tmp/exps/run/ (a DVC quirk), which only DVC's queue reads.
STANDALONE = Path(".dvc/tmp/exps/standalone")
EXEC_INFOS = Path(".dvc/tmp/exps/run")
CELERY = Path(".dvc/tmp/exps/celery")  # DVC's queue, which earlier rnnlab versions used

STOP_SECONDS = 15.0  # how long a stopped run gets to clean up after itself before SIGKILL
START_SECONDS = 120.0  # how long a run may take to copy the repository and start
# A run is given up (killed and reported) when it has run this many times as long as the
# longest finished run of its workflow, and at least MIN_LIMIT seconds; FIRST_LIMIT before
# any has finished.
OVERTIME_FACTOR = 5.0
MIN_LIMIT = 600.0
FIRST_LIMIT = 6 * 3600.0


@dataclass(frozen=True)
class Run:
    """One named experiment: params overrides ({"section.key": value}) and the stages it runs
    (with their upstream stages; all of them if empty)."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    # replace an experiment of this name (`dvc exp run -f`, which also re-runs every stage)
    overwrite: bool = False
    # its stages spread over every core (TensorFlow's; run_all sets it from the stages): the
    # pool runs it beside a single-core run (numpy's) where it can (`next_run`)
    multicore: bool = False


@dataclass(frozen=True)
class Experiment:
    """A finished experiment, read from its git commit (refs/exps/...), whatever its baseline."""

    name: str
    sha: str

    def read(self, path: str) -> str | None:
        """A file of the experiment's commit, or None if it has none."""
        proc = subprocess.run(["git", "show", f"{self.sha}:{path}"], capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else None

    def is_current_for(self, run: Run, workspace: dict) -> bool:
        """True if it is `run` as the workspace would run it now: params.yaml with the run's
        overrides, and the current code of the stages it runs and of those upstream."""
        return self.is_current(expected_params(workspace, run.overrides),
                               upstream_stages(list(run.targets)))

    def is_current(self, params: dict, stages: dict[str, dict]) -> bool:
        """True if it ran with exactly these params and with the workspace's current code for
        every stage, per its dvc.lock: each code dep (a stage script's fingerprint, data/code/,
        as the fingerprint stage would write it from today's code; or a code file) has the md5
        it ran with. The fingerprint stage itself is
        checked through them (its deps are whole folders)."""
        if yaml_load(self.read("params.yaml")) != params:
            return False
        locked = (yaml_load(self.read("dvc.lock")) or {}).get("stages", {})
        for name in stages:
            if name == FINGERPRINT_STAGE:
                continue
            deps = {d["path"]: d.get("md5") for d in locked.get(name, {}).get("deps", [])}
            code = [p for p in declared(stages[name], "deps") if is_code_dep(p)]
            if not code or any(deps.get(path) != current_md5(path) for path in code):
                return False
        return True


def yaml_load(text: str | None):
    return None if text is None else parse_yaml(text, "experiment")


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


def expected_params(workspace: dict, overrides: dict[str, Any]) -> dict:
    """params.yaml as a run with these overrides will see it."""
    params = json.loads(json.dumps(workspace))  # a deep copy of plain YAML data
    for dotted, value in overrides.items():
        section, key = dotted.split(".", 1)
        params[section][key] = value
    return params


def queue_tasks() -> list[tuple[str, str, str]]:
    """(task id, experiment name, status) of every task `dvc queue status` lists (DVC's queue,
    which rnnlab no longer uses; earlier versions left tasks in it).

    Status is Queued, Running, Success or Failed. A failing status call is retried, then it is
    a RuntimeError: no answer must never read as "no tasks".
    """
    tasks = []
    for line in dvc_output_retried("queue", "status").splitlines():
        fields = line.split()  # task id, name, created (e.g. "02:01 PM"), status
        if len(fields) >= 4 and TASK_ID.fullmatch(fields[0]):
            tasks.append((fields[0], fields[1], fields[-1]))
    return tasks


def clear(names: list[str]) -> None:
    """Drop earlier experiments (on any baseline) of these names, and their entries still
    waiting in DVC's queue (left by earlier rnnlab versions), which a `dvc queue start` would
    otherwise run again under the same names."""
    if any((CELERY / "broker" / "in").glob("*.celery.msg")):  # no queue, no `dvc queue status`
        old = [task for task, name, status in queue_tasks()
               if name in names and status == "Queued"]
        if old:
            dvc("queue", "remove", *old, check=False, quiet=True)
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"],
                          capture_output=True, text=True, check=True).stdout.split()
    for ref in refs:
        if ref.rsplit("/", 1)[-1] in names:
            subprocess.run(["git", "update-ref", "-d", ref], check=True)


# ----------------------------------------------------------------------------- one run

@dataclass
class Active:
    """A run in progress: its `dvc exp run --temp` process (leader of its own process group,
    which its stage's processes join) and where its output goes."""

    run: Run
    proc: subprocess.Popen
    log: Path
    copies_before: set[str]  # DVC's temporary copies when it started
    started: float = 0.0  # when DVC had copied the repository for it (0: not yet)


def temp_command(run: Run) -> list[str]:
    """`dvc exp run --temp [-f] -n NAME -S key=value ... [stages]`."""
    sets = [arg for value in set_values(run.overrides) for arg in ("-S", value)]
    force = ["-f"] if run.overwrite else []
    return ["dvc", "exp", "run", "--temp", *force, "-n", run.name, *sets, *run.targets]


def launch(run: Run, command: Callable[[Run], list[str]] = temp_command) -> Active:
    """Start one run in a session of its own and record its process group in STATE.

    Its own session: Ctrl-C in a terminal reaches the workflow alone, which then stops each
    run in an order DVC survives (stop_runs), instead of every process at once. SIGINT back
    to its default in the run: a workflow started with SIGINT ignored (nohup, a CI runner)
    would pass that on, and its runs could then only be killed (stop_groups' SIGKILL after
    STOP_SECONDS), leaving DVC's temporary copies behind."""
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    log, before = STATE / "logs" / f"{run.name}.log", temp_dirs()
    with log.open("w") as out:
        proc = subprocess.Popen(command(run), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=environment(),
                                start_new_session=True, preexec_fn=default_sigint)
    (STATE / "runs").mkdir(parents=True, exist_ok=True)
    (STATE / "runs" / str(proc.pid)).write_text(f"{os.getpid()} {run.name}")
    return Active(run, proc, log, before)


def default_sigint() -> None:
    """In a child before it starts: SIGINT as a new process has it (Python then raises
    KeyboardInterrupt on it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_started(a: Active, seconds: float = START_SECONDS) -> None:
    """Wait until DVC has copied the repository for the run (or has given up).

    Until then DVC has the run's -S values written into the workspace's params.yaml and the
    run in a git stash that every `dvc exp run --temp` shares: each runs the newest entry, so
    a second one started before the first had taken its own would run the first one's
    experiment, and a run stopped then could leave the workspace's params.yaml changed."""
    deadline = time.monotonic() + seconds
    while (a.proc.poll() is None and temp_dirs() <= a.copies_before
           and time.monotonic() < deadline):
        time.sleep(0.05)
    a.started = time.monotonic()


def temp_dirs() -> set[str]:
    try:
        return {p.name for p in STANDALONE.iterdir() if p.name.startswith("tmp")}
    except OSError:
        return set()


def forget(proc: subprocess.Popen) -> None:
    (STATE / "runs" / str(proc.pid)).unlink(missing_ok=True)


def stop_groups(pids: list[int], seconds: float = STOP_SECONDS) -> None:
    """SIGINT to each process group, SIGKILL to those still there after `seconds`.

    SIGINT first: the stage's Python stops with KeyboardInterrupt, and `dvc exp run` (which
    ignores SIGINT while its stage runs) reports the failure and removes its temporary copy.
    SIGKILL would leave the copy behind, which `dvc exp show` lists as running (heal removes
    it). A group, never one process: a killed `dvc` leaves its stage training."""
    for pid in pids:
        signal_group(pid, signal.SIGINT)
    deadline = time.monotonic() + seconds
    while any(group_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        signal_group(pid, signal.SIGKILL)


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """True while any process of the group lives (zombies of our own children reaped)."""
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_runs(active: list[Active]) -> None:
    """Stop these runs (their whole process groups) and clean up after them; a run still
    starting first gets its copy of the repository (see wait_started)."""
    for a in active:
        if not a.started:
            wait_started(a, STOP_SECONDS)
    stop_groups([a.proc.pid for a in active])
    for a in active:
        a.proc.wait()
        forget(a.proc)
    tidy()


def failure_reason(log: Path, returncode: int | None = None) -> str:
    """The stage's own one-line error in a run's output (e.g. 'training diverged ...'), else
    DVC's last error line, else where to look."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        text = ""
    for pattern in (STAGE_ERROR, DVC_ERROR):
        errors = pattern.findall(text)
        if errors:
            return errors[-1].strip()
    exit_text = f" with exit {returncode}" if returncode is not None else ""
    return f"failed{exit_text}; see {log}"


# ----------------------------------------------------------------------------- healing

def heal() -> None:
    """Leave DVC as a clean stop would have: stop the runs that a killed workflow (kill -9,
    which runs no clean-up) left running, then tidy up."""
    leftover = recorded_runs()
    if leftover:
        stop_groups(leftover)
    for pid in leftover:
        (STATE / "runs" / str(pid)).unlink(missing_ok=True)
    tidy()


def tidy() -> None:
    """Remove what runs that could not clean up left in DVC's tmp folder (only while no
    `dvc exp run` of anyone's is going on), and the tasks DVC's queue shows as running with
    no worker."""
    if not dvc_processes(("exp", "run")):
        remove_stale_temp_runs()
        remove_partial_run_cache()
    if CELERY.is_dir() and not dvc_processes(("queue-worker",)):
        remove_orphaned_tasks()


def recorded_runs() -> list[int]:
    """Process groups of recorded runs whose workflow is gone but which are still `dvc exp
    run --temp` processes (a recycled pid is left alone, and so are the runs of a workflow
    still going on in this repository)."""
    import psutil

    alive = []
    for path in (STATE / "runs").glob("*"):
        try:
            owner = int(path.read_text().split()[0])
            if owner != os.getpid() and psutil.pid_exists(owner):
                continue
            if "--temp" in psutil.Process(int(path.name)).cmdline():
                alive.append(int(path.name))
                continue
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        path.unlink(missing_ok=True)
    return alive


def dvc_processes(words: tuple[str, ...]) -> list[int]:
    """Pids of the dvc processes working in this repository whose command line has `words`."""
    import psutil

    root, found = os.path.realpath("."), []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = proc.info["cmdline"] or []
        if (proc.info["cwd"] == root and any(arg.endswith("dvc") for arg in cmdline[:2])
                and all(word in cmdline for word in words)):
            found.append(proc.pid)
    return found


def remove_stale_temp_runs() -> None:
    """Remove the temporary copies and info files of --temp runs that ended without cleaning
    up (`dvc exp show` lists such a run as running forever), and the info files every --temp
    run leaves in .dvc/tmp/exps/run (no queue task is theirs)."""
    import shutil

    for folder in [*STANDALONE.glob("tmp*"), *STANDALONE.glob("run/*")]:
        shutil.rmtree(folder, ignore_errors=True)
    for info in EXEC_INFOS.glob("*/*.run"):
        try:
            location = json.loads(info.read_text()).get("location")
        except (OSError, ValueError):
            continue
        if location == "tempdir":
            shutil.rmtree(info.parent, ignore_errors=True)


def remove_partial_run_cache() -> None:
    """Remove the run-cache entries a stopped run was writing. DVC writes each as a .tmp file
    that it then renames, but takes the newest file of an entry's folder, .tmp or not: a half
    written one fails every later run of that stage with these params, "failed to reproduce
    'STAGE': 'outs'" (dvc/stage/cache.py, StageCache._load)."""
    for partial in (cache_dir() / "runs").glob("*/*/.*.tmp"):
        partial.unlink(missing_ok=True)


def cache_dir() -> Path:
    """DVC's cache folder: .dvc/cache unless `dvc cache dir` moved it (the `dir` of the
    [cache] section of .dvc/config.local or .dvc/config, relative to .dvc/)."""
    for config in (Path(".dvc/config.local"), Path(".dvc/config")):
        section = None
        for line in config.read_text().splitlines() if config.is_file() else []:
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]").strip().strip("'\"")
            elif section == "cache" and line.partition("=")[0].strip() == "dir":
                return Path(".dvc") / line.partition("=")[2].strip()
    return Path(".dvc/cache")


def remove_orphaned_tasks() -> None:
    """Forget the tasks DVC's queue still shows as Running although no worker runs them (the
    worker was stopped first: treeverse/dvc#7068): a task taken from the queue with no result.
    `dvc exp show` reads such a task's info file, long gone, and fails; `dvc queue kill` and
    `dvc queue remove` cannot drop it."""
    for message in (CELERY / "broker" / "processed").glob("*.celery.msg"):
        try:
            headers = json.loads(message.read_text()).get("headers", {})
        except (OSError, ValueError):
            continue
        task = headers.get("id")
        if (task and headers.get("task", "").endswith("run_exp")
                and not (CELERY / "result" / f"celery-task-meta-{task}").exists()):
            message.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the pool

def time_limit(durations: list[float]) -> float:
    """How long a run may take before it is reported and stopped: OVERTIME_FACTOR times the
    longest finished run (at least MIN_LIMIT), FIRST_LIMIT before any has finished."""
    if not durations:
        return FIRST_LIMIT
    return max(MIN_LIMIT, OVERTIME_FACTOR * max(durations))


def overtime_reason(seconds: float, durations: list[float]) -> str:
    """Why a run was stopped for taking too long, in one line."""
    if not durations:
        return f"stopped after {seconds:.0f} s, with no other run finished"
    return (f"stopped after {seconds:.0f} s, over {OVERTIME_FACTOR:g}x the longest finished "
            f"run ({max(durations):.0f} s)")


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) stop the runs as Ctrl-C does."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut the clean-up short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_pool(runs: list[Run], jobs: int, desc: str,
             command: Callable[[Run], list[str]] = temp_command,
             tick: float = 0.2) -> dict[str, str]:
    """Run every run, `jobs` at a time, with a progress bar; {name: failure reason} of those
    that failed. Ctrl-C (or any error) stops the runs in progress before it goes on."""
    from tqdm import tqdm

    pending, active, failures, durations, retried = list(runs), [], {}, [], set()
    with tqdm(total=len(runs), desc=desc, unit="exp", file=sys.stdout) as bar, \
            interrupts_raise():
        try:
            while pending or active:
                while pending and len(active) < jobs:
                    active.append(launch(pending.pop(next_run(pending, active)), command))
                    wait_started(active[-1])
                    refused(active[-1])
                time.sleep(tick)
                for a in [a for a in active if a.proc.poll() is not None]:
                    active.remove(a)
                    forget(a.proc)
                    if a.proc.returncode != 0 and is_lock_busy(a.log) \
                            and a.run.name not in retried:
                        # DVC's repo lock, busy for >3 s: once more. Overwriting: the run may
                        # have failed on the lock after committing its experiment, which a
                        # plain retry would refuse ("Experiment conflicts with existing
                        # experiment"; seen in a full capacity grid)
                        retried.add(a.run.name)
                        pending.append(replace(a.run, overwrite=True))
                        continue
                    durations.append(time.monotonic() - a.started)
                    if a.proc.returncode != 0:
                        failures[a.run.name] = failure_reason(a.log, a.proc.returncode)
                    bar.update(1)
                for a in overdue(active, time_limit(durations)):
                    active.remove(a)
                    stop_runs([a])
                    failures[a.run.name] = overtime_reason(time.monotonic() - a.started,
                                                           durations)
                    bar.update(1)
        except BaseException:
            with sigint_ignored():
                stop_runs(active)
            raise
    return failures


def next_run(pending: list[Run], active: list[Active]) -> int:
    """The index in `pending` of the run to start next: the first, except that a run beside a
    multicore one (TensorFlow's) is the first single-core run if there is one. On two cores,
    two TensorFlow runs side by side get through about as much work as one after the other
    (1.1-1.2x), a TensorFlow run and a numpy run about 1.4x (benchmarks/sweep_contention.py),
    so a sweep of both kinds finishes sooner with each TensorFlow run paired with numpy
    ones."""
    if any(a.run.multicore for a in active):
        return next((i for i, run in enumerate(pending) if not run.multicore), 0)
    return 0


def refused(a: Active) -> None:
    """RuntimeError with DVC's reason if DVC refused the run before it started (e.g. an -S
    value it cannot apply): every run of the sweep would be refused alike."""
    if a.proc.poll() is not None and a.proc.returncode != 0 and not is_lock_busy(a.log):
        reason = failure_reason(a.log, a.proc.returncode)
        if "Invalid `--set-param`" in reason or "Could not override" in reason:
            raise RuntimeError(f"DVC refused to queue {a.run.name}: {reason.splitlines()[0]}")


def is_lock_busy(log: Path) -> bool:
    try:
        return "Unable to acquire lock" in log.read_text(errors="replace")
    except OSError:
        return False


def overdue(active: list[Active], limit: float) -> list[Active]:
    now = time.monotonic()
    return [a for a in active if now - a.started > limit]


def run_all(runs: list[Run], jobs: int,
            desc: str) -> tuple[dict[str, Experiment], dict[str, str], list[str]]:
    """Run what is not current yet, `jobs` at a time, then find every run's experiment.

    Returns ({name: Experiment} of the finished runs, {name: failure reason}, [names that were
    current already and did not run again]).
    """
    heal()  # what an interrupted or killed workflow left, before anything runs
    workspace, before = read_params(), experiments([run.name for run in runs])
    current = [run.name for run in runs
               if run.name in before and before[run.name].is_current_for(run, workspace)]
    runs_tf = {targets: uses_tensorflow(list(targets)) for targets in {r.targets for r in runs}}
    todo = [replace(run, multicore=runs_tf[run.targets]) for run in runs
            if run.name not in current]
    failures = {}
    if todo:
        clear([run.name for run in todo])
        failures = run_pool(todo, jobs, desc)
    after = experiments([run.name for run in runs])
    results = {run.name: after[run.name] for run in runs
               if run.name in after and run.name not in failures}
    for run in runs:
        if run.name not in results:
            failures.setdefault(run.name, "failed; it left no experiment")
    return results, failures, current
