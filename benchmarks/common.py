"""Timing helpers shared by the benchmark modules (not a test: numbers, no assertions)."""

from __future__ import annotations

import statistics
import time

import numpy as np


def median_ms(fn, warmup: int = 3, repeats: int = 20) -> float:
    """Median wall time of `fn()` in milliseconds after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def interleaved_median_ms(fns: dict, repeats: int, rounds: int | None = None, warmup: int = 1,
                          round_warmup: int = 0) -> dict:
    """Median wall time (ms) of each no-argument function of `fns` ({name: fn}), timed in
    alternating rounds so that load from other processes hits them all alike.

    Each function is first called `warmup` times untimed (compilation, caches). Then, in each of
    `rounds` rounds (default `repeats`: one timed call of each function per round), every
    function in turn gets `round_warmup` untimed and max(1, repeats // rounds) timed calls.
    A function's result is the median over the rounds of its per-round median.
    """
    rounds = repeats if rounds is None else rounds
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    per_round = max(1, repeats // rounds)
    results = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            results[name].append(median_ms(fn, warmup=round_warmup, repeats=per_round))
    return {name: statistics.median(values) for name, values in results.items()}


def matmul_gflops(m: int, k: int, n: int, dtype=np.float32, repeats: int = 30) -> float:
    """This machine's measured numpy matmul rate (GFLOP/s) for an (m, k) @ (k, n) product.

    Small recurrent matmuls run far below the large-matrix peak, so each case compares its
    achieved rate against the peak measured at its own shapes, not against a 1024^3 product.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    ms = median_ms(lambda: a @ b, warmup=3, repeats=repeats)
    return 2.0 * m * k * n / (ms * 1e-3) / 1e9
