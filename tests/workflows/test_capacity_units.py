"""The capacity grid's pieces without DVC (rnnlab.workflows.capacity): the cost-balanced shards,
their argument, the summary with missing runs kept as gaps, and which grid writes where."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from rnnlab.workflows import capacity


def _full_grid():
    return capacity.grid_runs(capacity.FULL["cells"], capacity.FULL["delays"],
                              capacity.FULL["seeds"], capacity.FULL["overrides"])


def test_the_grid_starts_the_longest_first_and_seed_by_seed():
    """No worker may end on a long run alone, and a later seed must find its step in XLA's
    cache: the longest delay first, and there every cell's first seed before any second."""
    names = [run.name for run in _full_grid()]
    cells, delays = capacity.FULL["cells"], capacity.FULL["delays"]
    first, second = capacity.FULL["seeds"][:2]
    assert len(names) == len(set(names)) == len(cells) * len(delays) * len(capacity.FULL["seeds"])
    longest = max(delays)
    assert names[0] == capacity.experiment_name("lstm", longest, first)
    assert {n.split("-")[-3] for n in names[:len(cells)]} == set(cells)
    assert all(n.endswith(f"-b{longest}-s{first}") for n in names[:len(cells)])
    assert all(n.endswith(f"-b{longest}-s{second}") for n in names[len(cells):2 * len(cells)])


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_partition_the_grid_deterministically_and_balance_cost(n):
    runs = _full_grid()
    cost = lambda run: capacity.expected_cost(run, 8)  # noqa: E731
    slices = [capacity.shard(runs, k, n, cost) for k in range(1, n + 1)]
    names = [run.name for part in slices for run in part]
    assert sorted(names) == sorted(run.name for run in runs)  # each point exactly once
    reverse = list(reversed(runs))
    assert slices == [capacity.shard(reverse, k, n, cost) for k in range(1, n + 1)] or \
        [sorted(r.name for r in s) for s in slices] == [
            sorted(r.name for r in capacity.shard(list(reversed(runs)), k, n, cost))
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
    assert (b0["accuracy_mean"], b0["accuracy_min"], b0["accuracy_max"]) == \
        pytest.approx((0.8, 0.7, 0.9))
    assert (b0["n_runs"], b0["n_missing"], b80["n_runs"], b80["n_missing"]) == (2, 0, 1, 1)
    assert b80["accuracy_mean"] == 0.2 and b80["train_loss_max"] == 0.2  # the seed that finished
    assert b80["memoryless_loss"] == pytest.approx(8 * 2.0794415 / 97, rel=1e-6)
    paths = {key: str(tmp_path / name) for key, name in
             {"json": "m.json", "csv": "c.csv", "png": "p.png", "runs": "r.json"}.items()}
    capacity.write_summary(rows, problems, {"lstm": {}}, paths, {"name": "custom"})
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["grid"] == {"name": "custom"}
    assert metrics["lstm"]["b80"] == {"accuracy_mean": 0.2, "accuracy_min": 0.2,
                                      "accuracy_max": 0.2, "train_loss_mean": 0.2, "n_runs": 1,
                                      "n_missing": 1}
    with open(tmp_path / "c.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["blank_separation_len"] for r in table] == ["0", "80"]
    assert [r["lstm_accuracy_mean"] for r in table] == ["0.8", "0.2"]
    assert [r["lstm_n_missing"] for r in table] == ["0", "1"]
    assert json.loads((tmp_path / "r.json").read_text())["problems"] == problems
    assert json.loads((tmp_path / "r.json").read_text())["grid"] == {"name": "custom"}
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_point_at_all_stays_a_gap(tmp_path):
    rows = capacity.summarise({}, {"cap-rnn-b0-s0": "missing"}, ["rnn"], [0], [0], 8)
    assert rows[0]["accuracy_mean"] is None and rows[0]["n_missing"] == 1


def _grid(*argv):
    return capacity.choose_grid(capacity.build_parser().parse_args(list(argv)))


def test_only_the_full_default_grid_writes_the_committed_summary():
    full = _grid()
    assert full.folder == Path("reports/capacity") and full.name == "full"
    assert full.paths() == {"json": "reports/capacity/summary.json",
                            "runs": "reports/capacity/runs.json",
                            "csv": "reports/capacity/curve.csv",
                            "png": "reports/capacity/curve.png"}
    assert full.label()["committed_study"] is True
    assert full.label()["note"] == "the committed study: the full default grid"
    # The same grid typed in another order, or with a -S that changes nothing, is still it.
    same = _grid("--cells", "lstm", "irnn", "rnn", "--delays", "80", "40", "20", "10", "5", "0",
                 "--seeds", "1", "0", "-S", "tf_memory.epochs=15", "--prefix", "cap")
    assert same == full


@pytest.mark.parametrize("argv, folder, name, prefix", [
    (["--quick"], "reports/capacity-quick", "quick", "cap-quick"),
    (["--quick", "--seeds", "0"], "reports/capacity-custom", "custom", "cap-quick"),
    (["--cells", "lstm"], "reports/capacity-custom", "custom", "cap"),
    (["--delays", "0", "5"], "reports/capacity-custom", "custom", "cap"),
    (["--seeds", "0", "1", "2"], "reports/capacity-custom", "custom", "cap"),
    (["-S", "tf_memory.learning_rate=0.01"], "reports/capacity-custom", "custom", "cap"),
    (["--prefix", "lrcheck", "--cells", "irnn"], "reports/capacity-lrcheck", "custom", "lrcheck"),
    (["--prefix", "again"], "reports/capacity-again", "custom", "again"),
])
def test_every_other_grid_writes_its_own_labelled_folder(argv, folder, name, prefix):
    grid = _grid(*argv)
    assert (grid.folder, grid.name, grid.prefix) == (Path(folder), name, prefix)
    label = grid.label()
    assert label["committed_study"] is False and label["name"] == name
    assert label["note"].startswith("not a committed study (reports/capacity/, "
                                    "reports/ablation/)")
    assert {"cells", "delays", "seeds", "overrides", "prefix"} <= set(label)
    assert all(run.name.startswith(f"{prefix}-") for run in grid.runs())


def test_the_quick_grid_never_replaces_the_full_grids_experiments():
    full = {run.name for run in _grid().runs()}
    quick = {run.name for run in _grid("--quick").runs()}
    assert len(full) == 36 and len(quick) == 12 and not full & quick
    # the cell is still read from the name: the LSTM at B = 20 costs (2 * 8 + 20 + 1) * 1.4
    costs = [capacity.expected_cost(run, 8) for run in _grid("--quick").runs()]
    assert max(costs) == pytest.approx(37 * 1.4)


@pytest.mark.parametrize("argv, message", [
    (["--shard", "3/2"], "argument --shard: expected K/N with 1 <= K <= N (e.g. 1/2), got '3/2'"),
    (["--jobs", "0"], "argument --jobs: expected a whole number >= 1, got '0'"),
    (["--delays", "-1"], "argument --delays: expected a whole number >= 0, got '-1'"),
    (["--prefix", "a/b"],
     "argument --prefix: expected letters, digits, '_', '.' or '-', got 'a/b'"),
    (["--cells", "gru2"], "argument --cells: invalid choice: 'gru2'"),
])
def test_bad_options_end_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        capacity.build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_collect_with_shard_is_refused_before_anything_runs(capsys):
    args = capacity.build_parser().parse_args(["--collect", "origin", "--shard", "1/2"])
    assert capacity.run(args) == 2
    assert capsys.readouterr().err.strip() == (
        "python -m rnnlab.workflows.capacity: error: --collect runs nothing: use it without "
        "--shard and --push")


class _FakeExperiment:
    def __init__(self, files):
        self.files = files

    def read(self, path):
        return self.files.get(path)


def test_records_come_from_results_and_a_run_without_one_is_a_problem():
    record = {"test_accuracy": 0.9, "train_loss_final": 0.1, "n_params": 100}
    results = {"cap-lstm-b0-s0": _FakeExperiment({"results/memory.json": json.dumps(record),
                                                  "metrics/memory.json": '{"memory": {}}'}),
               "cap-lstm-b0-s1": _FakeExperiment({"metrics/memory.json": json.dumps(record)})}
    problems = {}
    assert capacity.read_records(results, problems) == {"cap-lstm-b0-s0": record}
    assert problems == {"cap-lstm-b0-s1": "finished, but its commit has no results/memory.json"}


def _ablation_grid(*argv):
    parser = argparse.ArgumentParser()
    capacity.add_ablation_arguments(parser)
    return capacity.choose_grid(parser.parse_args(list(argv)))


def test_the_ablation_grid_is_its_own_committed_study_with_every_cell_and_variant():
    grid = _ablation_grid()
    assert grid.folder == Path("reports/ablation") and grid.label()["committed_study"] is True
    assert grid.cells == list(capacity.CELLS) and len(grid.cells) == 10
    assert grid.seeds == [0, 1, 2] and len(grid.runs()) == 10 * 3 * 3
    variants = {r.overrides.get("tf_model.lstm_variant") for r in grid.runs()}
    assert variants == {None, "no_forget_gate", "no_input_gate", "no_output_gate", "coupled",
                        "no_output_activation"}
    # its rnn, irnn and lstm points are the capacity grid's, with other names
    ablation = {r.name.removeprefix("abl-"): r.overrides for r in grid.runs()}
    for run in _grid().runs():
        assert ablation.get(run.name.removeprefix("cap-"), run.overrides) == run.overrides
    other = _ablation_grid("--cells", "lstm", "gru")
    assert other.folder == Path("reports/ablation-custom") and other.name == "custom"


def _record(acc):
    return {"test_accuracy": acc, "train_loss_final": 0.1, "n_params": 42058}


def test_paired_counts_and_the_readme_tables():
    grid = _ablation_grid("--cells", "lstm", "lstm_coupled", "--delays", "5", "20")
    records = {"abl-lstm-b5-s0": _record(0.9), "abl-lstm-b5-s1": _record(0.8),
               "abl-lstm-b5-s2": _record(0.7), "abl-lstm_coupled-b5-s0": _record(0.95),
               "abl-lstm_coupled-b5-s2": _record(0.6), "abl-lstm-b20-s0": _record(0.5)}
    pairs = capacity.paired_counts(records, capacity.ABLATION_PAIRS, grid)
    assert [(p["better"], p["than"], p["blank_separation_len"]) for p in pairs] == [
        ("lstm", "lstm_coupled", 5), ("lstm", "lstm_coupled", 20)]
    b5, b20 = pairs
    assert (b5["seeds"], b5["holds"], b5["paired_seeds"]) == (2, 1, [0, 2])  # seed 1: one side
    assert b5["mean_difference"] == pytest.approx((-0.05 + 0.1) / 2)
    assert (b20["seeds"], b20["mean_difference"]) == (0, None)
    rows = capacity.summarise(records, {}, grid.cells, grid.delays, grid.seeds, 8, "abl")
    tables = capacity.ablation_tables(rows, pairs, grid.delays)
    assert tables["ablation-table"].splitlines()[2] == (
        "| LSTM | 42,058 | 0.800 (0.70–0.90, n=3) | 0.500 (0.50–0.50, n=1) |")
    assert tables["ablation-pairs"].splitlines()[2] == (
        "| LSTM > LSTM, coupled gates (CIFG, i = 1 - f) | 1 of 2 (+0.025) | — |")
