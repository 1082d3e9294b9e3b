"""`make bench`: rnnlab's training steps against the Keras reference on the same shapes.

Prints one table (median step times, ratio, achieved GFLOP/s against this machine's matmul
rate at the same shapes) plus time-to-accuracy, and writes it with the machine's description
to benchmarks/RESULTS.md. Numbers, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_numpy  # noqa: E402
import bench_tf  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    import numpy as np
    import tensorflow as tf

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, numpy {np.__version__}, TensorFlow {tf.__version__}")


def table(rows: list[dict]) -> str:
    lines = ["| case | rnnlab ms | reference ms | speed-up (ref / rnnlab) | rnnlab GFLOP/s | "
             "matmul GFLOP/s at these shapes | fraction |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['rnnlab_ms']:.2f} | {r['reference_ms']:.2f} | "
                     f"{r['reference_ms'] / r['rnnlab_ms']:.2f}x | {r['gflops']:.2f} | "
                     f"{r['peak_gflops']:.2f} | {r['gflops'] / r['peak_gflops']:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-accuracy", action="store_true", help="only the step timings")
    args = parser.parse_args()
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = bench_numpy.run_cases(args.repeats) + bench_tf.run_cases(args.repeats)
    report = [f"Run: `make bench`, {start}", f"Machine: {machine()}", "",
              "Training step = forward, backward, global-norm clipping, Adam update; float32; "
              "median of the timed repeats.", "", table(rows)]
    if not args.skip_accuracy:
        numpy_s = bench_numpy.time_to_accuracy()
        lstm_s = bench_tf.time_to_accuracy()
        report += ["", "| time to accuracy | seconds of training | target |", "|---|---:|---:|",
                   f"| numpy RNN to 0.90 copy-task accuracy (L=13, H=50) | {numpy_s:.0f} | 120 |",
                   f"| LSTM to 0.99 memory accuracy (L=8, B=5) | {lstm_s:.0f} | 120 |"]
    text = "\n".join(report)
    print(text)
    notes = RESULTS.read_text().split("<!-- notes -->", 1)[1] if RESULTS.exists() and \
        "<!-- notes -->" in RESULTS.read_text() else "\n"
    RESULTS.write_text("# Benchmark results\n\n" + text + "\n\n<!-- notes -->" + notes)
    print(f"\nwritten to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
