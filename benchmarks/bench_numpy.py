"""Speed of the numpy RNN: one training step against Keras, and time to 0.90 recall accuracy.

A training step is forward, softmax cross-entropy, BPTT, global-norm clipping (5.0) and an
Adam update, in float32, on random one-hot batches. The reference is
keras.layers.SimpleRNN(H, activation="relu", return_sequences=True) + keras.layers.Dense(V)
trained the same way inside a tf.function (tf.GradientTape, tf.clip_by_global_norm, Keras
Adam). Targets of the issue: reference_ms / rnnlab_ms >= 2.0 at the small shape (the copy
task) and >= 1.0 at the large one. The numpy step runs on one BLAS thread, as training does
(see rnnlab.numpy_rnn.blas_threads); Keras uses its default thread pools. The two steps are
timed in alternating rounds, so load from other processes hits both alike.

Run: .venv/bin/python benchmarks/bench_numpy.py [--repeats N] [--time-to-accuracy]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]

from common import interleaved_median_ms, matmul_gflops  # noqa: E402
from rnnlab import numpy_train  # noqa: E402
from rnnlab.config import read_params, validate  # noqa: E402
from rnnlab.datasets import make_dataset  # noqa: E402
from rnnlab.numpy_rnn import blas_threads  # noqa: E402
from rnnlab.numpy_train import Adam, RNNClassifier, evaluate_recall, train_step  # noqa: E402

CLIP_NORM = 5.0
# (name, batch B, time steps T, input/output size V, hidden H)
CASES = [
    ("train_step B=32 T=27 V=10 H=50", 32, 27, 10, 50),
    ("train_step B=256 T=100 D=10 H=256", 256, 100, 10, 256),
]


def train_step_flops(B: int, T: int, V: int, H: int) -> float:
    """Matmul FLOPs of one numpy training step (elementwise work not counted)."""
    rows = T * B
    forward = 2 * rows * ((V + 1) * H + H * H + H * V)  # input (+bias), recurrent, output
    backward = 2 * (B * (T - 1) * H * H  # W_hh^T dh-hat through time
                    + rows * H * H + rows * (V + 1) * H  # dW_hh, [dW_hx | db_h]
                    + 2 * rows * H * V)  # dW and dh of the output layer
    return float(forward + backward)


def _batch(B: int, T: int, V: int, seed: int = 0):
    ids = np.random.default_rng(seed).integers(0, V, size=(B, T))
    return np.eye(V, dtype=np.float32)[ids], ids


def numpy_step(B: int, T: int, V: int, H: int):
    """A no-argument function running one numpy training step on a fixed random batch."""
    model = RNNClassifier(V, H, init="random", rng=0, dtype=np.float32)
    opt = Adam(1e-3)
    x, y = _batch(B, T, V)
    return lambda: train_step(model, opt, x, y, CLIP_NORM)


def keras_step(B: int, T: int, V: int, H: int):
    """A no-argument function running the equivalent Keras training step (tf.function)."""
    from rnnlab.cli import import_tensorflow

    tf = import_tensorflow()  # without its start-up log lines
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((T, V)),
        keras.layers.SimpleRNN(H, activation="relu", return_sequences=True),
        keras.layers.Dense(V),
    ])
    opt = keras.optimizers.Adam(1e-3)
    x, y = _batch(B, T, V)
    x, y = tf.constant(x), tf.constant(y)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            # The same loss as the numpy model: summed over time, averaged over the batch.
            loss = tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)) / B
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, CLIP_NORM)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return lambda: step(x, y).numpy()  # .numpy() waits for the result


def _one_blas_thread(fn):
    """`fn` run with numpy's BLAS limited to one thread, as training runs it."""
    def run():
        with blas_threads(1):
            return fn()
    return run


def run_cases(repeats: int = 20) -> list[dict]:
    """One row per case: case, rnnlab_ms, reference_ms, gflops (achieved by rnnlab),
    peak_gflops (numpy matmul rate, one thread, at the case's per-step (B,H)x(H,H) shape)."""
    rows = []
    for name, B, T, V, H in CASES:
        times = interleaved_median_ms({"numpy": _one_blas_thread(numpy_step(B, T, V, H)),
                                       "keras": keras_step(B, T, V, H)},
                                      repeats, warmup=3)
        ms, ref = times["numpy"], times["keras"]
        with blas_threads(1):
            peak = matmul_gflops(B, H, H)
        rows.append({"case": name, "rnnlab_ms": ms, "reference_ms": ref,
                     "gflops": train_step_flops(B, T, V, H) / (ms * 1e-3) / 1e9,
                     "peak_gflops": peak})
    return rows


def time_to_accuracy(init: str | None = None, target: float = 0.90, eval_every: int = 500,
                     max_seconds: float = 120.0) -> float:
    """Seconds of training (evaluation excluded) until the numpy RNN at the defaults of
    params.yaml (copy_task, numpy_rnn; `init` overrides numpy_rnn.init) first reaches `target`
    recall accuracy, evaluated on the test split every `eval_every` steps; inf if it does not
    within `max_seconds` of training or numpy_rnn.steps."""
    params = validate(read_params(REPO / "params.yaml"))
    task, cfg = params["copy_task"], dict(params["numpy_rnn"])
    cfg["init"] = init or cfg["init"]
    splits = make_dataset("copy_task", task)
    (xtr, ytr), (xte, yte) = ((splits[s]["inputs"], splits[s]["targets"]) for s in ("train", "test"))
    model = RNNClassifier(task["vocab_size"], cfg["hidden"], init=cfg["init"], rng=cfg["seed"])
    start = time.perf_counter()
    eval_seconds = 0.0
    reached = []

    def check(done: int) -> bool:
        nonlocal eval_seconds
        t0 = time.perf_counter()
        train_seconds = t0 - start - eval_seconds
        acc = evaluate_recall(model, xte, yte, task["to_remember_len"] + 1)["test_accuracy"]
        eval_seconds += time.perf_counter() - t0
        if acc >= target:
            reached.append(train_seconds)
        return bool(reached) or train_seconds > max_seconds

    numpy_train.train_classifier(
        model, xtr, ytr, optimizer=cfg["optimizer"], learning_rate=cfg["learning_rate"],
        batch_size=cfg["batch_size"], steps=cfg["steps"],
        clip_norm=cfg["clip_norm"], seed=cfg["seed"], desc=f"time_to_accuracy[{cfg['init']}]",
        callback=check, callback_every=eval_every)
    return reached[0] if reached else float("inf")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--time-to-accuracy", action="store_true",
                        help="also train to 0.90 accuracy (up to ~2 minutes per init)")
    args = parser.parse_args(argv)
    for row in run_cases(args.repeats):
        ratio = row["reference_ms"] / row["rnnlab_ms"]
        print(f"{row['case']:<36} numpy {row['rnnlab_ms']:8.2f} ms   keras "
              f"{row['reference_ms']:8.2f} ms   ratio {ratio:5.2f}   "
              f"{row['gflops']:6.1f} of {row['peak_gflops']:6.1f} GFLOP/s")
    if args.time_to_accuracy:
        for init in ("random", "identity"):
            print(f"time to 0.90 accuracy ({init}): {time_to_accuracy(init):.1f} s")


if __name__ == "__main__":
    main()
