"""One long-lived process that runs a sweep's experiments one after another, each recorded
with `dvc exp save`: TensorFlow is imported once, and the compiled steps stay in memory.

Why: a `dvc exp run --temp` per experiment pays, each time, for starting DVC, copying the
repository into a temporary folder, a Python process per stage and TensorFlow's import (about
15 s of a capacity experiment's 60 s, benchmarks/sweep_overhead.py). A worker pays for its copy
once: a git clone of the repository sharing its objects, the workspace's uncommitted changes
on top, DVC's cache shared. Then, for each experiment it is given:

1. params.yaml is the workspace's with the run's overrides, applied the way `dvc exp run -S`
   applies them (DVC's own `apply_overrides`);
2. DVC reproduces the run's stages in this process (`Repo.reproduce`, with the run cache, as
   `dvc exp run` does), except that a stage whose command is `python stages/NAME.py` runs
   here, with the environment DVC would give its process, instead of in a new one;
3. `Repo.experiments.save` records the workspace as the named experiment (params.yaml,
   dvc.lock, the git-tracked outputs; cached outputs are in the shared cache), and git
   pushes its ref to the repository (refs/exps/...), where `dvc exp show` lists it.

The experiment is the one `dvc exp run --temp` would have made: the same params, the same
dvc.lock, the same output bits (tests/workflows/test_worker.py runs the same experiment
both ways). A failed stage (its one-line error) fails that experiment alone; the next starts
from the workspace DVC left, which DVC's status makes right (a stage whose outputs are not
those of its lock runs again).

Protocol: one JSON object per line on stdin, {"name", "overrides", "targets", "overwrite"};
one per line on stdout when it is done, {"name", "ok", "reason"}. Each experiment's output
goes to .dvc/tmp/rnnlab/logs/NAME.log of the repository, as a `dvc exp run --temp` run's
does. End of input: the worker removes its copy and exits. Ctrl-C (SIGINT to its process
group): the experiment in progress is not saved, the copy is removed.

    python -m rnnlab.workflows.worker [--no-tensorflow] [--start COMMIT] REPOSITORY
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import shlex
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

STAGE_SCRIPT = "stages/"  # `python stages/NAME.py`: a stage of ours, run in this process


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
    from rnnlab.workflows.queue import WORKERS, cache_dir

    (repository / WORKERS).mkdir(parents=True, exist_ok=True)
    copy = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=repository / WORKERS))
    git("clone", "-q", "--shared", "--no-checkout", str(repository), str(copy), cwd=repository)
    git("fetch", "-q", str(repository), start, cwd=copy)
    git("checkout", "-q", "--detach", git("rev-parse", "HEAD", cwd=repository), cwd=copy)
    cache = (repository / cache_dir()).resolve()
    (copy / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")
    return copy


def reset(copy: Path, start: str) -> None:
    """The copy's files as they were in the repository when the worker started, whatever the
    last experiment changed or added: git-tracked files from `start`, untracked ones removed,
    HEAD (the baseline) and its index unchanged. DVC's cached outputs follow in
    run_experiment, from dvc.lock, as `dvc exp run` checks them out."""
    git("reset", "-q", cwd=copy)  # what the last experiment staged, unstaged
    git("checkout", "-q", "-f", start, "--", ".", cwd=copy)  # staged: `clean` keeps them
    git("clean", "-q", "-f", "-d", cwd=copy)
    git("reset", "-q", cwd=copy)


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

    stage_run.cmd_run = cmd_run
    try:
        yield
    finally:
        stage_run.cmd_run = original


def is_stage_script(word: str) -> bool:
    return word.startswith(STAGE_SCRIPT) and word.endswith(".py")


def run_script(wdir: Path, argv: list[str], env: dict[str, str], command: str) -> None:
    """Run a stage script as `python script` would, in this process: __main__, its folder
    first on sys.path, argv, the environment DVC gives a stage (restored afterwards). Its exit
    status: StageCmdFailedError as DVC raises for a failed process; Ctrl-C goes on up."""
    from dvc.stage.exceptions import StageCmdFailedError

    from rnnlab.pipeline import stage as stage_wrapper

    script = wdir / argv[0]
    saved_env, saved_argv, saved_path = dict(os.environ), sys.argv, list(sys.path)
    os.environ.clear()
    os.environ.update(env)
    sys.argv, sys.path[0:0] = [str(script), *argv[1:]], [str(script.parent)]
    stage_wrapper.reset_phases()
    code: Any = 0
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is not None and not isinstance(code, int):  # sys.exit("message"): as Python
            print(code, file=sys.stderr)  # does at exit, the message to stderr and exit 1
            code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv, sys.path[:] = saved_argv, saved_path
        sys.stdout.flush()
        sys.stderr.flush()
    if code == 130:  # run_stage's exit on KeyboardInterrupt: the worker is being stopped
        raise KeyboardInterrupt
    if code not in (0, None):
        raise StageCmdFailedError(command, code)


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
    env = {"DVC_EXP_NAME": spec["name"], "DVC_ROOT": str(repository)}
    with Repo(str(copy)) as repo:
        checkout(repo, targets=targets, with_deps=targets is not None, force=True,
                 allow_missing=True)
        repo.reproduce(targets, run_env=env, repro_fn=BaseExecutor._repro_and_track)
        # only the run's stages: saving commits (records in dvc.lock) the stages it is given,
        # all of them by default, as if every stage had run with these params
        repo.experiments.save(targets, name=spec["name"], force=bool(spec.get("overwrite")))
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


def in_child(work: Callable[[], None], log: Path) -> int:
    """Run `work` in a forked copy of this process, its output into `log`; its exit code
    (negative: the signal that ended it).

    Forked, not run here: every experiment starts from the same state, this process just after
    its imports (TensorFlow's among them), as a new process would, never from what an earlier
    experiment left (TensorFlow's graphs and name counters, DVC's open repository); the
    persistent XLA cache then finds the steps an earlier experiment compiled (its key has the
    step's function name, which has a per-process counter in it); and a killed training
    process (kill -9, out of memory) ends one experiment, not the worker."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 1
        try:
            with output_to(log):
                code = run_reported(work)
        finally:
            os._exit(code)
    return wait_for_child(pid)


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


def serve(repository: Path, start: str, requests, replies) -> None:
    """Run each request (a JSON line) in a copy of `repository` with the files of `start`; one
    JSON reply line each."""
    from rnnlab.workflows.queue import STATE, failure_reason

    logs = repository / STATE / "logs"
    copy = make_copy(repository, start)
    try:
        with contextlib.chdir(copy):
            with stages_in_this_process():
                for line in requests:
                    spec = json.loads(line)
                    log = logs / f"{spec['name']}.log"
                    code = in_child(partial(run_experiment, copy, start, repository, spec), log)
                    reason = None if code == 0 else failure_reason(
                        log, code, shown=log.relative_to(repository))
                    print(json.dumps({"name": spec["name"], "ok": code == 0, "reason": reason}),
                          file=replies, flush=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def preload(tensorflow: bool) -> None:
    """What every experiment imports (DVC, TensorFlow if asked), once, before the first fork."""
    import dvc.repo.reproduce  # noqa: F401
    import dvc.utils.hydra  # noqa: F401

    import rnnlab.pipeline.runs  # noqa: F401

    if tensorflow:
        import rnnlab.tf_rnn.model  # noqa: F401
        import rnnlab.tf_rnn.tasks  # noqa: F401
        import rnnlab.tf_rnn.train  # noqa: F401


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
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    preload(args.tensorflow)
    try:
        serve(repository, start, sys.stdin, replies)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
