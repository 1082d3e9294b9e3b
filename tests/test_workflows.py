"""`make compare` and `make capacity` on tiny params, through real DVC experiments and queue."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import VENV_BIN, make_project

pytestmark = pytest.mark.slow


def test_compare_runs_named_experiments_and_diffs_both_tasks(tmp_path):
    project = make_project(tmp_path / "repo")
    out = project.run(str(VENV_BIN / "python"), "-m", "rnnlab.compare").stdout
    # dvc metrics diff rnn lstm reports the metrics of both TF tasks ...
    diff = out.split("$ dvc metrics diff rnn lstm", 1)[1].split("$ dvc", 1)[0]
    for path in ("metrics/memory.json", "metrics/sine.json"):
        assert path in diff
    for metric in ("test_accuracy", "test_mse_free_running", "n_params"):
        assert metric in diff
    # ... and the init pair the numpy RNN's.
    assert "metrics/numpy_rnn_memory.json" in out.split("$ dvc metrics diff random-init irnn", 1)[1]
    names = {line for line in project.dvc("exp", "ls", "--name-only").stdout.split()}
    assert {"rnn", "lstm", "irnn", "random-init"} <= names
    page = project.root / "dvc_plots/rnn_vs_lstm/index.html"
    assert page.exists() and "<script src" not in page.read_text()
    # Running it again replaces the experiments instead of failing on the names.
    project.run(str(VENV_BIN / "python"), "-m", "rnnlab.compare")
    names = project.dvc("exp", "ls", "--name-only").stdout.split()
    assert sorted(n for n in names if n in {"rnn", "lstm"}) == ["lstm", "rnn"]


def test_capacity_grid_through_the_queue(tmp_path):
    project = make_project(tmp_path / "repo")
    project.dvc("repro", "train_memory")
    project.commit("reproduced")
    # As from a shell where the venv is not activated: the queue's workers must still find
    # this environment's dvc, and the stages its python.
    project.env["PATH"] = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p).resolve() != VENV_BIN.resolve())
    proc = project.run(str(VENV_BIN / "python"), "-m", "rnnlab.capacity", "--jobs", "2",
                       "--cells", "rnn", "lstm", "--delays", "0", "2", "--seeds", "0")
    assert "4 experiments" in proc.stdout
    table = json.loads((project.root / "metrics/memory_capacity.json").read_text())
    assert table["delays"] == [0, 2]
    points = [(cell, row["blank_separation_len"]) for cell, rows in table["cells"].items()
              for row in rows]
    assert sorted(points) == [("lstm", 0), ("lstm", 2), ("rnn", 0), ("rnn", 2)]
    for rows in table["cells"].values():
        for row in rows:
            assert 0.0 <= row["accuracy_mean"] <= 1.0 and row["n_params"] > 0
    # Memoryless baseline K ln(A) / (2K + B + 1) with K = 2, A = 8.
    assert table["memoryless_loss"][1] == pytest.approx(2 * 2.0794415 / 7, rel=1e-6)
    assert (project.root / "plots/memory_capacity.png").stat().st_size > 10_000
    # A grid whose every run diverges ends with the stages' own reason and leaves the last
    # summary as it was.
    before = (project.root / "metrics/memory_capacity.json").read_bytes()
    proc = project.run(str(VENV_BIN / "python"), "-m", "rnnlab.capacity", "--jobs", "1",
                       "--cells", "rnn", "--delays", "0", "--seeds", "0",
                       "-S", "tf_model.optimizer=momentum", "-S", "tf_memory.learning_rate=1e38",
                       "-S", "tf_model.clip_norm=0", check=False)
    assert proc.returncode != 0
    assert "cap-rnn-b0-s0: memory/rnn: training diverged" in proc.stderr, proc.stderr
    assert "every run failed" in proc.stderr
    assert (project.root / "metrics/memory_capacity.json").read_bytes() == before


def test_capacity_summary_keeps_failed_runs_as_gaps(tmp_path):
    from rnnlab import capacity

    def run(acc, loss):
        return {"test_accuracy": acc, "train_loss_final": loss, "n_params": 100}
    results = {"cap-lstm-b0-s0": run(0.9, 0.1), "cap-lstm-b0-s1": run(0.7, 0.3),
               "cap-lstm-b80-s0": run(0.2, 0.2)}
    failures = {"cap-lstm-b80-s1": "memory/lstm: training diverged at step 3"}
    table = capacity.summarise(results, failures, ["lstm"], [0, 80], [0, 1], to_remember_len=8)
    b0, b80 = table["cells"]["lstm"]
    assert (b0["accuracy_mean"], b0["accuracy_min"], b0["accuracy_max"]) == pytest.approx((0.8, 0.7, 0.9))
    assert b0["n_failed"] == 0 and b80["n_failed"] == 1
    assert b80["accuracy_mean"] == 0.2 and b80["train_loss_max"] == 0.2  # over the seed that finished
    assert table["failures"] == failures
    assert table["memoryless_loss"][1] == pytest.approx(8 * 2.0794415 / 97, rel=1e-6)
    capacity.write_summary(table, str(tmp_path / "t.json"), str(tmp_path / "t.png"))
    assert json.loads((tmp_path / "t.json").read_text()) == table
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
