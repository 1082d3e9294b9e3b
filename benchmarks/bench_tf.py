"""TensorFlow benchmarks: rnnlab's LSTM training step against Keras's, and time to accuracy.

`run_cases()` times one training step (forward, backward, gradient clipping at global norm 5,
Adam update; float32) of rnnlab's MyLSTMCell + linear output layer and of
keras.layers.LSTM(return_sequences=True) + keras.layers.Dense under tf.GradientTape in a
tf.function, at the sheet's two shapes. Both models are updated by the same optimiser
(rnnlab's Adam, one implementation for both), so the comparison isolates the recurrent layer.
The two steps are timed in alternating rounds, so load from other processes hits both alike.

`time_to_accuracy()` trains the LSTM at the tuned defaults on the memory task and returns the
training seconds until the test recall accuracy first reaches 0.99.

Run: python benchmarks/bench_tf.py [--repeats N] [--no-tta]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

from common import interleaved_median_ms, matmul_gflops  # noqa: E402

# name, batch, time steps, inputs, hidden, outputs, loss
CASES = [
    ("sine B=64 T=100 in=1 H=64", 64, 100, 1, 64, 1, "mse"),
    ("memory B=500 T=22 in=10 H=32", 500, 22, 10, 32, 10, "ce"),
]


def _quiet_tensorflow():
    """Import TensorFlow without its start-up log lines (rnnlab.cli filters them)."""
    from rnnlab.cli import import_tensorflow

    import_tensorflow()
    from rnnlab.tf_train import silence_tensorflow  # (imports TensorFlow: only after the above)

    silence_tensorflow()


def _step_flops(B, T, D, H, O):
    """Matmul FLOPs of one training step (element-wise work not counted)."""
    forward = 2 * T * B * (D * 4 * H + H * 4 * H + H * O)
    # backward: dh through the recurrence, recurrent-kernel, kernel and output-layer gradients,
    # gradient flowing from the output layer into h
    backward = 2 * T * B * (H * 4 * H + H * 4 * H + D * 4 * H + H * O + H * O)
    return forward + backward


def _data(B, T, D, O, loss, seed=0):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((B, T, D)).astype(np.float32))
    if loss == "mse":
        y = tf.constant(rng.standard_normal((B, T)).astype(np.float32))
    else:
        y = tf.constant(rng.integers(0, O, size=(B, T)).astype(np.int32))
    return x, y


def _loss_fn(loss):
    from rnnlab import tf_rnn

    return tf_rnn.get_loss_sin if loss == "mse" else tf_rnn.memory_loss_per_step


def rnnlab_step(B, T, D, H, O, loss):
    """A zero-argument callable running one rnnlab training step on fixed data."""
    from rnnlab import tf_rnn

    x, y = _data(B, T, D, O, loss)
    model = tf_rnn.make_model("lstm", D, H, n_out=O, seed=0)
    step = tf_rnn.get_train_step(model, _loss_fn(loss), tf_rnn.Adam(1e-3), clip_norm=5.0)
    return lambda: step(x, y).numpy()


def keras_step(B, T, D, H, O, loss):
    """The same training step with keras.layers.LSTM + keras.layers.Dense."""
    import keras
    import tensorflow as tf

    from rnnlab import tf_rnn

    x, y = _data(B, T, D, O, loss)
    lstm = keras.layers.LSTM(H, return_sequences=True)
    dense = keras.layers.Dense(O)
    dense(lstm(x))
    variables = lstm.trainable_variables + dense.trainable_variables
    optimizer = tf_rnn.Adam(1e-3)
    loss_fn = _loss_fn(loss)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = loss_fn(dense(lstm(x)), y)
        grads = tape.gradient(value, variables)
        grads, _ = tf.clip_by_global_norm(grads, 5.0)
        optimizer.apply(grads, variables)
        return value

    return lambda: step().numpy()


def run_cases(repeats: int = 20) -> list[dict]:
    """Times each case; returns dicts with case, rnnlab_ms, reference_ms, gflops, peak_gflops.

    gflops: matmul FLOPs of rnnlab's step per second; peak_gflops: this machine's numpy
    matmul rate at the case's dominant (recurrent) matmul shape (B, H) @ (H, 4H).
    """
    # numpy's matmul rate first: measured after TensorFlow has run, TF's idle worker threads
    # still compete with numpy's for the two cores and the small-matrix rate collapses
    peaks = {name: matmul_gflops(B, H, 4 * H) for name, B, T, D, H, O, loss in CASES}
    _quiet_tensorflow()
    rows = []
    for name, B, T, D, H, O, loss in CASES:
        # 5 rounds of repeats // 5 timed calls each, one untimed call (compilation) first
        times = interleaved_median_ms({"rnnlab": rnnlab_step(B, T, D, H, O, loss),
                                       "reference": keras_step(B, T, D, H, O, loss)},
                                      repeats, rounds=5, warmup=1, round_warmup=1)
        rows.append({
            "case": name,
            "rnnlab_ms": round(times["rnnlab"], 3),
            "reference_ms": round(times["reference"], 3),
            "speedup": round(times["reference"] / times["rnnlab"], 3),
            "gflops": round(_step_flops(B, T, D, H, O) / (times["rnnlab"] * 1e-3) / 1e9, 2),
            "peak_gflops": round(peaks[name], 2),
        })
    return rows


def time_to_accuracy(target: float = 0.99, max_seconds: float = 300.0, verbose: bool = False) -> float:
    """Training seconds until the LSTM at the defaults of params.yaml (tf_model, tf_memory,
    memory_task) first reaches `target` memory test accuracy. The clock includes compilation
    and excludes evaluation; the test set is checked after every epoch. inf if not reached.
    """
    _quiet_tensorflow()
    from rnnlab import tf_rnn, tf_train
    from rnnlab.config import read_params, validate
    from rnnlab.datasets import make_dataset

    params = validate(read_params(REPO / "params.yaml"))
    m, t, task = params["tf_model"], params["tf_memory"], params["memory_task"]
    tf_train.set_determinism(m["seed"])
    L = task["to_remember_len"]
    splits = make_dataset("memory", task)
    train_x, train_y = tf_train.memory_arrays(**splits["train"])
    test_in, test_tg = splits["test"]["inputs"], splits["test"]["targets"]
    model = tf_rnn.make_model("lstm", train_x.shape[-1], m["hidden"],
                              n_out=task["vocab_size"], seed=m["seed"])
    state = {"train_seconds": 0.0, "last": time.perf_counter(), "reached": None}

    def on_epoch_end(epoch, step):
        now = time.perf_counter()
        state["train_seconds"] += now - state["last"]
        acc = tf_train.evaluate_memory(model, test_in, test_tg, L)["test_accuracy"]
        if verbose:
            print(f"epoch {epoch + 1}: {state['train_seconds']:.1f} s, test accuracy {acc:.4f}",
                  file=sys.stderr)
        if acc >= target:
            state["reached"] = state["train_seconds"]
        state["last"] = time.perf_counter()
        return acc >= target or state["train_seconds"] > max_seconds

    tf_train.train(model, tf_rnn.get_loss_memory, train_x, train_y, epochs=4 * t["epochs"],
                   batch_size=t["batch_size"], learning_rate=t["learning_rate"],
                   optimizer=m["optimizer"], clip_norm=m["clip_norm"], seed=m["seed"],
                   desc="time_to_accuracy", on_epoch_end=on_epoch_end)
    return float("inf") if state["reached"] is None else round(state["reached"], 2)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-tta", action="store_true", help="skip time_to_accuracy")
    args = parser.parse_args(argv)
    for row in run_cases(args.repeats):
        print(f"{row['case']:30s} rnnlab {row['rnnlab_ms']:8.2f} ms   keras "
              f"{row['reference_ms']:8.2f} ms   speedup {row['speedup']:.2f}x   "
              f"{row['gflops']:.1f} GFLOP/s"
              f" (matmul peak at this shape {row['peak_gflops']:.1f})")
    if not args.no_tta:
        print(f"time to 0.99 memory accuracy: {time_to_accuracy(verbose=True)} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
