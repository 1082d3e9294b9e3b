"""One configuration of bench_sizes, run in a fresh process: step time and step memory.

    python benchmarks/_measure_size.py IMPL T H [--batch B] [--warmup N] [--repeats N] [--prime]

IMPL is "numpy" (the numpy RNN, one-hot inputs V=10) or a TensorFlow one of TF_IMPLS: rnnlab's
MyLSTMCell, MyGRUCell or ReLU BasicRNNCell + linear layer (XLA step), or keras.layers.LSTM or
GRU + Dense (plain tf.function), all with n_in = n_out = 10 and cross-entropy.
Prints one JSON line: the first call's seconds (tracing and compilation for TensorFlow), the
median ms of the timed calls, and the memory the calls needed.

Memory: the resident set (VmRSS) is read just before the first call, after imports, model,
optimiser and data are built, and the kernel's peak-RSS counter is reset to it
(/proc/self/clear_refs "5"; the counter getrusage reports as ru_maxrss). After the first call,
the warm-up and the timed calls, the peak (VmHWM) minus that RSS is the memory the training
steps needed on top of the process: activations kept for BPTT, gradients and temporaries, and,
for TensorFlow, what its first call needs to build the step (Keras: tracing the graph;
rnnlab's cells: tracing, converting to XLA and loading the program from XLA's persistent
cache).
It cannot be measured after the warm-up instead: TF's allocator keeps freed buffers resident
for reuse, so later steps show no growth.

--prime only makes the first call (it compiles an rnnlab cell's step into XLA's persistent
cache) and prints its seconds: bench_sizes primes rnnlab's cells first, so that the measuring
process always loads the step from the cache and its memory never depends on what ran before.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import MIB, median_ms

V = 10  # inputs and outputs (one-hot / classes) of every implementation
# IMPL -> (bench_tf cell, side)
TF_IMPLS = {"mylstm": ("lstm", "rnnlab"), "keraslstm": ("lstm", "keras"),
            "mygru": ("gru", "rnnlab"), "kerasgru": ("gru", "keras"),
            "myrnn": ("rnn", "rnnlab")}


def build_step(impl: str, B: int, T: int, H: int):
    """A no-argument callable running one training step of `impl` at (B, T, H)."""
    # Imported here, not at the top: a numpy process must not load TensorFlow (its start-up
    # memory and idle threads would be in the measurement).
    if impl == "numpy":
        from bench_numpy import numpy_step

        return numpy_step(B, T, V, H)
    from bench_tf import cell_steps

    cell, side = TF_IMPLS[impl]
    return cell_steps(cell, B, T, V, H, V, "ce", sides=(side,), parts=("train",))[f"{side} train"]


def _status_bytes(field: str) -> int:
    """A memory field of /proc/self/status ("VmRSS", "VmHWM"), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return 1024 * int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; returns that RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def first_call_seconds(step) -> float:
    """Wall seconds of step()'s first call (tracing and compilation for TensorFlow)."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def measure(impl: str, B: int, T: int, H: int, warmup: int, repeats: int) -> dict:
    """Times and memory of one configuration (see the module docstring)."""
    step = build_step(impl, B, T, H)
    resident = reset_peak_rss()
    first_s = first_call_seconds(step)
    ms = median_ms(step, warmup=max(0, warmup - 1), repeats=repeats)
    return {"impl": impl, "B": B, "T": T, "H": H, "first_s": first_s, "ms": ms,
            "repeats": repeats, "peak_mib": (_status_bytes("VmHWM") - resident) / MIB,
            "resident_mib": resident / MIB}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("impl", choices=("numpy", *TF_IMPLS))
    parser.add_argument("T", type=int)
    parser.add_argument("H", type=int)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls, the first included")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls")
    parser.add_argument("--prime", action="store_true", help="only the first call (compile)")
    args = parser.parse_args(argv)
    if args.prime:
        step = build_step(args.impl, args.batch, args.T, args.H)
        print(json.dumps({"first_s": first_call_seconds(step)}))
        return
    print(json.dumps(measure(args.impl, args.batch, args.T, args.H, args.warmup, args.repeats)))


if __name__ == "__main__":
    main()
