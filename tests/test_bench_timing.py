"""benchmarks/common.py's timing rounds: each side warmed up by time, not by one call, before
its timed calls in every round (a short step runs slower for a few calls after another side's
work). A fake clock that each step advances by its duration makes the counts exact."""

from __future__ import annotations

import pytest
from helpers import benchmark_module

common = benchmark_module("common")


@pytest.fixture()
def clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(common.time, "perf_counter", lambda: now[0])
    return now


def step_of(ms: float, clock: list, calls: list):
    def step():
        calls.append(clock[0])
        clock[0] += ms / 1e3
    return step


def test_each_round_warms_a_short_step_up_for_the_given_time_and_a_long_one_once(clock):
    short, long = [], []
    fns = {"short": step_of(1.0, clock, short), "long": step_of(12.0, clock, long)}
    times = common.interleaved_median_ms(fns, repeats=4, rounds=2, warmup=0, round_warmup=1,
                                         round_warmup_ms=6.0)
    # per round: the short step 6 untimed calls (6 ms), then 2 timed; the long one its one
    # untimed call, already past 6 ms, then 2 timed
    assert len(short) == 2 * (6 + 2)
    assert len(long) == 2 * (1 + 2)
    assert times == pytest.approx({"short": 1.0, "long": 12.0})


def test_without_a_warmup_time_each_round_makes_the_calls_it_is_given(clock):
    calls = []
    common.interleaved_median_ms({"step": step_of(1.0, clock, calls)}, repeats=4, rounds=2,
                                 warmup=1, round_warmup=1)
    assert len(calls) == 1 + 2 * (1 + 2)


def test_steady_rounds_warm_up_for_steady_warmup_ms(clock):
    calls = []
    common.steady_median_ms({"step": step_of(0.5, clock, calls)}, repeats=5, warmup=0)
    untimed = int(common.STEADY_WARMUP_MS / 0.5)
    assert len(calls) == min(common.STEADY_ROUNDS, 5) * (untimed + 1)
