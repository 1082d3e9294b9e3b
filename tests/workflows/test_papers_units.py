"""The papers grid's pieces without DVC (rnnlab.workflows.papers): which runs it makes and with
which params, the baselines, the summary and the verdicts of the claims table."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.pipeline import sequences
from rnnlab.pipeline.params import read_params, validate
from rnnlab.workflows import papers
from rnnlab.workflows.queue import expected_params

from helpers import REPO


def _args(**changes) -> argparse.Namespace:
    return argparse.Namespace(**{"benchmarks": None, "lengths": None, "seeds": None, "set": [],
                                 "prefix": None, **changes})


def test_the_default_grid_is_every_benchmark_cell_length_and_seed_once():
    grid = papers.choose_grid(_args())
    runs = grid.runs()
    assert grid.folder == papers.FOLDER
    assert len(runs) == len({r.name for r in runs}) == 3 * (4 * 3 + 4 * 2 + 3 * 2)
    assert runs[0].name.endswith("-t200-s0")  # the longest first
    by_name = {r.name: r for r in runs}
    adding = by_name["pap-adding-irnn-t100-s2"]
    assert adding.targets == ("train_adding",)
    assert adding.overrides["adding_task.seq_len"] == 100
    assert adding.overrides["tf_model.seed"] == 2
    assert adding.overrides["tf_adding.learning_rate"] == 0.001  # the IRNN's smaller step
    assert not any(k.startswith("tf_memory.") for k in adding.overrides)


@pytest.mark.parametrize("name, section", [("pap-copy-lstm-t100-s0", "memory_task"),
                                           ("pap-copynumpy-permutation-t100-s1", "copy_task")])
def test_a_copy_run_makes_arjovskys_layout_of_t_plus_20_steps(name, section):
    run = {r.name: r for r in papers.choose_grid(_args()).runs()}[name]
    params = expected_params(read_params(REPO / "params.yaml"), run.overrides)
    validate(params)  # every run's params are valid as they stand
    task = params[section]
    assert task["to_remember_len"] == 10 and task["blank_separation_len"] == 99
    make = sequences.copy_task if section == "copy_task" else (
        lambda n, L, k, rng, B: sequences.memory_task(n, L, B, k, rng))
    inputs, _ = make(4, 10, 8, np.random.default_rng(0), 99)
    assert inputs.shape == (4, 120)


def test_the_copy_baseline_is_arjovskys():
    assert papers.copy_baseline(100) == pytest.approx(0.1733, abs=1e-4)
    assert papers.copy_baseline(200) == pytest.approx(0.0945, abs=1e-4)
    # the same as the memory task's memoryless loss at L = 10, B = T - 1
    from rnnlab.workflows.capacity import memoryless_loss
    assert memoryless_loss(10, 99) == pytest.approx(papers.copy_baseline(100))


def test_any_other_grid_writes_its_own_folder():
    assert papers.choose_grid(_args(seeds=[0])).folder.name == "papers-custom"
    assert papers.choose_grid(_args(prefix="try")).folder.name == "papers-try"
    grid = papers.choose_grid(_args(benchmarks=["copy"], lengths=[30]))
    assert {r.name for r in grid.runs()} == {f"pap-copy-{c}-t30-s{s}"
                                             for c in ("rnn", "irnn", "lstm", "gru")
                                             for s in (0, 1, 2)}


def test_a_bad_override_is_refused_before_anything_runs(monkeypatch):
    monkeypatch.chdir(REPO)
    grid = papers.choose_grid(_args(set=[("adding_task.seq_len", 1)], benchmarks=["adding"],
                                    lengths=[50]))
    runs = [r for r in grid.runs()]
    # the point's own T wins over -S; a key the benchmark does not set is refused by name
    papers.check_grid_params(runs)
    grid = papers.choose_grid(_args(set=[("tf_adding.batch_size", 0)], benchmarks=["adding"]))
    with pytest.raises(ConfigError, match="tf_adding.batch_size"):
        papers.check_grid_params(grid.runs())


def _records(grid, values) -> dict:
    """Records for every point: values(point) -> the record."""
    return {grid.run_of(p).name: values(p) for p in grid.points}


def test_the_claims_count_seeds_and_compare_with_the_baselines():
    grid = papers.choose_grid(_args())

    def record(p):
        if p.bench == "adding":  # the IRNN 1.5x the LSTM, the RNN stuck at 1/6 at T = 200
            mse = {"lstm": 0.002, "irnn": 0.003, "gru": 0.001,
                   "rnn": 0.16 if p.seq_len == 200 else 0.001}[p.cell]
            return {"test_mse": mse, "solved_fraction": 0.9, "baseline_mse_measured": 0.166,
                    "sequences_to_criterion": None if p.seed == 2 else 40_000 + 10_000 * p.seed,
                    "n_params": 100}
        loss = {"lstm": 0.17, "permutation": 0.01}.get(p.cell, 0.2) * papers.copy_baseline(
            p.seq_len) / 0.1733
        return {"test_loss": loss, "test_accuracy": 0.5, "n_params": 10}

    summary = papers.summarise(_records(grid, record), grid)
    assert summary["adding"]["lstm"]["t100"]["sequences_to_criterion"]["n"] == 2
    texts = [check(summary)[1] for _, _, check in papers.CLAIMS]
    assert texts[0] == "holds on 3 of 3 test sets (within 0.01)"
    assert texts[1].startswith("within 2x of theirs: the median is 0.61x 74,000")
    assert texts[2].endswith("3 of 3 at T = 50, 3 of 3 at T = 100, 3 of 3 at T = 200")
    assert texts[3].endswith("0 of 3 at T = 50, 0 of 3 at T = 100, 3 of 3 at T = 200")
    assert texts[4] == ("at the baseline (loss ≥ 0.9x it) on 3 of 3 at T = 100, 3 of 3 at "
                        "T = 200")  # 0.98x it
    assert texts[5] == "below 0.9x the baseline on 3 of 3 at T = 100, 3 of 3 at T = 200"
    table = papers.claims_table(summary)
    assert table.count("\n") == 1 + len(papers.CLAIMS)
    assert "45,000 (40,000–50,000, n=2)" in table


def test_missing_runs_are_dashes_not_zeros():
    grid = papers.choose_grid(_args(benchmarks=["copy_numpy"]))
    summary = papers.summarise({}, grid)
    point = summary["copy_numpy"]["permutation"]["t100"]
    assert point["n_missing"] == 3 and point["loss"]["mean"] is None
    assert "| — |" in papers.results_table(summary)
    assert not math.isnan(point["baseline"])


def test_a_diverged_run_is_a_result_the_claims_count():
    grid = papers.choose_grid(_args(benchmarks=["adding"], lengths=[200]))

    def record(p):
        return {"test_mse": 0.001, "solved_fraction": 0.9, "baseline_mse_measured": 0.17,
                "sequences_to_criterion": None, "n_params": 100}

    diverged = {grid.run_of(p).name: "adding/rnn: training diverged at step 74 (loss is nan)"
                for p in grid.points if p.cell in ("rnn", "irnn") and p.seed > 0}
    records = {n: r for n, r in _records(grid, record).items() if n not in diverged}
    summary = papers.summarise(records, grid, diverged)
    point = summary["adding"]["irnn"]["t200"]
    assert point["diverged"] == [1, 2] and point["n_missing"] == 0 and point["mse"]["n"] == 1
    texts = {claim: check(summary) for _, claim, check in papers.CLAIMS}
    irnn = next(v for k, v in texts.items() if k.startswith("The IRNN"))
    rnn = next(v for k, v in texts.items() if k.startswith("A plain RNN"))
    assert irnn[1].endswith(": 1 of 3 at T = 200")  # seed 0 as good; 1 and 2 diverged
    assert "0.001 (n=1); diverged on 2 more" in irnn[0]
    assert rnn[1].endswith("2 of 3 at T = 200")
