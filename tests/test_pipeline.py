"""The real DVC pipeline on tiny params: what re-runs, what it writes, and how it fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import VENV_BIN, stages_run

pytestmark = pytest.mark.slow


def restore(project) -> None:
    project.git("checkout", "--", ".")
    project.dvc("checkout", "--force")
    assert "up to date" in project.dvc("status").stdout


def repro_after(project, **changes) -> set[str]:
    project.set_params(**changes)
    try:
        return stages_run(project.dvc("repro").stdout)
    finally:
        restore(project)


def test_repro_again_does_nothing(built_project):
    out = built_project.dvc("repro").stdout
    assert stages_run(out) == set()
    assert "Data and pipelines are up to date" in built_project.dvc("status").stdout


def test_numpy_hidden_reruns_only_numpy_training(built_project):
    assert repro_after(built_project, numpy_rnn__hidden=9) == {"check_params", "train_numpy_rnn"}


def test_tf_hidden_reruns_only_tf_training(built_project):
    assert repro_after(built_project, tf_model__hidden=5) == {
        "check_params", "train_sine", "train_memory"}


def test_sine_size_reruns_only_the_sine_branch(built_project):
    assert repro_after(built_project, sine_task__n_train=70) == {
        "check_params", "data@sine", "train_sine"}


def test_metrics_hold_the_promised_keys(built_project):
    root = built_project.root
    numpy_metrics = json.loads((root / "metrics/numpy_rnn_memory.json").read_text())
    assert {"test_accuracy", "test_loss", "n_params"} <= set(numpy_metrics)
    assert json.loads((root / "metrics/gradcheck.json").read_text())["max_rel_error"] <= 1e-6
    memory = json.loads((root / "metrics/memory.json").read_text())
    assert {"test_accuracy", "test_loss", "n_params"} <= set(memory)
    sine = json.loads((root / "metrics/sine.json").read_text())
    assert {"test_mse_one_step", "test_mse_free_running", "n_params"} <= set(sine)
    shown = built_project.dvc("metrics", "show").stdout
    for key in ("test_accuracy", "test_mse_free_running", "max_rel_error"):
        assert key in shown


def test_every_declared_plot_has_data(built_project):
    rendered = json.loads(built_project.dvc("plots", "show", "--json").stdout)
    data = rendered.get("data", rendered)
    declared = yaml.safe_load((built_project.root / "dvc.yaml").read_text())["plots"]
    names = [next(iter(p)) if isinstance(p, dict) else p for p in declared]
    assert set(names) <= set(data), set(names) - set(data)
    for name in names:
        assert data[name], f"plot {name!r} is empty"
        for entry in data[name]:
            if entry.get("type") == "vega":
                assert entry["content"]["data"]["values"], f"plot {name!r} has no points"
            else:
                assert Path(built_project.root / entry["url"]).stat().st_size > 1000


def _lock_hashes(project) -> dict[str, str]:
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values()
            for out in stage.get("outs", [])}


def test_forced_repro_is_bit_identical(built_project):
    first = _lock_hashes(built_project)
    for kind in ("data/", "models/", "metrics/", "plots/"):  # every output, metrics and PNGs too
        assert any(p.startswith(kind) for p in first), kind
    try:
        built_project.dvc("repro", "-f")
        assert _lock_hashes(built_project) == first
    finally:
        restore(built_project)


@pytest.mark.parametrize("changes, stage", [
    # A step so large that float32 weights and logits overflow: the loss becomes Inf/NaN.
    # (Merely large steps can stay finite: an LSTM's gates keep its outputs bounded.)
    ({"numpy_rnn__learning_rate": 1e38, "numpy_rnn__clip_norm": 0}, "train_numpy_rnn"),
    ({"tf_model__optimizer": "momentum", "tf_memory__learning_rate": 1e38,
      "tf_model__clip_norm": 0, "tf_memory__epochs": 3}, "train_memory"),
])
def test_divergence_stops_with_a_message_and_no_metrics(built_project, changes, stage):
    project = built_project
    project.set_params(**changes)
    try:
        proc = project.dvc("repro", stage, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "diverged" in output or "NaN" in output, output
        assert "learning rate" in output and "Traceback" not in output
        metrics = {"train_numpy_rnn": "numpy_rnn_memory", "train_memory": "memory"}[stage]
        assert not (project.root / f"metrics/{metrics}.json").exists()
    finally:
        restore(project)


def test_a_stage_refuses_a_corrupt_data_file(built_project):
    project = built_project
    path = project.root / "data/copy_task/train.npz"
    blob = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(blob[: len(blob) // 3])
    try:
        proc = project.run(str(VENV_BIN / "python"), "stages/train_numpy_rnn.py", check=False)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            "train_numpy_rnn: error: data/copy_task/train.npz: file is truncated or corrupt "
            "(BadZipFile); rebuild it with `dvc repro -f data@copy_task`"]
    finally:
        restore(project)


def _default_sigint() -> None:
    # A shell's background job (`make test &`, nohup) starts with SIGINT ignored, and an
    # ignored signal stays ignored across exec: give the repro a terminal's Ctrl-C back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_repro(project, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(VENV_BIN / "dvc"), "repro", *args], cwd=project.root,
                            env=project.env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_default_sigint)


def _wait_for_training(project, proc: subprocess.Popen, stage_script: str) -> int:
    """Wait until the stage's python process is training; return its pid.

    Only processes in this repro's own session count: tests running in parallel
    elsewhere may be running the same stage script in their own projects. The
    pattern is anchored so it matches python itself, not the `sh -c "python ..."`
    wrapper DVC starts the command in when SHELL is unset (dash does not exec
    the command): killing the wrapper would orphan a training process.
    """
    pattern = f"^[^ ]*python[^ ]* stages/{stage_script}"
    deadline = time.time() + 120
    while time.time() < deadline:
        found = subprocess.run(["pgrep", "-s", str(proc.pid), "-f", pattern],
                               capture_output=True, text=True).stdout.split()
        if found:
            time.sleep(3)  # let it get into the training loop
            return int(found[0])
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    raise AssertionError("training never started")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_training_leaves_no_partial_output(built_project, sig):
    project = built_project
    project.set_params(numpy_rnn__steps=10**7)  # far longer than the test waits: it is interrupted
    proc = _start_repro(project, "train_numpy_rnn")
    try:
        pid = _wait_for_training(project, proc, "train_numpy_rnn.py")
        if sig == signal.SIGINT:  # Ctrl-C reaches the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "Traceback" not in output, output
        if sig == signal.SIGINT:
            assert "train_numpy_rnn: interrupted" in output
        leftovers = [p for p in project.root.rglob("*.tmp") if ".dvc" not in p.parts]
        assert leftovers == []
        assert not (project.root / "metrics/numpy_rnn_memory.json").exists()
    finally:
        # A failed assertion must not leave training running: kill the whole session,
        # which also reaches processes that outlived their parent.
        subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)], check=False)
        proc.wait()
        project.git("checkout", "--", "params.yaml")
    # The next run completes normally and the workspace is back to its committed state.
    project.dvc("repro")
    restore(project)
