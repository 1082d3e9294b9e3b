"""`make bench`: rnnlab's training steps against the Keras reference on the same shapes.

Prints, in one run: the training-step table (numpy RNN, LSTM and GRU against Keras, with achieved
GFLOP/s against this machine's matmul rate at the same shapes), the same LSTM and GRU comparison
for forward + backward alone, the LSTM core's layout variants (bench_lstm_choices), the
cost-against-size sweep (bench_sizes), time to accuracy, where a queued sweep experiment's time
goes (sweep_overhead), how two sweep runs side by side share the machine (sweep_contention), the
machine and the commands. Writes it all to benchmarks/RESULTS.md
above the "<!-- notes -->" marker, keeping the notes below it. Numbers, not a test: nothing
here asserts.

Run: .venv/bin/python benchmarks/run.py [--repeats N] [--skip-accuracy] [--skip-sizes]
     [--quick-sizes] [--no-verify] [--skip-choices] [--skip-sweep]
     [--skip-contention] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import bench_lstm_choices
import bench_numpy
import bench_sizes
import bench_tf
import lowering_cost
import sweep_contention
import sweep_overhead
from common import (STEADY_ROUNDS, STEADY_WARMUP_MS, faster_reference, load_average, machine,
                    markdown_table)

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
MARKER = "<!-- notes -->"


def speed_table(rows: list[dict]) -> str:
    """rows: dicts with case, rnnlab_ms, reference_ms, reference_xla_ms, gflops,
    peak_gflops."""
    header = ["case", "rnnlab ms", "Keras ms", "Keras + XLA ms",
              "speed-up (faster Keras / rnnlab)", "rnnlab GFLOP/s",
              "matmul GFLOP/s at these shapes", "fraction"]
    return markdown_table(header, [
        [r["case"], f"{r['rnnlab_ms']:.2f}", f"{r['reference_ms']:.2f}",
         f"{r['reference_xla_ms']:.2f}", f"{faster_reference(r) / r['rnnlab_ms']:.2f}x",
         f"{r['gflops']:.2f}", f"{r['peak_gflops']:.2f}", f"{r['gflops'] / r['peak_gflops']:.0%}"]
        for r in rows])


def step_caption(repeats: int) -> str:
    """What the training-step table times, and how often."""
    rounds = min(STEADY_ROUNDS, repeats)
    return (
        "Training step = forward, backward, global-norm clipping (5.0), Adam update (lr 1e-3); "
        "float32. numpy RNN (one BLAS thread; rnnlab's numpy Adam, Keras's algorithm and "
        "defaults) against keras.layers.SimpleRNN(relu) + Dense; MyLSTMCell and MyGRUCell + "
        "linear layer (rnnlab.tf_rnn.train.get_train_step, one XLA-compiled step) against "
        "keras.layers.LSTM and keras.layers.GRU (reset_after=True, its default) + Dense, at the "
        "same two shapes; every TensorFlow side with keras.optimizers.Adam(1e-3) and "
        "tf.clip_by_global_norm. Keras runs two ways: in a plain tf.function, and XLA-compiled "
        "(what its own `fit` does by default, jit_compile=\"auto\", unless op determinism is "
        "on); the speed-up is against the faster of the two, which differs by shape. Each row: "
        "the three sides timed in alternating rounds, median of the round medians: 3 untimed "
        "calls per side for the numpy rows, 2 per function for the LSTM and GRU rows (the first "
        f"compiles), then {rounds} rounds of untimed calls (at least one, and at least "
        f"{STEADY_WARMUP_MS:g} ms of them) and {max(1, repeats // rounds)} timed calls each (a "
        "step's first calls after other work run slower than the ones after them; until 8 "
        "December one untimed call per round, which left the numpy step about 10% slow; numpy "
        "rows before 7 December: one timed call per round), the LSTM and GRU rows "
        "interleaved with the forward + backward functions of the next table. "
        "rnnlab GFLOP/s = matmul FLOPs of the step / median time; "
        "matmul GFLOP/s = numpy's rate at the case's recurrent product ((B,H)@(H,H) on one "
        "thread for the numpy RNN, (B,H)@(H,4H) for the LSTM, (B,H)@(H,3H) for the GRU), "
        "measured before TensorFlow runs.")


GRAD_CAPTION = (
    "Forward + backward alone (the LSTM and GRU rows above without clipping and update): the "
    "loss and its gradients with respect to all weights, rnnlab in one XLA-compiled "
    "tf.function, Keras in a plain and in an XLA-compiled one; timed in the same alternating "
    "rounds as the training steps. The matmul FLOPs are those of the training step, so the "
    "fractions compare directly.")


SPLIT_CAPTION = (
    "Where the numpy RNN's products are split over the cores (bench_numpy.split_threshold_rows,"
    " timed before TensorFlow runs anything): the same training step with the split from "
    "rnnlab.numpy_rnn._threads.PARALLEL_MIN_MACS multiply-adds (the default), for every "
    "product, and never; alternating rounds, median.")


SWEEP_CAPTION = (
    "Where a queued sweep experiment's time goes (benchmarks/sweep_overhead.py): capacity-grid "
    "experiments (train_memory at the full grid's 15 epochs; LSTM and matched RNN at B = 5 and "
    "40, seed 0) run in a temporary clone as `make capacity` runs them (a pool of "
    "rnnlab.workflows.worker processes), each stage's phases read from the run's log. DVC's "
    "part is the worker time per experiment left over by the stages, split by the time each "
    "experiment took in its worker (the log's last line) into DVC's work within the experiment "
    "and the sweep's start and end shared out (with 4 experiments on 2 workers, a large share); "
    "the overhead is all but training proper.")


def accuracy_table(numpy_s: float, lstm_s: float) -> str:
    """Seconds of training to the target accuracy (bench_numpy, bench_tf.time_to_accuracy)."""
    return markdown_table(["time to accuracy", "seconds of training", "target"], [
        ["numpy RNN to 0.90 copy-task accuracy (params.yaml copy_task, numpy_rnn; test set "
         "every 500 steps, scoring excluded)", f"{numpy_s:.0f}", "120"],
        ["LSTM to 0.99 memory accuracy (params.yaml memory_task, tf_model, tf_memory; test set "
         "every epoch, compilation included, scoring excluded)", f"{lstm_s:.0f}", "120"]])


def commands() -> str:
    """The command line of this run and of the parts run alone."""
    ran = " ".join(["benchmarks/run.py", *sys.argv[1:]])
    return (f"Commands: `.venv/bin/python {ran}` (`make bench` runs it without options); parts "
            "alone: `benchmarks/bench_numpy.py [--repeats N] [--time-to-accuracy]`, "
            "`benchmarks/bench_tf.py [--repeats N] [--no-tta] [--cells lstm gru]`, "
            "`benchmarks/bench_sizes.py [--quick] [--no-verify] [--impls mylstm ...]`, "
            "`benchmarks/bench_lstm_choices.py`, `benchmarks/lowering_cost.py [--repeats N]`, "
            "`benchmarks/chain_overlap.py [--repeats N] [--cells lstm gru]`, "
            "`benchmarks/sweep_overhead.py`, "
            "`benchmarks/sweep_contention.py [--window S]`; "
            "one machine against two shards: `benchmarks/sweep_shards.py [--quick]`.")


def write_results(text: str) -> Path:
    """RESULTS.md = a title, `text`, the marker and the notes found below it (kept)."""
    old = RESULTS.read_text() if RESULTS.exists() else ""
    notes = old.split(MARKER, 1)[1] if MARKER in old else "\n"
    RESULTS.write_text("# Benchmark results\n\n" + text + "\n\n" + MARKER + notes)
    return RESULTS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per step function")
    parser.add_argument("--skip-accuracy", action="store_true", help="no time to accuracy")
    parser.add_argument("--skip-sizes", action="store_true", help="no cost-against-size sweep")
    parser.add_argument("--quick-sizes", action="store_true", help="the sweep with fewer points")
    parser.add_argument("--no-verify", action="store_true",
                        help="no real runs at the extrapolated 2 GiB lengths")
    parser.add_argument("--skip-choices", action="store_true",
                        help="no timing of the LSTM core's layout variants")
    parser.add_argument("--skip-lowering", action="store_true",
                        help="no timing of building steps with TensorFlow's or rnnlab's tanh")
    parser.add_argument("--skip-sweep", action="store_true",
                        help="no breakdown of a queued sweep experiment's time")
    parser.add_argument("--skip-contention", action="store_true",
                        help="no timing of two sweep runs side by side")
    parser.add_argument("--no-write", action="store_true", help="print only, keep RESULTS.md")
    args = parser.parse_args(argv)
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load_average()
    # numpy's matmul rates before TensorFlow runs (its idle threads slow numpy down)
    numpy_rates, tf_rates = bench_numpy.matmul_rates(), bench_tf.matmul_rates()
    split_rows = bench_numpy.split_threshold_rows(args.repeats)
    numpy_rows = bench_numpy.run_cases(args.repeats, numpy_rates)
    tf_rows = bench_tf.run_cases(args.repeats, tf_rates)
    report = [f"Run: {started}; load average at start {load}",
              f"Machine: {machine()}", commands(), "",
              step_caption(args.repeats), "", speed_table(numpy_rows + tf_rows["train"]), "",
              GRAD_CAPTION, "", speed_table(tf_rows["grad"]), "", SPLIT_CAPTION, "",
              markdown_table(["case", "default ms", "always split ms", "never split ms"],
                             split_rows)]
    if not args.skip_choices:
        report += ["", bench_lstm_choices.run(args.repeats)]
    if not args.skip_lowering:
        report += ["", lowering_cost.report(repeats=3, n_ops=400)]
    if not args.skip_sizes:
        report += ["", bench_sizes.report(quick=args.quick_sizes, check=not args.no_verify)]
    if not args.skip_accuracy:
        # last: the LSTM's run turns on TensorFlow's op determinism for the whole process
        report += ["", accuracy_table(bench_numpy.time_to_accuracy(),
                                      bench_tf.time_to_accuracy())]
    if not args.skip_sweep:
        report += ["", SWEEP_CAPTION, "", sweep_overhead.report([])]
    if not args.skip_contention:
        report += ["", sweep_contention.report()]
    report += ["", f"Load average at the end: {load_average()}"]
    text = "\n".join(report)
    print(text)
    if not args.no_write:
        print(f"\nwritten to {write_results(text)}")


if __name__ == "__main__":
    main()
