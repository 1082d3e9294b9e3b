"""The capacity grid's pieces without DVC (rnnlab.workflows.capacity): the cost-balanced shards,
their argument, and the summary with missing runs kept as gaps."""

from __future__ import annotations

import argparse
import csv
import json

import pytest

from rnnlab.workflows import capacity


def _full_grid():
    return capacity.grid_runs(list(capacity.CELLS), capacity.FULL["delays"],
                              capacity.FULL["seeds"], capacity.FULL["overrides"])


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_partition_the_grid_deterministically_and_balance_cost(n):
    runs = _full_grid()
    slices = [capacity.shard(runs, k, n, 8) for k in range(1, n + 1)]
    names = [run.name for part in slices for run in part]
    assert sorted(names) == sorted(run.name for run in runs)  # each point exactly once
    assert slices == [capacity.shard(list(reversed(runs)), k, n, 8) for k in range(1, n + 1)] or \
        [sorted(r.name for r in s) for s in slices] == [
            sorted(r.name for r in capacity.shard(list(reversed(runs)), k, n, 8))
            for k in range(1, n + 1)]  # the same split whatever order the grid is listed in
    costs = [sum(capacity.expected_cost(r, 8) for r in part) for part in slices]
    longest = max(capacity.expected_cost(r, 8) for r in runs)
    assert max(costs) - min(costs) <= longest  # greedy longest-first: within one run


@pytest.mark.parametrize("text", ["3/2", "0/2", "1/0", "2", "a/b", "-1/2"])
def test_a_bad_shard_is_one_clear_error(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected K/N with 1 <= K <= N"):
        capacity.parse_shard(text)
    assert capacity.parse_shard("2/2") == (2, 2)


def test_summary_keeps_failed_and_missing_runs_as_gaps(tmp_path):
    def run(acc, loss):
        return {"test_accuracy": acc, "train_loss_final": loss, "n_params": 100}
    results = {"cap-lstm-b0-s0": run(0.9, 0.1), "cap-lstm-b0-s1": run(0.7, 0.3),
               "cap-lstm-b80-s0": run(0.2, 0.2)}
    problems = {"cap-lstm-b80-s1": "memory/lstm: training diverged at step 3"}
    rows = capacity.summarise(results, problems, ["lstm"], [0, 80], [0, 1], to_remember_len=8)
    b0, b80 = rows
    assert (b0["accuracy_mean"], b0["accuracy_min"], b0["accuracy_max"]) == pytest.approx((0.8, 0.7, 0.9))
    assert (b0["n_runs"], b0["n_missing"], b80["n_runs"], b80["n_missing"]) == (2, 0, 1, 1)
    assert b80["accuracy_mean"] == 0.2 and b80["train_loss_max"] == 0.2  # the seed that finished
    assert b80["memoryless_loss"] == pytest.approx(8 * 2.0794415 / 97, rel=1e-6)
    paths = {key: str(tmp_path / name) for key, name in
             {"json": "m.json", "csv": "c.csv", "png": "p.png", "runs": "r.json"}.items()}
    capacity.write_summary(rows, problems, {"lstm": {}}, paths)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["lstm"]["b80"] == {"accuracy_mean": 0.2, "accuracy_min": 0.2, "accuracy_max": 0.2,
                                      "train_loss_mean": 0.2, "n_runs": 1, "n_missing": 1}
    with open(tmp_path / "c.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["blank_separation_len"] for r in table] == ["0", "80"]
    assert [r["lstm_accuracy_mean"] for r in table] == ["0.8", "0.2"]
    assert [r["lstm_n_missing"] for r in table] == ["0", "1"]
    assert json.loads((tmp_path / "r.json").read_text())["problems"] == problems
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_point_at_all_stays_a_gap(tmp_path):
    rows = capacity.summarise({}, {"cap-rnn-b0-s0": "missing"}, ["rnn"], [0], [0], 8)
    assert rows[0]["accuracy_mean"] is None and rows[0]["n_missing"] == 1
