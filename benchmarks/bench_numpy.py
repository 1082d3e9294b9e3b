"""Speed of the numpy RNN: one training step against Keras, and time to 0.90 recall accuracy.

A training step is forward, softmax cross-entropy (summed over time, averaged over the batch),
BPTT, global-norm clipping (5.0) and an Adam update (lr 1e-3), in float32, on a fixed random
one-hot batch. The reference is keras.layers.SimpleRNN(H, activation="relu",
return_sequences=True) + keras.layers.Dense(V) trained the same way inside a tf.function, plain
and XLA-compiled (what Keras's `fit` runs by default: jit_compile="auto")
(tf.GradientTape, tf.clip_by_global_norm(..., 5.0), keras.optimizers.Adam(1e-3)); the numpy
side uses rnnlab's numpy Adam (the same algorithm and defaults). The numpy step runs on one
BLAS thread, as training does (rnnlab.numpy_rnn._threads: large products are split over the
cores by rnnlab itself), and, as training does, with glibc's malloc keeping freed memory for the
next step (rnnlab.numpy_rnn._memory; process-wide, so the Keras side runs with it too); Keras
uses its default thread pools. The sides are timed in
alternating rounds (common.steady_median_ms, as bench_tf's), so load from other processes hits
them alike; `--single-call-rounds` times one call per side and round instead (this table's
way until 7 December), where each timed call is the first after another side's work.

TensorFlow is imported only when the Keras reference is built, so a process that times the
numpy step alone (bench_sizes) never loads it.

Run: .venv/bin/python benchmarks/bench_numpy.py [--repeats N] [--time-to-accuracy]
     [--single-call-rounds]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import (PARAMS_FILE, faster_reference, gflop_rate, interleaved_median_ms,
                    matmul_gflops, onehot_batch, steady_median_ms)
from rnnlab.numpy_rnn import _threads
from rnnlab.numpy_rnn._memory import keep_freed_memory
from rnnlab.numpy_rnn._threads import blas_threads
from rnnlab.numpy_rnn.model import RNNClassifier
from rnnlab.numpy_rnn.optimizers import Adam
from rnnlab.numpy_rnn.train import evaluate_recall, train_classifier, train_step
from rnnlab.pipeline.datasets import make_dataset
from rnnlab.pipeline.params import as_dict, read_params, validate

CLIP_NORM = 5.0
LEARNING_RATE = 1e-3
INIT = "gaussian"  # the sheet's random W_hh (the step time does not depend on the init)
# (name, batch B, time steps T, input/output size V, hidden H)
CASES = [
    ("numpy RNN B=32 T=27 V=10 H=50", 32, 27, 10, 50),
    ("numpy RNN B=256 T=100 D=10 H=256", 256, 100, 10, 256),
]


def train_step_flops(B: int, T: int, V: int, H: int) -> float:
    """Matmul FLOPs of one numpy training step (element-wise work not counted)."""
    rows = T * B
    forward = 2 * rows * ((V + 1) * H + H * H + H * V)  # input (+bias), recurrent, output
    backward = 2 * (B * (T - 1) * H * H  # W_hh^T dh-hat through time
                    + rows * H * H + rows * (V + 1) * H  # dW_hh, [dW_hx | db_h]
                    + 2 * rows * H * V)  # dW and dh of the output layer
    return float(forward + backward)


def numpy_step(B: int, T: int, V: int, H: int):
    """A no-argument callable: one numpy training step of RNNClassifier(V, H) on a fixed
    random batch, inputs one-hot (B, T, V), targets ids (B, T); BLAS on one thread, freed
    memory kept (as train_classifier does)."""
    keep_freed_memory()
    model = RNNClassifier(V, H, init=INIT, rng=0, dtype=np.float32)
    optimizer = Adam(LEARNING_RATE)
    x, y = onehot_batch(B, T, V)

    def step() -> float:
        with blas_threads(1):
            return train_step(model, optimizer, x, y, CLIP_NORM)

    return step


def keras_step(B: int, T: int, V: int, H: int, jit: bool = False):
    """A no-argument callable: the same training step with Keras SimpleRNN(relu) + Dense, in
    a tf.function, XLA-compiled if `jit` (inputs (B, T, V), targets (B, T), the numpy model's
    loss)."""
    from rnnlab.tf_rnn._tf import keras, tf  # here: numpy-only processes never load TF

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((T, V)),
                              keras.layers.SimpleRNN(H, activation="relu", return_sequences=True),
                              keras.layers.Dense(V)])
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    x, y = (tf.constant(a) for a in onehot_batch(B, T, V))

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            # the numpy model's loss: summed over time, averaged over the batch
            loss = tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)) / B
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, CLIP_NORM)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return lambda: step(x, y).numpy()  # .numpy() waits for the result


def matmul_rates() -> dict:
    """{case name: numpy matmul GFLOP/s on one thread at the case's recurrent (B, H) @ (H, H)}.

    Measure before TensorFlow runs: its idle worker threads compete with numpy for the cores."""
    with blas_threads(1):
        return {name: matmul_gflops(B, H, H) for name, B, T, V, H in CASES}


def run_cases(repeats: int = 20, rates: dict | None = None,
              single_call_rounds: bool = False) -> list[dict]:
    """One row per case: case, rnnlab_ms, reference_ms (Keras in a plain tf.function),
    reference_xla_ms (XLA-compiled), gflops (achieved by the numpy step), peak_gflops
    (matmul_rates()). Each case: 3 untimed calls per side, then alternating rounds
    (common.steady_median_ms), or with `single_call_rounds` `repeats` rounds of one timed call
    per side; median of the round medians."""
    rates = rates or matmul_rates()
    rows = []
    for name, B, T, V, H in CASES:
        sides = {"numpy": numpy_step(B, T, V, H), "keras": keras_step(B, T, V, H),
                 "keras_xla": keras_step(B, T, V, H, jit=True)}
        times = (interleaved_median_ms(sides, repeats, warmup=3) if single_call_rounds
                 else steady_median_ms(sides, repeats, warmup=3))
        rows.append({"case": name, "rnnlab_ms": times["numpy"], "reference_ms": times["keras"],
                     "reference_xla_ms": times["keras_xla"],
                     "gflops": gflop_rate(train_step_flops(B, T, V, H), times["numpy"]),
                     "peak_gflops": rates[name]})
    return rows


def time_to_accuracy(target: float = 0.90, eval_every: int = 500,
                     max_seconds: float = 120.0) -> float:
    """Seconds of training (evaluation excluded) until the numpy RNN at the defaults of
    params.yaml (copy_task, numpy_rnn) first reaches `target` recall accuracy on the test
    split, checked every `eval_every` steps; inf if it does not within `max_seconds` of
    training or numpy_rnn.steps."""
    params = validate(read_params(PARAMS_FILE))
    task, cfg = as_dict(params["copy_task"]), params["numpy_rnn"]
    splits = make_dataset("copy_task", task)
    model = RNNClassifier(task["vocab_size"], cfg.hidden, init=cfg.init, rng=cfg.seed)
    clock = {"start": time.perf_counter(), "eval": 0.0, "reached": None}

    def check(done: int) -> bool:
        t0 = time.perf_counter()
        train_seconds = t0 - clock["start"] - clock["eval"]
        accuracy = evaluate_recall(model, splits["test"]["inputs"], splits["test"]["targets"],
                                   task["to_remember_len"] + 1)["test_accuracy"]
        clock["eval"] += time.perf_counter() - t0
        if accuracy >= target:
            clock["reached"] = train_seconds
        return clock["reached"] is not None or train_seconds > max_seconds

    train_classifier(model, splits["train"]["inputs"], splits["train"]["targets"],
                     optimizer=cfg.optimizer, learning_rate=cfg.learning_rate,
                     batch_size=cfg.batch_size, steps=cfg.steps, clip_norm=cfg.clip_norm,
                     seed=cfg.seed, desc="time_to_accuracy", checkpoint_every=eval_every,
                     on_checkpoint=check)
    return float("inf") if clock["reached"] is None else clock["reached"]


def split_threshold_rows(repeats: int = 20) -> list[list[str]]:
    """The numpy step at each case with the products split over the cores from
    _threads.PARALLEL_MIN_MACS multiply-adds (the default), always, and never; alternating
    rounds (common.steady_median_ms), median ms. Shows where handing work to a second thread
    pays."""
    default = _threads.PARALLEL_MIN_MACS
    rows = []
    for name, B, T, V, H in CASES:
        steps = {}
        for label, threshold in (("default", default), ("always", 0), ("never", 1 << 62)):
            run = numpy_step(B, T, V, H)  # built here, untimed: one step per label

            def step(threshold=threshold, run=run):
                _threads.PARALLEL_MIN_MACS = threshold
                try:
                    return run()
                finally:
                    _threads.PARALLEL_MIN_MACS = default
            steps[label] = step
        ms = steady_median_ms(steps, repeats, warmup=3)
        rows.append([name] + [f"{ms[label]:.2f}" for label in ("default", "always", "never")])
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--time-to-accuracy", action="store_true",
                        help="also train to 0.90 accuracy (up to ~2 minutes)")
    parser.add_argument("--single-call-rounds", action="store_true",
                        help="time one call per side and round (each the first after another "
                             "side's work), not common.steady_median_ms's rounds")
    args = parser.parse_args(argv)
    for row in run_cases(args.repeats, single_call_rounds=args.single_call_rounds):
        print(f"{row['case']:<40} numpy {row['rnnlab_ms']:8.2f} ms   keras "
              f"{row['reference_ms']:8.2f} ms   keras+XLA {row['reference_xla_ms']:8.2f} ms   "
              f"speed-up against the faster {faster_reference(row) / row['rnnlab_ms']:5.2f}x   "
              f"{row['gflops']:6.1f} of {row['peak_gflops']:6.1f} GFLOP/s")
    for row in split_threshold_rows(args.repeats):
        print("split over the cores (default / always / never): " + " ".join(row))
    if args.time_to_accuracy:
        print(f"time to 0.90 accuracy: {time_to_accuracy():.1f} s")


if __name__ == "__main__":
    main()
