"""Cost against size: training-step time and memory against sequence length T and hidden size H.

Every cell, batch B = 32, one training step each (forward, backward, global-norm clipping at 5,
Adam at 1e-3, float32):
  numpy RNN    rnnlab's numpy RNN on one-hot inputs V = 10 (the copy task's layout);
  MyLSTMCell, MyGRUCell, ReLU RNN (TF)
               rnnlab's TensorFlow cells + linear layer (n_in = n_out = 10, cross-entropy),
               XLA step;
  Keras LSTM, Keras GRU
               keras.layers.LSTM / GRU + Dense on the same shapes, plain tf.function.
T in T_VALUES at H = 64, and H in H_VALUES at T = 100. Every configuration runs in a fresh
process (_measure_size.py, which describes the memory measurement) with a time limit.

From the T sweep it fits memory = a + b T (least squares over the points with T >= FIT_MIN_T)
and solves a + b T = 2 GiB: the largest T that fits, an extrapolation, checked by one real run
at that T when that run is predicted to take under VERIFY_MAX_S seconds.

Run: .venv/bin/python benchmarks/bench_sizes.py [--quick] [--no-verify] [--impls mylstm ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import fit_line, growth_exponent, load_average, machine, markdown_table
from rnnlab.tf_rnn.recurrence import Layout  # imports TensorFlow, for this default

UNROLL_MAX_STEPS = Layout().unroll_max_steps

HELPER = Path(__file__).resolve().parent / "_measure_size.py"
B = 32
T_VALUES, T_SWEEP_H = (25, 50, 100, 250, 500, 1000), 64
H_VALUES, H_SWEEP_T = (32, 64, 128, 256, 512), 100
QUICK_T_VALUES, QUICK_H_VALUES = (25, 250, 500), (32, 64)
IMPLS = {"numpy": "numpy RNN", "mylstm": "MyLSTMCell", "keraslstm": "Keras LSTM",
         "mygru": "MyGRUCell", "kerasgru": "Keras GRU", "myrnn": "ReLU RNN (TF)"}
PRIMED = ("mylstm", "mygru", "myrnn")  # XLA steps, compiled by a separate process first (measure)
# One table per group, so that each stays readable: each rnnlab cell beside its reference.
TABLE_GROUPS = (("numpy", "mylstm", "keraslstm"), ("mygru", "kerasgru", "myrnn"))
WARMUP = 2            # untimed calls per configuration, the first (tracing, compilation) included
TIMEOUT_S = 120       # per configuration; a configuration that does not finish shows "—"
BUDGET_MIB = 2048.0   # 2 GiB
FIT_MIN_T = 250       # memory fits use T >= this: MyLSTMCell's while-loop regime (T > 128),
                      # where the extrapolated T lies (its unrolled points are mostly the
                      # first call building the unrolled loop)
VERIFY_MAX_S = 60.0
STARTUP_S = 10.0      # a TensorFlow process's start-up and tracing, for the run-time estimate


def timed_repeats(T: int, H: int) -> int:
    """Timed calls of a configuration: 5, or 3 for the big ones (T >= 500 or H >= 256)."""
    return 3 if T >= 500 or H >= 256 else 5


def _run_helper(args: list[str], timeout: float) -> dict | None:
    """The JSON line of `_measure_size.py args`, or None if it failed or timed out."""
    try:
        done = subprocess.run([sys.executable, str(HELPER), *args], capture_output=True,
                              text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        print(f"_measure_size.py {' '.join(args)} failed:\n{exc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(impl: str, T: int, H: int, warmup: int = WARMUP, repeats: int | None = None,
            timeout: float = TIMEOUT_S) -> dict | None:
    """_measure_size.py's result for one configuration (None if it failed or timed out).
    rnnlab's TensorFlow cells are first compiled into XLA's persistent cache by a priming
    process, so the measured process loads the step, whatever ran before (its memory would
    otherwise include a compilation or not, depending on the cache)."""
    args = [impl, str(T), str(H), "--batch", str(B)]
    if impl in PRIMED and _run_helper(args + ["--prime"], timeout) is None:
        return None
    repeats = timed_repeats(T, H) if repeats is None else repeats
    return _run_helper(args + ["--warmup", str(warmup), "--repeats", str(repeats)], timeout)


def sweep_points(key: str, values) -> list[tuple[int, int, int]]:
    """[(swept value, T, H)]: key "T" sweeps T at H = T_SWEEP_H, "H" sweeps H at T = H_SWEEP_T."""
    return [(v, v, T_SWEEP_H) if key == "T" else (v, H_SWEEP_T, v) for v in values]


def configurations(t_values, h_values) -> list[tuple[int, int]]:
    """(T, H) pairs of both sweeps, each once (T = 100, H = 64 is in both)."""
    points = sweep_points("T", t_values) + sweep_points("H", h_values)
    return list(dict.fromkeys((T, H) for _, T, H in points))


def sweep(t_values, h_values, impls=tuple(IMPLS)) -> dict:
    """{(impl, T, H): result or None} for each of `impls`, one subprocess at a time; progress
    on stderr."""
    results = {}
    for T, H in configurations(t_values, h_values):
        for impl in impls:
            start = time.perf_counter()
            r = results[impl, T, H] = measure(impl, T, H)
            shown = (f"{r['ms']:.1f} ms, {r['peak_mib']:.1f} MiB, first call {r['first_s']:.1f} s"
                     if r else "did not finish")
            print(f"  {impl:6s} T={T:<5d} H={H:<4d} {shown} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)
    return results


# ----------------------------------------------------------------------------- tables

def _num(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


COLUMNS = {"ms": lambda r, T: r["ms"], "µs/step": lambda r, T: 1e3 * r["ms"] / T,
           "MiB": lambda r, T: r["peak_mib"]}


def sweep_table(results: dict, key: str, values, columns: tuple[str, ...], impls) -> str:
    """One row per swept value, per implementation of `impls` the COLUMNS named ("—": did not
    finish)."""
    header = [key] + [f"{IMPLS[impl]} {col}" for impl in impls for col in columns]
    rows = []
    for v, T, H in sweep_points(key, values):
        row = [str(v)]
        for impl in impls:
            r = results.get((impl, T, H))
            row += [_num(COLUMNS[col](r, T)) if r else "—" for col in columns]
        rows.append(row)
    return markdown_table(header, rows)


# ----------------------------------------------------------------------------- growth

def _points(results: dict, impl: str, key: str, values) -> list[tuple[int, dict]]:
    """[(swept value, result)] of the finished configurations of one sweep, in order."""
    return [(v, results[impl, T, H]) for v, T, H in sweep_points(key, values)
            if results.get((impl, T, H))]


def memory_fit(points: list[tuple[int, dict]]) -> tuple[float, float, list[int]] | None:
    """(a MiB, b MiB per step, Ts used) of memory = a + b T over the points with T >=
    FIT_MIN_T (all points if fewer than two are that long); None without two points."""
    used = [(T, r) for T, r in points if T >= FIT_MIN_T]
    used = used if len(used) >= 2 else points
    if len(used) < 2:
        return None
    a, b = fit_line([T for T, _ in used], [r["peak_mib"] for _, r in used])
    return a, b, [T for T, _ in used]


def verify(impl: str, T: int, points: list[tuple[int, dict]], enabled: bool) -> str:
    """One real run at T (1 untimed + 1 timed step) if predicted to take < VERIFY_MAX_S."""
    T_last, r_last = points[-1]
    processes, calls = (2, 3) if impl in PRIMED else (1, 2)  # a primed first call runs a step
    predicted_s = (processes * (STARTUP_S + r_last["first_s"])
                   + calls * 1e-3 * r_last["ms"] * T / T_last)
    if not enabled:
        return "not checked (--no-verify)"
    if predicted_s > VERIFY_MAX_S:
        return f"not checked (a run would take ~{predicted_s:.0f} s)"
    r = measure(impl, T, T_SWEEP_H, warmup=1, repeats=1, timeout=2 * VERIFY_MAX_S)
    if r is None:
        return f"a run at T={T:,} did not finish within {2 * VERIFY_MAX_S:.0f} s"
    return (f"a real run at T={T:,}, 1 untimed and 1 timed step, peaked at "
            f"{r['peak_mib'] / 1024:.2f} GiB ({r['ms'] / 1e3:.1f} s per step)")


def t_growth(results: dict, impl: str, t_values, check: bool) -> str:
    """One line: time per step across T, the memory fit and the largest T within 2 GiB."""
    points = _points(results, impl, "T", t_values)
    if len(points) < 2:
        return f"- {IMPLS[impl]}: too few finished points."
    (T0, r0), (T1, r1) = points[0], points[-1]
    text = (f"- {IMPLS[impl]}: {_num(1e3 * r0['ms'] / T0)} µs per time step at T={T0}, "
            f"{_num(1e3 * r1['ms'] / T1)} at T={T1} (time ∝ T^"
            f"{growth_exponent([T for T, _ in points], [r['ms'] for _, r in points]):.2f}).")
    if impl in PRIMED:
        text += _switch_note(points)
    fit = memory_fit(points)
    if fit is None:
        return text
    a, b, used = fit
    text += (f" Memory ≈ {a:.1f} MiB + {1024 * b:.1f} KiB × T (least squares over T = "
             f"{', '.join(map(str, used))}).")
    if b <= 0:
        return text + " The fit does not grow with T: no 2 GiB limit can be extrapolated."
    largest = int((BUDGET_MIB - a) / b)
    return (text + f" Largest T within 2 GiB ≈ {largest:,} (extrapolated from the fit; "
            f"{verify(impl, largest, points, check)}).")


def _switch_note(points) -> str:
    """An rnnlab TF cell's time per step on both sides of the unrolled / while-loop switch."""
    below = [(T, r) for T, r in points if T <= UNROLL_MAX_STEPS]
    above = [(T, r) for T, r in points if T > UNROLL_MAX_STEPS]
    if not below or not above:
        return ""
    (Tb, rb), (Ta, ra) = below[-1], above[0]
    why = (" (mostly the first call building the unrolled loop: tracing and conversion to XLA)"
           if rb["peak_mib"] > ra["peak_mib"] else "")
    return (f" Across the unrolled / while-loop switch (T > {UNROLL_MAX_STEPS}): "
            f"{_num(1e3 * rb['ms'] / Tb)} µs per step at T={Tb}, {_num(1e3 * ra['ms'] / Ta)} "
            f"at T={Ta}; memory {_num(rb['peak_mib'])} MiB at T={Tb}{why}, "
            f"{_num(ra['peak_mib'])} MiB at T={Ta}.")


def h_growth(results: dict, impl: str, h_values) -> str:
    """One line: growth exponents of time and memory with H over the larger sizes."""
    points = _points(results, impl, "H", h_values)
    points = points[-3:] if len(points) > 3 else points
    if len(points) < 2:
        return f"- {IMPLS[impl]}: too few finished points."
    hs = [H for H, _ in points]
    note = (f" (at T={H_SWEEP_T} its memory is mostly the first call building the unrolled "
            "loop, not the step)" if impl in PRIMED and H_SWEEP_T <= UNROLL_MAX_STEPS else "")
    return (f"- {IMPLS[impl]}: from H={hs[0]} to H={hs[-1]} time ∝ H^"
            f"{growth_exponent(hs, [r['ms'] for _, r in points]):.2f}, memory ∝ H^"
            f"{growth_exponent(hs, [max(r['peak_mib'], 1e-3) for _, r in points]):.2f}{note}.")


# ----------------------------------------------------------------------------- report

def _resident_range(results: dict, impls) -> str:
    """"a-b MiB": the processes' resident memory before their first call, over `impls`."""
    values = [r["resident_mib"] for (impl, _, _), r in results.items() if r and impl in impls]
    return f"{min(values):.0f}-{max(values):.0f} MiB" if values else "not measured"


def caption(results: dict, quick: bool, t_values, sweep_s: float) -> str:
    """What the tables show and how it was measured."""
    unrolled = ", ".join(str(T) for T in t_values if T <= UNROLL_MAX_STEPS) or "none"
    return (
        f"Cost against size{' (quick: fewer points)' if quick else ''}: one training step "
        f"(forward, backward, clipping, Adam; float32) at B={B}; numpy RNN on one-hot V=10, "
        "MyLSTMCell, MyGRUCell and the ReLU BasicRNNCell + linear layer (XLA step) and "
        "keras.layers.LSTM or GRU (reset_after) + Dense (tf.function) with 10 inputs, 10 "
        "classes, cross-entropy. Each configuration runs in a fresh process: "
        f"{WARMUP} untimed calls (the first traces and builds the step), then the median of 5 "
        "timed calls (3 when T >= 500 or H >= 256). MiB = peak resident memory of the process "
        "over all those calls minus its resident memory just before the first call (peak-RSS "
        "counter reset there through /proc/self/clear_refs; the counter ru_maxrss reports): "
        "activations kept for BPTT, gradients, temporaries and, for TensorFlow, what the "
        "first call needs to build the step (Keras: tracing; rnnlab's cells: tracing, conversion "
        "to XLA and loading the program from XLA's persistent cache, where a separate priming "
        "process compiled it just before, so that no compilation is in the number); not the "
        f"process itself (resident before the first call: numpy "
        f"{_resident_range(results, ('numpy',))}, TensorFlow "
        f"{_resident_range(results, [i for i in IMPLS if i != 'numpy'])}). TensorFlow keeps freed "
        "buffers for "
        "reuse, so the peak cannot be read off a later step alone. rnnlab's cells unroll their "
        f"time loop for T <= {UNROLL_MAX_STEPS} (here T = {unrolled} and the H sweep) and runs a "
        f"tf.while_loop above. A process that does not finish within {TIMEOUT_S} s shows —. "
        f"The sweep took {sweep_s:.0f} s.")


def report(quick: bool = False, check: bool = True, impls=tuple(IMPLS)) -> str:
    """The Markdown section: the sweep's tables (against T, then H; one per TABLE_GROUPS
    entry, restricted to `impls`), their caption and the growth summary."""
    t_values = QUICK_T_VALUES if quick else T_VALUES
    h_values = QUICK_H_VALUES if quick else H_VALUES
    start = time.perf_counter()
    results = sweep(t_values, h_values, impls)
    sweep_s = time.perf_counter() - start
    lines = [caption(results, quick, t_values, sweep_s)]
    groups = [kept for group in TABLE_GROUPS if (kept := [i for i in group if i in impls])]
    for group in groups:
        lines += ["", f"Against T (H = {T_SWEEP_H}):", "",
                  sweep_table(results, "T", t_values, ("ms", "µs/step", "MiB"), group)]
    for group in groups:
        lines += ["", f"Against H (T = {H_SWEEP_T}):", "",
                  sweep_table(results, "H", h_values, ("ms", "MiB"), group)]
    lines += ["", f"How cost grows with T (H = {T_SWEEP_H}, B = {B}); 2 GiB = the steps' memory "
              "as measured above:"]
    lines += [t_growth(results, impl, t_values, check) for impl in impls]
    lines += ["", f"How cost grows with H (T = {H_SWEEP_T}):"]
    lines += [h_growth(results, impl, h_values) for impl in impls]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer points: T in {QUICK_T_VALUES}, H in {QUICK_H_VALUES}")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the real runs at the extrapolated 2 GiB lengths")
    parser.add_argument("--impls", nargs="+", choices=list(IMPLS), default=list(IMPLS),
                        help="the implementations to measure (default: all)")
    args = parser.parse_args(argv)
    impls = [impl for impl in IMPLS if impl in args.impls]  # the tables' order
    print(f"Machine: {machine()}; load average at start {load_average()}\n")
    print(report(quick=args.quick, check=not args.no_verify, impls=impls))


if __name__ == "__main__":
    main()
