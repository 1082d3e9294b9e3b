"""Named DVC experiments, run in parallel: what `make compare` and `make capacity` share.

`jobs` worker processes (rnnlab.workflows.worker) take the runs one at a time, in the given
order except that a TensorFlow run (which spreads over every core) gets numpy runs beside it
while any wait (`next_run`). A worker makes its own copy of the repository once, imports
TensorFlow once, and then, for each run: params.yaml with the run's -S values, DVC
reproducing the run's stages, `dvc exp save` under the run's name, the experiment's ref pushed
here. Every result is an ordinary experiment (`dvc exp show`, `dvc metrics diff`,
`dvc exp push`), the same commit `dvc exp run --temp -n NAME -S ...` makes
(tests/workflows/test_worker.py). A run that fails is reported with the stage's own one-line
error, taken from the run's output.

Why workers and not one `dvc exp run --temp` per run, which rnnlab used before: that paid,
for every experiment, for starting DVC, a copy of the repository, a process per stage and
TensorFlow's import, about 15 s of a capacity experiment's 60 (benchmarks/sweep_overhead.py).
Why not DVC's queue (`dvc exp run --queue` + `dvc queue start`), used before that: stopping
it mid-sweep broke the repository. After `dvc queue stop --kill` (which shuts the Celery
workers down, then kills the running tasks) the killed tasks ended Failed, but the workers had
taken the next queued ones, which stayed "Running" with no worker and no info file, and every
`dvc exp show` then failed with "No such file or directory: .dvc/tmp/exps/run/<id>/<id>.run"
(3 of 3 tries; treeverse/dvc#7068, and random failures with -j > 1: treeverse/dvc#10673); the
killed tasks' stage processes went on training. A worker of our own is one process group that
we stop as a whole, and the next workflow cleans up after one that could not clean up itself
(see `heal`, which also repairs what the earlier ways left).

Results are read from the experiments' git commits (refs/exps/...). A run whose experiment
already exists with the same params and the same code for the stages it runs (its dvc.lock
against the workspace's files) is not run again, whatever commit it was run on, so repeating
a workflow with nothing changed trains nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rnnlab.pipeline.code_deps import (FINGERPRINT_STAGE, current_md5, declared, is_code_dep,
                                      upstream_stages, uses_tensorflow)
from rnnlab.pipeline.params import parse_yaml, read_params
from rnnlab.workflows.dvc_commands import dvc, dvc_output_retried, environment

TASK_ID = re.compile(r"[0-9a-f]{7,}")
STAGE_ERROR = re.compile(r"^[\w@.-]+: error: (.*)$", re.MULTILINE)  # run_stage's one-line errors
DVC_ERROR = re.compile(r"^ERROR: (.*)$", re.MULTILINE)

# Our own bookkeeping, in DVC's git-ignored tmp folder: one file per running worker (its
# process group, so that the next workflow can stop what a killed one left running), each
# run's output (for its failure reason) and the workers' copies of the repository.
STATE = Path(".dvc/tmp/rnnlab")
WORKERS = STATE / "workers"  # one <worker pid>-* folder per worker (rnnlab.workflows.worker)
WORKER_MODULE = "rnnlab.workflows.worker"
# Where `dvc exp run --temp` (which earlier rnnlab versions ran) copies the repository (one
# tmp* folder per run) and keeps each run's info file (run/<id>/<id>.run); every --temp run
# also leaves an info file in .dvc/tmp/exps/run/ (a DVC quirk), which only DVC's queue reads.
STANDALONE = Path(".dvc/tmp/exps/standalone")
EXEC_INFOS = Path(".dvc/tmp/exps/run")
CELERY = Path(".dvc/tmp/exps/celery")  # DVC's queue, which earlier rnnlab versions used

STOP_SECONDS = 15.0  # how long a stopped worker gets to clean up after itself before SIGKILL
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


# ----------------------------------------------------------------------------- workers

def worker_command(tensorflow: bool = True) -> list[str]:
    """A worker process (rnnlab.workflows.worker) for this repository, starting every
    experiment from its files as they are now; it imports TensorFlow before its first run if
    the sweep has TensorFlow runs."""
    from rnnlab.workflows.worker import snapshot

    flags = ["--start", snapshot(Path("."))] + ([] if tensorflow else ["--no-tensorflow"])
    return [sys.executable, "-m", WORKER_MODULE, *flags, os.path.realpath(".")]


@dataclass
class Worker:
    """A worker process (leader of its own process group, which the processes running its
    experiments' stages join) and the run it is on (None: waiting for one)."""

    proc: subprocess.Popen
    run: Run | None = None
    started: float = 0.0  # when it was given its run


def start_worker(command: list[str]) -> Worker:
    """Start a worker in a session of its own and record its process group in STATE.

    Its own session: Ctrl-C in a terminal reaches the workflow alone, which then stops each
    worker (stop_workers) and waits for it to clean up, instead of every process at once.
    SIGINT back to its default in the worker: a workflow started with SIGINT ignored (nohup,
    a CI runner) would pass that on, and its workers could then only be killed (stop_groups'
    SIGKILL after STOP_SECONDS), leaving their copies behind (heal removes them)."""
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    with (STATE / "logs" / "workers.log").open("a") as errors:  # a worker's own errors
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=errors, text=True, env=environment(),
                                start_new_session=True, preexec_fn=default_sigint)
    (STATE / "runs").mkdir(parents=True, exist_ok=True)
    (STATE / "runs" / str(proc.pid)).write_text(f"{os.getpid()} worker")
    return Worker(proc)


def default_sigint() -> None:
    """In a child before it starts: SIGINT as a new process has it (Python then raises
    KeyboardInterrupt on it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def give(worker: Worker, run: Run) -> None:
    """Hand a run to an idle worker (one JSON line; see rnnlab.workflows.worker)."""
    request = {"name": run.name, "overrides": run.overrides, "targets": list(run.targets)}
    (STATE / "logs" / f"{run.name}.log").unlink(missing_ok=True)  # an earlier sweep's
    worker.run, worker.started = run, time.monotonic()
    with contextlib.suppress(OSError):  # it died while idle: `replies` reports its run failed
        worker.proc.stdin.write(json.dumps(request) + "\n")
        worker.proc.stdin.flush()


def replies(busy: list[Worker], seconds: float) -> list[tuple[Worker, dict | None]]:
    """The workers of `busy` that finish their run within `seconds`, each with its reply;
    None for a worker that ended instead (killed, or failed to start)."""
    if not busy:
        time.sleep(seconds)
        return []
    ready, _, _ = select.select([w.proc.stdout for w in busy], [], [], seconds)
    done = []
    for worker in (w for w in busy if w.proc.stdout in ready):
        line = worker.proc.stdout.readline()  # one reply per run given: never a second line
        done.append((worker, json.loads(line) if line.strip() else None))
    return done


def forget(proc: subprocess.Popen) -> None:
    (STATE / "runs" / str(proc.pid)).unlink(missing_ok=True)


def close_workers(workers: list[Worker]) -> None:
    """Tell idle workers there is no more work (end of their input): each removes its copy
    and ends; stopped if it has not after STOP_SECONDS."""
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.proc.stdin.close()
    deadline = time.monotonic() + STOP_SECONDS
    while any(w.proc.poll() is None for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_workers(workers)


def stop_workers(workers: list[Worker]) -> None:
    """Stop these workers (their whole process groups: the run in progress is not saved) and
    wait until they have cleaned up."""
    stop_groups([w.proc.pid for w in workers if w.proc.poll() is None])
    for worker in workers:
        worker.proc.wait()
        for pipe in (worker.proc.stdin, worker.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        forget(worker.proc)


def ended(worker: Worker) -> None:
    """A worker whose replies ended: let it exit by itself (its exit code says why it
    ended), stopped if it has not within STOP_SECONDS."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.proc.wait(STOP_SECONDS)
    stop_workers([worker])


def stop_groups(pids: list[int], seconds: float = STOP_SECONDS) -> None:
    """SIGINT to each process group, SIGKILL to those still there after `seconds`.

    SIGINT first: the stage's Python stops with KeyboardInterrupt, and the worker waits for
    its experiment's process to end, then removes its copy of the repository. SIGKILL would
    leave the copy behind (heal removes it). A group, never one process: a killed worker
    would leave its experiment's process training."""
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


def failure_reason(log: Path, returncode: int | None = None, shown: Path | None = None) -> str:
    """The stage's own one-line error in a run's output (e.g. 'training diverged ...'), else
    DVC's last error line, else where to look (`shown`: the log's path as the user sees it)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        text = ""
    for pattern in (STAGE_ERROR, DVC_ERROR):
        errors = pattern.findall(text)
        if errors:
            return errors[-1].strip()
    if returncode is not None and returncode < 0:  # its process was killed (kill -9, OOM)
        return f"its process was killed ({signal.Signals(-returncode).name}); see {shown or log}"
    exit_text = f" with exit {returncode}" if returncode is not None else ""
    return f"failed{exit_text}; see {shown or log}"


# ----------------------------------------------------------------------------- healing

def heal() -> None:
    """Leave DVC as a clean stop would have: stop the workers that a killed workflow (kill -9,
    which runs no clean-up) left running, then tidy up."""
    leftover = recorded_runs()
    if leftover:
        stop_groups(leftover)
    for pid in leftover:
        (STATE / "runs" / str(pid)).unlink(missing_ok=True)
    tidy()


def tidy() -> None:
    """Remove what workers (and the `dvc exp run --temp` runs of earlier versions) that could
    not clean up left in DVC's tmp folder (only while no worker or `dvc exp run` of anyone's
    works in this repository), and the tasks DVC's queue shows as running with no worker."""
    if not processes_here(is_worker_here) and not processes_here(is_dvc_exp_run):
        remove_stale_copies()
        remove_stale_temp_runs()
        remove_partial_run_cache()
    if CELERY.is_dir() and not processes_here(is_dvc_queue_worker):
        remove_orphaned_tasks()


def recorded_runs() -> list[int]:
    """Process groups of recorded workers whose workflow is gone but which are still workers
    (a recycled pid is left alone, and so are the workers of a workflow still going on in this
    repository)."""
    import psutil

    alive = []
    for path in (STATE / "runs").glob("*"):
        try:
            owner = int(path.read_text().split()[0])
            if owner != os.getpid() and psutil.pid_exists(owner):
                continue
            if is_worker_here(psutil.Process(int(path.name)).cmdline()):
                alive.append(int(path.name))
                continue
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        path.unlink(missing_ok=True)
    return alive


def is_worker(cmdline: list[str]) -> bool:
    return WORKER_MODULE in cmdline


def is_worker_here(cmdline: list[str]) -> bool:
    """A worker for this repository (it works in its copy: its command line names the
    repository)."""
    return is_worker(cmdline) and cmdline[-1:] == [os.path.realpath(".")]


def is_dvc_exp_run(cmdline: list[str]) -> bool:
    return any(arg.endswith("dvc") for arg in cmdline[:2]) and "exp" in cmdline \
        and "run" in cmdline


def is_dvc_queue_worker(cmdline: list[str]) -> bool:
    return any(arg.endswith("dvc") for arg in cmdline[:2]) and "queue-worker" in cmdline


def processes_here(matches) -> list[int]:
    """Pids of the processes working in this repository (or a worker's copy of it) whose
    command line `matches`."""
    import psutil

    root, found = os.path.realpath("."), []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cwd = proc.info["cwd"] or ""
        if (cwd == root or cwd.startswith(os.path.join(root, WORKERS) + os.sep)) \
                and matches(proc.info["cmdline"] or []):
            found.append(proc.pid)
    return found


def remove_stale_copies() -> None:
    """Remove the copies of workers that ended without removing them (killed)."""
    import shutil

    for copy in WORKERS.glob("*"):
        shutil.rmtree(copy, ignore_errors=True)


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


def cache_dir(root: Path = Path(".")) -> Path:
    """DVC's cache folder, relative to the repository at `root`: .dvc/cache unless `dvc cache
    dir` moved it (the `dir` of the [cache] section of .dvc/config.local or .dvc/config,
    relative to .dvc/)."""
    for config in (root / ".dvc/config.local", root / ".dvc/config"):
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


def run_pool(runs: list[Run], jobs: int, desc: str, command: list[str] | None = None,
             tick: float = 0.2) -> dict[str, str]:
    """Run every run on `jobs` workers, with a progress bar; {name: failure reason} of those
    that failed. Ctrl-C (or any error) stops the workers before it goes on."""
    from tqdm import tqdm

    command = command or worker_command(any(run.multicore for run in runs))
    pending, workers, failures, durations = list(runs), [], {}, []
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    (STATE / "logs" / "workers.log").write_text("")  # this sweep's workers' errors only
    with tqdm(total=len(runs), desc=desc, unit="exp", file=sys.stdout) as bar, \
            interrupts_raise():
        try:
            while pending or busy(workers):
                while pending and len(busy(workers)) < jobs:
                    idle = [w for w in workers if w.run is None]
                    worker = idle[0] if idle else start_worker(command)
                    workers += [] if idle else [worker]
                    give(worker, pending.pop(next_run(pending, [w.run for w in busy(workers)])))
                for worker, reply in replies(busy(workers), tick):
                    name = worker.run.name
                    if reply is None:  # the worker is ending (its replies closed)
                        workers.remove(worker)
                        ended(worker)
                        log = STATE / "logs" / f"{name}.log"  # none if it never got that far
                        failures[name] = failure_reason(
                            log if log.exists() else STATE / "logs" / "workers.log",
                            worker.proc.returncode)
                    else:
                        durations.append(time.monotonic() - worker.started)
                        worker.run = None
                        if not reply["ok"]:
                            failures[name] = refused(name, reply["reason"])
                    bar.update(1)
                for worker in overdue(busy(workers), time_limit(durations)):
                    failures[worker.run.name] = overtime_reason(
                        time.monotonic() - worker.started, durations)
                    workers.remove(worker)
                    stop_workers([worker])
                    bar.update(1)
        except BaseException:
            with sigint_ignored():
                stop_workers(workers)
            raise
    close_workers(workers)
    return failures


def busy(workers: list[Worker]) -> list[Worker]:
    return [w for w in workers if w.run is not None]


def next_run(pending: list[Run], running: list[Run]) -> int:
    """The index in `pending` of the run to start next: the first, except that a run beside a
    multicore one (TensorFlow's) is the first single-core run if there is one. On two cores,
    two TensorFlow runs side by side get through 1.3-1.4x the work of one after the other (the
    workers' idle threads sleep; 1.1-1.2x when they spun), a TensorFlow run and a numpy run
    about 1.5x (benchmarks/sweep_contention.py), so a sweep of both kinds finishes sooner with
    each TensorFlow run paired with numpy ones."""
    if any(run.multicore for run in running):
        return next((i for i, run in enumerate(pending) if not run.multicore), 0)
    return 0


def refused(name: str, reason: str) -> str:
    """The reason a run failed; a RuntimeError instead if DVC refused its params (an -S value
    it cannot apply): every run of the sweep would be refused alike."""
    if "Invalid `--set-param`" in reason or "Could not override" in reason:
        raise RuntimeError(f"DVC refused to run {name}: {reason.splitlines()[0]}")
    return reason


def overdue(workers: list[Worker], limit: float) -> list[Worker]:
    now = time.monotonic()
    return [w for w in workers if now - w.started > limit]


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
