"""Sharing results through remotes, with real git and DVC: `dvc push` / `dvc pull` of every
output, and a live step-wise metric of a queued experiment in `dvc exp show` before it ends.
(Slow: real dvc commands.)"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from helpers import Project, stages_run

pytestmark = pytest.mark.slow


def test_a_fresh_clone_pulls_every_output_without_training(built_project, tmp_path):
    """The README's recipe as written: the remote goes into the committed .dvc/config, so a
    clone pulls with no set-up of its own."""
    project = built_project
    store = tmp_path / "dvc-store"
    origin = tmp_path / "origin.git"
    project.dvc("remote", "add", "-d", "store", str(store))
    project.git("add", ".dvc/config")
    project.git("commit", "-qm", "DVC remote")
    try:
        project.dvc("push")
        subprocess.run(["git", "clone", "-q", "--bare", str(project.root), str(origin)], check=True)
        clone = Project(tmp_path / "clone")
        subprocess.run(["git", "clone", "-q", str(origin), str(clone.root)], check=True)
        assert not (clone.root / "models/memory.npz").exists()
        clone.dvc("pull")
        for path in ("models/numpy_rnn_copy.npz", "models/memory.npz", "models/sine.npz",
                     "data/copy_task/train.npz", "data/memory/test.npz", "data/sine/train.npz"):
            assert (clone.root / path).read_bytes() == (project.root / path).read_bytes(), path
        assert "Data and pipelines are up to date" in clone.dvc("status").stdout
        assert stages_run(clone.dvc("repro").stdout) == set()  # nothing to train
    finally:
        project.git("reset", "-q", "--hard", "HEAD~1")  # the shared project as it was


def _exp_rows(project) -> list[tuple[str, dict]]:
    """(executor state, rev) of every experiment `dvc exp show --json` lists."""
    rows = []
    for baseline in json.loads(project.dvc("exp", "show", "--json").stdout or "[]"):
        for exp in baseline.get("experiments") or []:
            state = (exp.get("executor") or {}).get("state", "")
            rows += [(state, rev) for rev in exp.get("revs", [])]
    return rows


def test_a_queued_experiment_shows_step_wise_metrics_while_it_runs(built_project):
    project = built_project
    # far longer than the test waits (minutes): the run is stopped once it was seen. Not more:
    # the first live point comes after one loss window (rnnlab.numpy_rnn.train.N_HISTORY_POINTS
    # windows per run), which at 10**7 steps was most of the time the test took
    steps = 10**6
    project.dvc("exp", "run", "--queue", "-n", "live", "-S", f"numpy_rnn.steps={steps}",
                "train_numpy_rnn")
    project.start_queue(1)
    try:
        deadline, seen = time.time() + 240, None
        while time.time() < deadline and seen is None:
            for state, rev in _exp_rows(project):
                live = ((rev.get("data") or {}).get("metrics") or {}).get(
                    "metrics/numpy_rnn_copy.json", {}).get("data", {}).get("copy", {})
                if rev.get("name") == "live" and state == "running" and live.get("step", 0) > 0:
                    seen = live
            time.sleep(1)
        assert seen is not None, "no step-wise metric of the running experiment appeared"
        assert 0 < seen["step"] < steps and seen["train_loss"] > 0  # logged mid-run
    finally:
        project.dvc("queue", "stop", "--kill", check=False)
        project.dvc("queue", "remove", "--all", check=False)
        project.dvc("exp", "remove", "live", check=False)
