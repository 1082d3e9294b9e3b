"""`make compare`'s pieces without DVC (rnnlab.workflows.compare): which runs, the seeds that
change together, the statistics in compare.json and the README table made from it."""

from __future__ import annotations

import statistics

import pytest

from rnnlab.workflows import compare


def test_runs_change_the_seed_of_every_section_their_stages_read(monkeypatch):
    from helpers import REPO

    monkeypatch.chdir(REPO)
    runs = {run.name: run for run in compare.runs_for(["rnn", "sheet-gaussian"], [0, 2])}
    assert list(runs) == ["rnn-s0", "rnn-s2", "sheet-gaussian-s0", "sheet-gaussian-s2"]
    assert runs["rnn-s2"].targets == ("train_sine", "train_memory", "gradient_flow_memory")
    assert {k: v for k, v in runs["rnn-s2"].overrides.items() if k.endswith(".seed")} == {
        "memory_task.seed": 2, "sine_task.seed": 2, "tf_model.seed": 2}
    sheet = runs["sheet-gaussian-s2"].overrides
    assert sheet == {"numpy_rnn.optimizer": "sgd", "numpy_rnn.batch_size": 1,
                     "numpy_rnn.learning_rate": 0.001, "numpy_rnn.steps": 70000,
                     "numpy_rnn.clip_norm": 5.0, "numpy_rnn.init": "gaussian",
                     "copy_task.seed": 2, "numpy_rnn.seed": 2}


def _exp(**metrics):
    return {f"metrics/{f}.json": values for f, values in metrics.items()}


def test_summary_statistics_and_pairs_over_seeds():
    results = {f"lstm-s{s}": _exp(memory={"test_accuracy": a, "n_params": 10, "train_loss_final": 9},
                                  sine={"test_mse_free_running": m})
               for s, (a, m) in enumerate([(0.9, 0.1), (0.8, 0.3), (1.0, 0.2)])}
    results |= {f"rnn-s{s}": _exp(memory={"test_accuracy": a}, sine={"test_mse_free_running": m})
                for s, (a, m) in enumerate([(0.2, 0.05), (0.9, 0.4), (0.3, 0.1)])}
    summary = compare.summarise(results, {}, ["lstm", "rnn"], [0, 1, 2])
    acc = summary["experiments"]["lstm"]["memory.test_accuracy"]
    assert acc["values"] == [0.9, 0.8, 1.0] and acc["n"] == 3
    assert acc["mean"] == pytest.approx(0.9) and acc["std"] == pytest.approx(statistics.stdev([0.9, 0.8, 1.0]))
    assert (acc["min"], acc["max"]) == (0.8, 1.0)
    assert "memory.train_loss_final" not in summary["experiments"]["lstm"]  # test metrics only
    pairs = {(p["metric"]): p for p in summary["pairs"] if p["better"] == "lstm"}
    assert pairs["memory.test_accuracy"]["holds"] == 2  # seed 1: 0.8 < 0.9
    assert pairs["sine.test_mse_free_running"]["holds"] == 1  # lower is better: seed 1 only
    assert all(p["seeds"] == 3 for p in pairs.values())


def test_readme_table_from_the_summary(tmp_path):
    summary = {"experiments": {"lstm": {
        "memory.test_accuracy": compare.spread([0.99, 1.0, 0.98]),
        "memory.n_params": compare.spread([42058] * 3)}}}
    table = compare.results_table(summary)
    assert table.splitlines()[2] == ("| TF `MyLSTMCell` | memory task, L = 8, B = 5 | 42,058 | "
                                     "0.99 ± 0.01 (n=3) |")
    start, end = compare.MARKERS["results-table"]
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{start}\nold\n{end}\nb\n")
    compare.refresh_readme({"results-table": table}, readme)
    assert readme.read_text() == f"a\n{start}\n{table}\n{end}\nb\n"


def test_nested_metrics_are_flattened_and_shrink_factors_summarised():
    results = {f"lstm-s{s}": _exp(gradient_flow_memory={"init": {"shrink_across_blanks": 4.0 + s},
                                                        "trained": {"shrink_across_blanks": 1.0}})
               for s in range(2)}
    summary = compare.summarise(results, {}, ["lstm"], [0, 1])
    stats = summary["experiments"]["lstm"]
    assert stats["gradient_flow_memory.init.shrink_across_blanks"]["values"] == [4.0, 5.0]
    assert compare.flatten({"a": {"b": 1, "c": "x"}, "d": True}) == {"a.b": 1}
