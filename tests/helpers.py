"""Test helpers: a throw-away git + DVC copy of this repository in which real `dvc` commands run."""

from __future__ import annotations

import copy
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# Small enough that the whole pipeline runs in seconds, big enough to exercise every stage.
# TensorFlow batches of 8 rows run the LSTM as one chain in a while loop: train_sine's first
# step took 1.8 s with an empty XLA cache, against 7.0 s for the two-chain unrolled loop at 32
# rows. That loop (16 rows and more) is checked against Keras in tests/tf_rnn/test_cells.py.
TINY_PARAMS = {
    "gradcheck": {"batch_size": 2, "seq_len": 3, "vocab_size": 3, "hidden": 4},
    "exploding_gradients": {"hidden": 4, "pretrain_steps": 2, "max_seq_len": 30},
    "copy_task": {"to_remember_len": 3, "n_train": 256, "n_test": 64},
    "numpy_rnn": {"hidden": 8, "steps": 40, "batch_size": 16},
    "sine_task": {"n_train": 64, "n_test": 4, "seq_len": 20, "n_given": 5, "n_generated": 10,
                  "n_plot": 2},
    "memory_task": {"to_remember_len": 2, "blank_separation_len": 1, "n_train": 64, "n_test": 32},
    "adding_task": {"seq_len": 6, "n_train": 64, "n_test": 32},
    "tf_model": {"lstm_hidden": 4},
    "tf_sine": {"epochs": 1, "batch_size": 8},
    "tf_memory": {"epochs": 1, "batch_size": 8},
    "tf_adding": {"epochs": 1, "batch_size": 8},
}


def benchmark_module(name: str):
    """benchmarks/NAME.py as a module, its sibling modules importable as when it runs as a
    script (benchmarks/ is a folder of scripts, not a package)."""
    folder = str(REPO / "benchmarks")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module(name)


def tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    return params


def terminal_sigint() -> None:
    """A preexec_fn for a process a test sends Ctrl-C (SIGINT) to. A shell's background job
    (`make test &`, a script's `( ... & )`) starts with SIGINT ignored, and an ignored signal
    stays ignored across exec: this gives the process a terminal's Ctrl-C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Project:
    """A git + DVC copy of the repository in a temporary folder."""

    def __init__(self, root: Path):
        self.root = root
        self.env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
                        DVC_NO_ANALYTICS="1", TF_CPP_MIN_LOG_LEVEL="3",
                        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                        GIT_COMMITTER_EMAIL="t@t")
        self.env.pop("PYTHONPATH", None)

    def run(self, *args: str, check: bool = True, timeout: float = 600, **kwargs):
        proc = subprocess.run(list(args), cwd=self.root, env=self.env, text=True,
                              capture_output=True, timeout=timeout, **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def dvc(self, *args: str, check: bool = True, timeout: float = 600):
        return self.run(str(VENV_BIN / "dvc"), *args, check=check, timeout=timeout)

    def start_queue(self, jobs: int = 1) -> None:
        """`dvc queue start -j N`. Its workers outlive the command and hold any pipe they
        inherit, so its output goes to /dev/null, never to a pipe this process waits on."""
        subprocess.run([str(VENV_BIN / "dvc"), "queue", "start", "-j", str(jobs)], cwd=self.root,
                       env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=120)

    def git(self, *args: str, check: bool = True):
        return self.run("git", *args, check=check)

    def write_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def set_params(self, **changes) -> None:
        """set_params(numpy_rnn__hidden=9) sets numpy_rnn.hidden."""
        params = self.params()
        for dotted, value in changes.items():
            section, key = dotted.split("__")
            params[section][key] = value
        self.write_params(params)

    def commit(self, message: str = "update") -> None:
        self.git("add", "-A")
        self.git("commit", "-qm", message, "--allow-empty")


def make_project(dest: Path, params: dict | None = None) -> Project:
    """Copy the tracked (and new, not ignored) files of this repo into `dest` and commit them."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    project = Project(dest)
    project.write_params(copy.deepcopy(params) if params is not None else tiny_params())
    project.git("init", "-q", "-b", "main")
    project.commit("initial")
    return project


# A stage DVC finds out of date is either run or, when this repository ran it before with the
# same deps and params, restored from DVC's run-cache: both mean the change reached it.
_STAGE_REDONE = re.compile(r"^(?:Running stage '([^']+)'|Stage '([^']+)' is cached - skipping run)",
                           re.MULTILINE)


def stages_run(output: str) -> set[str]:
    """Names of the stages a `dvc repro` output says it ran or restored from its run-cache.

    Counting only "Running stage" made a test flaky: once an earlier test in the same pytest
    worker had run the same params (test_a_kill_... sets numpy_rnn.hidden=9 too), DVC restored
    train_numpy_rnn from its run-cache and printed "is cached" instead, so which tests a
    worker ran first decided the outcome."""
    return {run or cached for run, cached in _STAGE_REDONE.findall(output)}
