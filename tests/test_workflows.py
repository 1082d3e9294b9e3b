"""`make compare` and `make capacity` on tiny params, through real DVC experiments and queue."""

from __future__ import annotations

import json

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
