"""One long-lived process that runs a sweep's experiments one after another, each recorded
with `dvc exp save`: TensorFlow is imported once, and the compiled steps stay in memory.

Why: a `dvc exp run --temp` per experiment pays, each time, for starting DVC, copying the
repository into a temporary folder, a Python process per stage and TensorFlow's import (about
15 s of a capacity experiment's 60 s, benchmarks/sweep_overhead.py). A worker pays for its copy
once: a git clone of the repository sharing its objects, the workspace's uncommitted changes
on top, DVC's cache shared. Then, for each experiment it is given, in a fork of itself:

1. params.yaml is the workspace's with the run's overrides, applied the way `dvc exp run -S`
   applies them (DVC's own `apply_overrides`);
2. DVC reproduces the run's stages (`Repo.reproduce`, with the run cache, as `dvc exp run`
   does), except that a stage whose command is `python stages/NAME.py` runs in a fork of the
   worker, with the environment DVC would give its process, instead of in a new process: its
   imports are done;
3. `Repo.experiments.save` records the workspace as the named experiment (params.yaml,
   dvc.lock, the git-tracked outputs; cached outputs are in the shared cache), and git
   pushes its ref to the repository (refs/exps/...), where `dvc exp show` lists it.

The experiment holds the files `dvc exp run --temp` would have committed: the same params,
the same dvc.lock, the same output bits (tests/workflows/test_worker.py runs the same
experiments both ways and compares their trees; tests/test_workflows_e2e.py a real
experiment's stages against `dvc repro`). A failed stage (its one-line error) fails that
experiment alone; the next starts in a new copy.

Protocol: one JSON object per line on stdin, {"name", "overrides", "targets"};
one per line on stdout when it is done, {"name", "ok", "reason"}. Each experiment's output
goes to .dvc/tmp/rnnlab/logs/NAME.log of the repository, as a `dvc exp run --temp` run's
does, and the worker ends it with the time the experiment took (EXPERIMENT_TIME). End of
input: the worker removes its copy and exits. Ctrl-C (SIGINT to its process group): the
experiment in progress is not saved, the copy is removed.

    python -m rnnlab.workflows.worker [--no-tensorflow] [--start COMMIT] REPOSITORY
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

STAGE_SCRIPT = "stages/"  # `python stages/NAME.py`: a stage of ours, run in this process
CACHE_LOCK = Path(".dvc/tmp/rnnlab/cache.lock")  # in the repository: held by a worker's commit
REPLIES_FD: int | None = None  # main's descriptor for replies, which forked runs close


def git(*args: str, cwd: Path | str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def snapshot(repository: Path) -> str:
    """A commit with the repository's files as they are: its HEAD with the uncommitted changes
    to tracked files (`git stash create`, which leaves the workspace alone); HEAD itself if
    there are none. Taken once per sweep, before any worker starts (two at once would contend
    for git's index lock), so every worker starts from the same files."""
    # stat-only differences (a copied checkout) first: `git stash create` fails on them
    subprocess.run(["git", "update-index", "-q", "--refresh"], cwd=repository,
                   capture_output=True)
    return (git("stash", "create", cwd=repository)
            or git("rev-parse", "HEAD", cwd=repository))


def make_copy(repository: Path, start: str) -> Path:
    """A working copy of the repository as `dvc exp run --temp` would see it: a clone sharing
    its git objects, at its HEAD (the experiments' baseline), with the files of `start` (a
    `snapshot`) and DVC's cache shared. Every experiment starts from those files (`reset`)."""
    from rnnlab.workflows.queue import WORKERS

    (repository / WORKERS).mkdir(parents=True, exist_ok=True)
    copy = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=repository / WORKERS))
    git("clone", "-q", "--shared", "--no-checkout", str(repository), str(copy), cwd=repository)
    git("fetch", "-q", str(repository), start, cwd=copy)
    git("checkout", "-q", "--detach", git("rev-parse", "HEAD", cwd=repository), cwd=copy)
    share_settings(repository, copy)
    return copy


def share_settings(repository: Path, copy: Path) -> None:
    """The repository's local DVC settings in the copy, its cache folder shared (as DVC's temp
    executor merges config.local), and the git identity that commits experiments there."""
    from configobj import ConfigObj

    from rnnlab.workflows.queue import cache_dir

    config = ConfigObj(str(repository / ".dvc" / "config.local"))
    config.filename = str(copy / ".dvc" / "config.local")
    config.setdefault("cache", {})["dir"] = str((repository / cache_dir(repository)).resolve())
    config.write()
    for key in ("user.name", "user.email"):
        value = subprocess.run(["git", "config", "--get", key], cwd=repository,
                               capture_output=True, text=True).stdout.strip()
        if value:
            git("config", key, value, cwd=copy)


def reset(copy: Path, start: str) -> None:
    """The copy's files as they were in the repository when the worker started, whatever the
    last experiment changed or added: index and git-tracked files those of `start` (files it
    adds staged, files it deletes gone, as DVC's stash apply leaves a --temp copy), untracked
    ones removed, HEAD (the baseline) unchanged. DVC's cached outputs follow in
    run_experiment, from dvc.lock, as `dvc exp run` checks them out."""
    git("read-tree", "--reset", "-u", start, cwd=copy)
    git("clean", "-q", "-f", "-d", cwd=copy)


@contextlib.contextmanager
def replacing(*changes: tuple[Any, str, Any]) -> Iterator[None]:
    """Each (owner, attribute, value) set while active, the originals put back after: how the
    worker changes a few of DVC's functions for its experiments."""
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in changes]
    for owner, name, value in changes:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)


@contextlib.contextmanager
def stages_in_this_process() -> Iterator[None]:
    """While active, DVC runs `python stages/NAME.py` by running the script here (what
    dvc.stage.run.cmd_run would start as a process); any other command as usual."""
    import dvc.stage.run as stage_run

    original = stage_run.cmd_run

    def cmd_run(stage, dry: bool = False, run_env: dict | None = None) -> None:
        command = stage.cmd if isinstance(stage.cmd, str) else ""
        words = shlex.split(command) if "\n" not in command else []
        if dry or len(words) < 2 or words[0] != "python" or not is_stage_script(words[1]):
            return original(stage, dry=dry, run_env=run_env)
        stage_run.logger.info("Running stage '%s':\n> %s", stage.addressing, command)
        env = stage_run.prepare_kwargs(stage, run_env=run_env)["env"]
        run_script(Path(stage.wdir), words[1:], env, command)

    with replacing((stage_run, "cmd_run", cmd_run)):
        yield


@contextlib.contextmanager
def cache_writes_one_at_a_time(lock_file: Path) -> Iterator[None]:
    """While active, DVC commits an output to its cache, or checks one out of it, only while
    this process holds `lock_file` (flock). The workers share one cache, and when two of them
    committed the same new files at the same moment (the first two runs of a capacity grid
    point both reproduce its data stage), one experiment once failed with DVC's "unable to
    remove '.../data/memory/train.npz' without a confirmation", raised as its commit found
    the object it had just written not (yet, or no longer) whole in the cache. Our stages'
    outputs are small: a commit takes milliseconds, and the wait for one as long."""
    import fcntl

    from dvc.output import Output

    held = 0  # calls in progress here: a nested one (were DVC to check out while committing)
    # must not flock again, as a second open of the file would wait for the first

    def locked(original: Callable) -> Callable:
        def method(self, *args, **kwargs):
            nonlocal held
            if held:
                return original(self, *args, **kwargs)
            with lock_file.open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                held += 1
                try:
                    return original(self, *args, **kwargs)
                finally:
                    held -= 1
        return method

    with replacing(*[(Output, name, locked(getattr(Output, name)))
                     for name in ("commit", "checkout")]):
        yield


@contextlib.contextmanager
def yaml_parsed_once() -> Iterator[None]:
    """While active, DVC parses a YAML text it has parsed or written before from memory: a
    copy of what it got the first time. An experiment rewrites dvc.lock after each stage and
    reads it back before the next with ruamel's pure-Python round-trip loader (the largest
    part of DVC's own work in a profile of one), and rebuilds its index from dvc.yaml and
    dvc.lock a few times more. What DVC writes is recorded as the parse of the text written:
    DVC's files are the fixed point of a dump and a parse (tests/test_workflows_e2e.py
    compares an experiment's dvc.lock with `dvc repro`'s byte for byte, test_worker.py its
    commit with `dvc exp run --temp`'s). The worker warms the cache with its copy's files
    before its first fork, so every experiment starts with them parsed."""
    import copy
    import io

    import dvc.utils.serialize as serialize
    import dvc.utils.strictyaml as strictyaml
    from dvc.utils.serialize import _yaml

    parse, dump = _yaml.parse_yaml, _yaml._dump
    parsed: dict[tuple[str, str], Any] = {}

    def parse_yaml(text: str, path, typ: str = "safe"):
        if (typ, text) not in parsed:
            parsed[typ, text] = copy.deepcopy(parse(text, path, typ))
        return copy.deepcopy(parsed[typ, text])

    def dump_yaml(data: Any, stream) -> None:
        buffer = io.StringIO()
        dump(data, buffer)
        text = buffer.getvalue()
        stream.write(text)
        parsed["rt", text] = copy.deepcopy(data)

    with replacing(*[(module, "parse_yaml", parse_yaml) for module in (_yaml, serialize,
                                                                       strictyaml)],
                   (_yaml, "_dump", dump_yaml)):
        yield


def warm_yaml_cache(copy: Path) -> None:
    """The copy's DVC files and params parsed the ways an experiment parses them."""
    from dvc.utils.serialize import _yaml

    for name in ("dvc.yaml", "dvc.lock", "params.yaml"):
        if (copy / name).exists():
            text = (copy / name).read_text(encoding="utf-8")
            for typ in ("safe", "rt"):
                _yaml.parse_yaml(text, name, typ)


def is_stage_script(word: str) -> bool:
    return word.startswith(STAGE_SCRIPT) and word.endswith(".py")


def run_script(wdir: Path, argv: list[str], env: dict[str, str], command: str) -> None:
    """Run a stage script as `python script` would, in a fork of this process (which, like a
    new process, starts from the worker's state just after its imports, whatever an earlier
    stage of the experiment did: a stage run after another in one process computed other last
    bits). Its exit status: StageCmdFailedError as DVC raises for a failed process; Ctrl-C
    goes on up."""
    from dvc.stage.exceptions import StageCmdFailedError

    code = in_child(partial(script_exit_code, wdir, argv, env))
    if code in (130, -signal.SIGINT):  # run_stage's exit on Ctrl-C: the worker is stopping
        raise KeyboardInterrupt
    if code != 0:
        raise StageCmdFailedError(command, code)


def script_exit_code(wdir: Path, argv: list[str], env: dict[str, str]) -> int:
    """Run a stage script here as `python script` would: __main__, its folder first on
    sys.path, argv, the environment DVC gives a stage; its exit code."""
    from rnnlab.pipeline import stage as stage_wrapper

    script = wdir / argv[0]
    os.environ.clear()
    os.environ.update(env)
    sys.argv, sys.path[0:0] = [str(script), *argv[1:]], [str(script.parent)]
    stage_wrapper.reset_phases()
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # sys.exit("message"): as Python does at exit
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001  (as a stage's own process: the traceback, exit 1)
        traceback.print_exc()
        return 1
    return 0


def set_params(copy: Path, overrides: dict[str, Any]) -> None:
    """The run's overrides into params.yaml, applied as `dvc exp run -S` applies them."""
    from dvc.utils.hydra import apply_overrides

    from rnnlab.workflows.dvc_commands import set_values

    if overrides:
        apply_overrides(copy / "params.yaml", set_values(overrides))


def run_experiment(copy: Path, start: str, repository: Path, spec: dict) -> None:
    """From the worker's starting files, the run's params, its stages reproduced (DVC's
    `dvc exp run` steps: checkout, then reproduce, staging each stage's files), the experiment
    saved and its ref pushed to the repository."""
    from dvc.repo import Repo
    from dvc.repo.checkout import checkout
    from dvc.repo.experiments.executor.base import BaseExecutor

    reset(copy, start)
    set_params(copy, spec.get("overrides") or {})
    targets = list(spec.get("targets") or []) or None
    env = {"DVC_EXP_NAME": spec["name"], "DVC_ROOT": str(repository),
           "DVC_EXP_BASELINE_REV": git("rev-parse", "HEAD", cwd=copy)}
    with Repo(str(copy)) as repo:
        checkout(repo, targets=targets, with_deps=targets is not None, force=True,
                 allow_missing=True)
        repo.reproduce(targets, run_env=env, repro_fn=BaseExecutor._repro_and_track)
        # only the run's stages: saving commits (records in dvc.lock) the stages it is given,
        # all of them by default, as if every stage had run with these params
        repo.experiments.save(targets, name=spec["name"])
    push_experiment(copy, repository, spec["name"])


def push_experiment(copy: Path, repository: Path, name: str) -> None:
    """The experiment's ref (refs/exps/../NAME) into the repository, replacing one of that
    name on the same baseline."""
    refs = git("for-each-ref", "--format=%(refname)", "refs/exps/", cwd=copy).split()
    ref = next(r for r in refs if r.rsplit("/", 1)[-1] == name)
    drop_dvc_tmp(copy, ref)
    git("push", "-q", "--force", str(repository), f"{ref}:{ref}", cwd=copy)
    git("update-ref", "-d", ref, cwd=copy)


def drop_dvc_tmp(copy: Path, ref: str) -> None:
    """The experiment's commit again without .dvc/tmp/ (same parent, message, author and
    dates). `exp save` (DVC 3.67) commits .dvc/tmp/repro.dat, the pickled arguments it stashes
    for itself, which its stash apply leaves staged though git ignores the folder; applied or
    merged, it would make every later `dvc exp run` warn that it was committed by mistake."""
    if not git("ls-tree", "-r", "--name-only", ref, "--", ".dvc/tmp", cwd=copy):
        return
    fields = git("log", "-1", "--format=%an%n%ae%n%ad%n%cn%n%ce%n%cd", ref, cwd=copy).split("\n")
    names = ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_NAME",
             "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE"]
    env = dict(os.environ, GIT_INDEX_FILE=str(copy / ".git" / "rnnlab-save-index"),
               **dict(zip(names, fields, strict=True)))
    git("read-tree", ref, cwd=copy, env=env)
    git("rm", "-q", "-r", "--cached", "--", ".dvc/tmp", cwd=copy, env=env)
    tree = git("write-tree", cwd=copy, env=env)
    message = git("log", "-1", "--format=%B", ref, cwd=copy)
    commit = git("commit-tree", tree, "-p", f"{ref}^", "-m", message, cwd=copy, env=env)
    git("update-ref", ref, commit, cwd=copy)


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (the stage's prints, tqdm, DVC's log) into `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(1), os.dup(2)
    with log.open("w") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def in_child(work: Callable[[], int], log: Path | None = None) -> int:
    """Run `work` in a forked copy of this process, its output into `log` (given); its exit
    code, work()'s return value (negative: the signal that ended it).

    Forked, not run here: every experiment (and each of its stages) starts from the same
    state, this process just after its imports (TensorFlow's among them), as a new process
    would, never from what an earlier one left (TensorFlow's graphs and name counters, DVC's
    open repository); the persistent XLA cache then finds the steps an earlier experiment
    compiled (its key has the step's function name, which has a per-process counter in it);
    and a killed training process (kill -9, out of memory) ends one experiment, not the
    worker."""
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 1
        try:
            end_with_parent(parent)
            with output_to(log) if log else contextlib.nullcontext():
                code = work()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return wait_for_child(pid)


def end_with_parent(parent: int) -> None:
    """In the child: killed if the worker dies first (kill -9), so that no experiment goes on
    training, and later saved, for a pool that has given it up; stdin (the worker's requests)
    from /dev/null and no copy of the replies' descriptor, so that the pool sees the end of a
    dead worker's replies at once."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the worker ended before prctl took effect
        os._exit(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    global REPLIES_FD
    if REPLIES_FD is not None:
        os.close(REPLIES_FD)
        REPLIES_FD = None


def run_reported(work: Callable[[], None]) -> int:
    """work()'s exit code: 0, 130 for Ctrl-C, else 1 with DVC's kind of error line (its
    cause too, as `dvc` prints it: "Invalid `--set-param` value: Could not override ...")."""
    try:
        work()
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001  (reported in the log; the worker goes on)
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        print(f"ERROR: {exc}{cause}", file=sys.stderr)
        return 1


def wait_for_child(pid: int) -> int:
    """The child's exit code; a Ctrl-C meanwhile (which the child gets too: one process
    group) waits for it to end, then goes on up."""
    interrupted = False
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
    return os.waitstatus_to_exitcode(status)


@contextlib.contextmanager
def dvc_as_workers_run_it(repository: Path) -> Iterator[None]:
    """DVC as a worker's experiments run it: stage scripts in forks of the worker, commits to
    the shared cache one at a time, YAML texts parsed once."""
    with stages_in_this_process(), cache_writes_one_at_a_time(repository / CACHE_LOCK), \
            yaml_parsed_once():
        yield


# The last line of every run's log: how long the experiment took in its worker, from the fork to
# its ref pushed. benchmarks/sweep_overhead.py reads it to tell DVC's part of an experiment from
# the workers' start-up and their wait at a sweep's end.
EXPERIMENT_TIME = "rnnlab worker: {name} took {seconds:.2f} s"


def record_time(log: Path, name: str, seconds: float) -> None:
    """EXPERIMENT_TIME on a line of its own at the end of `log` (after a newline if a killed
    child left its last line unfinished); nothing, the worker going on, if the log cannot be
    written."""
    with contextlib.suppress(OSError):
        with log.open("rb") as written:
            ended = written.seek(0, os.SEEK_END) == 0  # empty
            if not ended:
                written.seek(-1, os.SEEK_END)
                ended = written.read(1) == b"\n"
        with log.open("a") as out:
            out.write(("" if ended else "\n")
                      + EXPERIMENT_TIME.format(name=name, seconds=seconds) + "\n")


def serve(repository: Path, start: str, requests, replies) -> None:
    """Run each request (a JSON line) in a copy of `repository` with the files of `start`; one
    JSON reply line each."""
    from rnnlab.workflows.queue import STATE, failure_reason

    logs = repository / STATE / "logs"
    copy = make_copy(repository, start)
    try:
        with dvc_as_workers_run_it(repository):
            warm_yaml_cache(copy)
            for line in requests:
                spec = json.loads(line)
                log = logs / f"{spec['name']}.log"
                started = time.perf_counter()
                with contextlib.chdir(copy):
                    experiment = partial(run_experiment, copy, start, repository, spec)
                    code = in_child(partial(run_reported, experiment), log)
                record_time(log, spec["name"], time.perf_counter() - started)
                if code != 0:  # a new copy: a run stopped mid-save can leave git's in a mess
                    shutil.rmtree(copy, ignore_errors=True)
                    copy = make_copy(repository, start)
                reason = None if code == 0 else failure_reason(
                    log, code, shown=log.relative_to(repository))
                print(json.dumps({"name": spec["name"], "ok": code == 0, "reason": reason}),
                      file=replies, flush=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


# What an experiment imports on the way, besides the modules `preload` names: DVC imports
# most of itself lazily (the stage graph's networkx, hydra's override parser and its antlr4
# grammar, the experiments' celery queue, the git backends), the stages their data helpers.
# Imported once in the worker rather than in every experiment's fork (where an experiment
# imported hundreds of modules before; tests/workflows/test_worker.py checks it imports none).
EXPERIMENT_IMPORTS = (
    "networkx", "hydra._internal.config_loader_impl", "antlr4.LL1Analyzer",
    "hydra.core.override_parser.overrides_parser", "platformdirs", "pygit2",
    "dulwich.filters", "dulwich.gc", "dulwich.line_ending", "dulwich.porcelain",
    "dulwich.stash", "dulwich.worktree", "scmrepo.git.backend.pygit2.filter",
    "fsspec.implementations.memory", "ruamel.yaml.mergevalue", "dvc.cachemgr",
    "dvc.data_cloud", "dvc.dirs", "dvc.repo.artifacts", "dvc.repo.checkout", "dvc.repo.datasets",
    "dvc.repo.experiments.queue.celery", "dvc.repo.experiments.queue.workspace",
    "dvc.repo.experiments.save", "dvc.repo.graph", "dvc.repo.index", "dvc.repo.plots",
    "dvc.repo.stage", "dvc.repo.trie", "dvc_data.fs", "dvc_data.hashfile._progress",
    "dvc_data.hashfile.db.local", "dvc_data.hashfile.status", "dvc_data.index.checkout",
    "dvclive", "numpy.random", "rnnlab.pipeline.datasets", "rnnlab.pipeline.sequences")


def preload(tensorflow: bool) -> None:
    """What every experiment imports (DVC, TensorFlow if asked), once, before the first fork;
    TensorFlow's idle threads set to sleep at once, as the workers share the machine."""
    import importlib

    import dvc.repo.reproduce  # noqa: F401
    import dvc.utils.hydra  # noqa: F401

    import rnnlab.pipeline.runs  # noqa: F401

    for name in EXPERIMENT_IMPORTS:
        importlib.import_module(name)
    if tensorflow:
        import rnnlab.tf_rnn.model  # noqa: F401
        import rnnlab.tf_rnn.tasks  # noqa: F401
        import rnnlab.tf_rnn.train  # noqa: F401
        from rnnlab.tf_rnn._tf import idle_threads_sleep

        idle_threads_sleep()  # workers share the machine: no spinning between kernels


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rnnlab.workflows.worker")
    parser.add_argument("--no-tensorflow", dest="tensorflow", action="store_false")
    parser.add_argument("--start", help="the commit whose files experiments start from "
                        "(default: a snapshot of the repository's files now)")
    parser.add_argument("repository", type=Path)
    args = parser.parse_args(argv)
    repository = args.repository.resolve()
    start = args.start or snapshot(repository)
    # replies on a file descriptor of their own; anything else printed goes to stderr
    global REPLIES_FD
    REPLIES_FD = os.dup(1)
    replies = os.fdopen(REPLIES_FD, "w")
    os.dup2(2, 1)
    preload(args.tensorflow)
    try:
        serve(repository, start, sys.stdin, replies)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
