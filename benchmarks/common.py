"""Helpers shared by the benchmark modules: timing, random batches, rates, fits and tables.

Numbers, not tests: nothing here asserts. Importing this module loads numpy only (never
TensorFlow), so the numpy-only runs of bench_sizes stay free of TensorFlow's threads.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
MIB = 2.0 ** 20


# ----------------------------------------------------------------------------- processes

XLA_CACHE_FLAG = "--tf_xla_persistent_cache_directory="


def env_with_xla_cache(cache: str, **extra: str) -> dict[str, str]:
    """The environment for a child process whose XLA persistent cache is `cache` ("" for
    none). RNNLAB_XLA_CACHE alone is not enough once this process has imported TensorFlow
    through rnnlab: rnnlab.tf_rnn._tf wrote its own folder into TF_XLA_FLAGS, which a child
    inherits and prefers; so that flag is taken out of the child's TF_XLA_FLAGS."""
    env = dict(os.environ, RNNLAB_XLA_CACHE=cache, **extra)
    flags = [flag for flag in env.get("TF_XLA_FLAGS", "").split()
             if not flag.startswith(XLA_CACHE_FLAG)]
    if flags:
        env["TF_XLA_FLAGS"] = " ".join(flags)
    else:
        env.pop("TF_XLA_FLAGS", None)
    return env


# ----------------------------------------------------------------------------- timing

def median_ms(fn, warmup: int = 3, repeats: int = 20, warmup_ms: float = 0.0) -> float:
    """Median wall time of `fn()` in milliseconds after `warmup` untimed calls, and more untimed
    calls until they have taken at least `warmup_ms`."""
    start = time.perf_counter()
    calls = 0
    while calls < warmup or 1e3 * (time.perf_counter() - start) < warmup_ms:
        fn()
        calls += 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def interleaved_median_ms(fns: dict, repeats: int, rounds: int | None = None, warmup: int = 1,
                          round_warmup: int = 0, round_warmup_ms: float = 0.0) -> dict:
    """Median wall time (ms) of each no-argument function of `fns` ({name: fn}), timed in
    alternating rounds so that load from other processes hits them all alike.

    Each function is first called `warmup` times untimed (compilation, caches). Then, in each of
    `rounds` rounds (default `repeats`: one timed call of each function per round), every
    function in turn gets `round_warmup` untimed calls (more until they took `round_warmup_ms`)
    and max(1, repeats // rounds) timed calls.
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
            results[name].append(median_ms(fn, warmup=round_warmup, repeats=per_round,
                                           warmup_ms=round_warmup_ms))
    return {name: statistics.median(values) for name, values in results.items()}


STEADY_ROUNDS = 5  # rounds of steady_median_ms
# Untimed work of a side at the start of each of steady_median_ms's rounds. One call was not
# enough for a short step: the numpy RNN's 0.5 ms step, right after Keras's, ran about 10%
# slower for a few calls (RESULTS.md, "The numpy rows' warm-up").
STEADY_WARMUP_MS = 10.0


def steady_median_ms(fns: dict, repeats: int, warmup: int) -> dict:
    """interleaved_median_ms in min(STEADY_ROUNDS, repeats) rounds, each side getting untimed
    calls (at least one, and STEADY_WARMUP_MS of them) and then repeats // rounds timed calls:
    a training step's first calls after other work run slower than the calls after them
    (caches, the core's state), and a training loop runs its steps back to back, so each side
    is timed as it runs there."""
    return interleaved_median_ms(fns, repeats, rounds=min(STEADY_ROUNDS, repeats),
                                 warmup=warmup, round_warmup=1,
                                 round_warmup_ms=STEADY_WARMUP_MS)


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


def gflop_rate(flops: float, ms: float) -> float:
    """GFLOP/s of `flops` floating-point operations done in `ms` milliseconds."""
    return flops / (ms * 1e-3) / 1e9


def faster_reference(row: dict) -> float:
    """The faster Keras time (ms) of a speed row: its plain tf.function or its XLA-compiled
    one (Keras's own `fit` compiles with XLA by default, unless op determinism is on), so a
    speed-up is never measured against the slower way to run Keras."""
    return min(row["reference_ms"], row["reference_xla_ms"])


# ----------------------------------------------------------------------------- data

def onehot_batch(B: int, T: int, V: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random batch of class ids as (one-hot float32 inputs (B, T, V), int32 ids (B, T)):
    the copy task's layout, each target the input id itself."""
    ids = np.random.default_rng(seed).integers(0, V, size=(B, T)).astype(np.int32)
    return np.eye(V, dtype=np.float32)[ids], ids


# ----------------------------------------------------------------------------- fits

def fit_line(xs, ys) -> tuple[float, float]:
    """Least-squares (a, b) of y = a + b x over the points (xs, ys)."""
    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(a), float(b)


def growth_exponent(xs, ys) -> float:
    """k of y ~ x^k: the least-squares slope of log y against log x."""
    return fit_line(np.log(xs), np.log(ys))[1]


# ----------------------------------------------------------------------------- reporting

def markdown_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown table; `align` has one character per column, "l" or "r" (default: the first
    column left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, rule, *rows])


def _package_version(*names: str) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine() -> str:
    """One line: CPU model, cores, OS, Python, numpy and TensorFlow versions (TF not imported)."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, numpy {np.__version__}, "
            f"TensorFlow {_package_version('tensorflow', 'tensorflow-cpu')}")


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them ("?" if unknown)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
