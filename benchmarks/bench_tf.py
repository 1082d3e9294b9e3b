"""TensorFlow benchmarks: rnnlab's LSTM and GRU against Keras's, and time to accuracy.

Two sides on the same data, both float32, both with a linear output layer shared over time,
for each cell of CELLS:
  rnnlab   MyLSTMCell / MyGRUCell (hand-written BPTT) + linear layer, built by
           rnnlab.tf_rnn.model.make_model;
  keras    keras.layers.LSTM / keras.layers.GRU (reset_after=True, its default)
           (H, return_sequences=True) + keras.layers.Dense(n_out), in a plain tf.function;
  keras_xla  the same Keras layers, their functions XLA-compiled (what Keras's `fit` runs by
           default, jit_compile="auto", unless op determinism is on).
Two things are timed for each side:
  train    one training step: forward, backward, tf.clip_by_global_norm(..., 5.0) and a
           keras.optimizers.Adam(1e-3) update. rnnlab's is rnnlab.tf_rnn.train.get_train_step
           (one XLA-compiled tf.function); Keras's is the same step;
  grad     forward + backward alone: the loss and its gradients with respect to all weights
           (no clipping, no update), compiled the same way as that side's training step.
All six functions of a case (one cell at one shape) are timed in alternating rounds
(common.steady_median_ms), so load from other processes hits every side and table alike.

`time_to_accuracy()` trains the LSTM at the defaults of params.yaml on the memory task and
returns the training seconds until the test recall accuracy first reaches 0.99.

Run: .venv/bin/python benchmarks/bench_tf.py [--repeats N] [--no-tta] [--cells lstm gru]
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Callable, NamedTuple

import numpy as np

from common import PARAMS_FILE, faster_reference, gflop_rate, matmul_gflops, steady_median_ms
from rnnlab.pipeline.datasets import make_dataset
from rnnlab.pipeline.params import as_dict, read_params, validate
from rnnlab.tf_rnn._tf import keras, set_determinism, tf
from rnnlab.tf_rnn.losses import MEMORY_LOSS, memory_loss_per_step, sine_mse
from rnnlab.tf_rnn.model import make_model
from rnnlab.tf_rnn.tasks import evaluate_memory, memory_arrays
from rnnlab.tf_rnn.train import get_train_step, train

CLIP_NORM = 5.0
LEARNING_RATE = 1e-3
LOSSES = {"mse": sine_mse, "ce": memory_loss_per_step}  # targets: values or class ids
SIDES = ("rnnlab", "keras", "keras_xla")
PARTS = ("train", "grad")


class Cell(NamedTuple):
    """Keras's counterpart of the rnnlab cell of the same name (make_model's), as (H) -> layer
    returning every step's output, and the gate blocks of the fused kernels (kH columns)."""
    keras: Callable
    blocks: int


CELLS = {
    "lstm": Cell(lambda H: keras.layers.LSTM(H, return_sequences=True), 4),
    "gru": Cell(lambda H: keras.layers.GRU(H, return_sequences=True, reset_after=True), 3),
}
# shape name, batch B, time steps T, inputs D, hidden H, outputs n_out, loss
SHAPES = [
    ("sine B=64 T=100 in=1 H=64", 64, 100, 1, 64, 1, "mse"),
    ("memory B=500 T=22 in=10 H=32", 500, 22, 10, 32, 10, "ce"),
]


def cases(cell: str) -> list[tuple]:
    """SHAPES as (case name "<CELL> <shape>", B, T, D, H, n_out, loss) for one cell of CELLS."""
    return [(f"{cell.upper()} {name}", *shape) for name, *shape in SHAPES]


CASES = cases("lstm")  # the LSTM's (bench_lstm_choices times its layouts at these too)


def step_flops(B: int, T: int, D: int, H: int, n_out: int, blocks: int) -> float:
    """Matmul FLOPs of one forward + backward pass of a cell whose fused kernels have `blocks`
    gate blocks (LSTM 4, GRU 3); element-wise work and the update not counted, so a training
    step and a gradient computation do the same matmul FLOPs."""
    G = blocks * H
    forward = 2 * T * B * (D * G + H * G + H * n_out)
    # backward: dh through the recurrence, recurrent-kernel, kernel and output-layer gradients,
    # gradient flowing from the output layer into h
    backward = 2 * T * B * (H * G + H * G + D * G + H * n_out + H * n_out)
    return float(forward + backward)


def case_data(B: int, T: int, D: int, n_out: int, loss: str, seed: int = 0):
    """Fixed random tensors: x (B, T, D) float32; y (B, T): floats for "mse", ids < n_out for
    "ce"."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    y = (rng.standard_normal((B, T)).astype(np.float32) if loss == "mse"
         else rng.integers(0, n_out, size=(B, T)).astype(np.int32))
    return tf.constant(x), tf.constant(y)


def gradient_fn(call, variables: list, loss_fn, jit: bool):
    """tf.function (x, y) -> (loss, gradients of loss_fn(call(x), y) for `variables`)."""
    @tf.function(jit_compile=jit)
    def grad(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(call(x), y)
        return loss, tape.gradient(loss, variables)

    return grad


def keras_train_fn(call, variables: list, loss_fn, jit: bool):
    """The reference training step, tf.function (x, y) -> loss: gradients, global-norm
    clipping and a Keras Adam update (what get_train_step does), XLA-compiled if `jit`."""
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    optimizer.build(variables)

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(call(x), y)
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), CLIP_NORM)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return step


def rnnlab_fns(cell: str, x, H: int, n_out: int, loss_fn, layout=None) -> dict:
    """rnnlab's {"train": step(x, y), "grad": gradient(x, y)}: the cell + a linear layer."""
    model = make_model(cell, x.shape[-1], n_out, lstm_hidden=H, rnn_hidden=H, gru_hidden=H,
                       seed=0, layout=layout)
    return {"train": get_train_step(model, loss_fn, keras.optimizers.Adam(LEARNING_RATE),
                                    CLIP_NORM),
            "grad": gradient_fn(model, model.variables_list, loss_fn, jit=True)}


def _keras_fns(cell: str, x, H: int, n_out: int, loss_fn, jit: bool) -> dict:
    """Keras's {"train": step(x, y), "grad": gradient(x, y)}: the cell's layer + Dense, in
    tf.functions, XLA-compiled if `jit`."""
    keras.utils.set_random_seed(0)
    recurrent, dense = CELLS[cell].keras(H), keras.layers.Dense(n_out)

    def call(inputs):
        return dense(recurrent(inputs))

    call(x)  # builds the layers' weights
    variables = recurrent.trainable_variables + dense.trainable_variables
    return {"train": keras_train_fn(call, variables, loss_fn, jit),
            "grad": gradient_fn(call, variables, loss_fn, jit)}


def _waiting(fn, x, y):
    """A no-argument callable running fn(x, y) and waiting for its (first) result."""
    def run():
        out = fn(x, y)
        return (out[0] if isinstance(out, tuple) else out).numpy()

    return run


def cell_steps(cell: str, B: int, T: int, D: int, H: int, n_out: int, loss: str, sides=SIDES,
               parts=PARTS, layout=None) -> dict:
    """{"<side> <part>": no-argument callable} of the cell `cell` (a key of CELLS) on fixed
    random data of the shape; sides from SIDES, parts from PARTS (see the module docstring);
    `layout` (rnnlab.tf_rnn.recurrence.Layout) lays out rnnlab's recurrence (None: the
    default). The first call of each compiles."""
    x, y = case_data(B, T, D, n_out, loss)
    fns = {}
    for side in sides:
        built = (rnnlab_fns(cell, x, H, n_out, LOSSES[loss], layout) if side == "rnnlab"
                 else _keras_fns(cell, x, H, n_out, LOSSES[loss], jit=side == "keras_xla"))
        fns.update({f"{side} {part}": _waiting(built[part], x, y) for part in parts})
    return fns


lstm_steps = functools.partial(cell_steps, "lstm")  # bench_lstm_choices, _measure_size


def matmul_rates(cells=tuple(CELLS)) -> dict:
    """{case name: numpy matmul GFLOP/s (default threads) at the case's dominant recurrent
    product (B, H) @ (H, blocks H)}. Measure before TensorFlow runs: its idle worker threads
    compete with numpy's for the cores and the small-matrix rate collapses."""
    return {name: matmul_gflops(B, H, CELLS[cell].blocks * H)
            for cell in cells for name, B, T, D, H, n_out, loss in cases(cell)}


def run_cases(repeats: int = 20, rates: dict | None = None, cells=tuple(CELLS)) -> dict:
    """{"train": rows, "grad": rows}, one row per case (each cell of `cells` at each of SHAPES,
    cell by cell): case, rnnlab_ms, reference_ms (Keras, plain tf.function), reference_xla_ms
    (Keras, XLA), gflops (achieved by rnnlab), peak_gflops (matmul_rates()).

    Per case, the six functions (3 sides x 2 parts) get 2 untimed calls each (the first
    compiles: 10-20 s for rnnlab's unrolled T=100 loops), then common.steady_median_ms's
    alternating rounds; median of the round medians.
    """
    rates = rates or matmul_rates(cells)
    rows = {part: [] for part in PARTS}
    for cell in cells:
        for name, B, T, D, H, n_out, loss in cases(cell):
            times = steady_median_ms(cell_steps(cell, B, T, D, H, n_out, loss), repeats,
                                     warmup=2)
            flops = step_flops(B, T, D, H, n_out, CELLS[cell].blocks)
            for part in PARTS:
                ms, ref = times[f"rnnlab {part}"], times[f"keras {part}"]
                rows[part].append({"case": name, "rnnlab_ms": ms, "reference_ms": ref,
                                   "reference_xla_ms": times[f"keras_xla {part}"],
                                   "gflops": gflop_rate(flops, ms), "peak_gflops": rates[name]})
    return rows


def time_to_accuracy(target: float = 0.99, max_seconds: float = 300.0,
                     verbose: bool = False) -> float:
    """Training seconds until the LSTM at the defaults of params.yaml (tf_model, tf_memory,
    memory_task) first reaches `target` memory test accuracy; inf if it does not within
    `max_seconds` or 4 x tf_memory.epochs. The test set is scored after every epoch
    (checkpoint_every = steps per epoch); the clock includes compilation and excludes scoring.
    Turns on TensorFlow's op determinism for the rest of the process: call it last."""
    params = validate(read_params(PARAMS_FILE))
    m, t, task = params["tf_model"], params["tf_memory"], as_dict(params["memory_task"])
    set_determinism(m.seed)
    splits = make_dataset("memory", task)
    train_x, train_y = memory_arrays(splits["train"]["inputs"], splits["train"]["targets"],
                                     task["vocab_size"])
    model = make_model("lstm", train_x.shape[-1], task["vocab_size"], lstm_hidden=m.lstm_hidden,
                       seed=m.seed)
    clock = {"train": 0.0, "last": time.perf_counter(), "reached": None}

    def check(done: int) -> bool:
        clock["train"] += time.perf_counter() - clock["last"]
        accuracy = evaluate_memory(model, splits["test"]["inputs"], splits["test"]["targets"],
                                   task["to_remember_len"])["test_accuracy"]
        if verbose:
            print(f"step {done}: {clock['train']:.1f} s, test accuracy {accuracy:.4f}")
        if accuracy >= target:
            clock["reached"] = clock["train"]
        clock["last"] = time.perf_counter()
        return clock["reached"] is not None or clock["train"] > max_seconds

    train(model, MEMORY_LOSS, train_x, train_y, epochs=4 * t.epochs, batch_size=t.batch_size,
          learning_rate=t.learning_rate, optimizer=m.optimizer, clip_norm=m.clip_norm,
          seed=m.seed, desc="time_to_accuracy", checkpoint_every=len(train_x) // t.batch_size,
          on_checkpoint=check)
    return float("inf") if clock["reached"] is None else clock["reached"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-tta", action="store_true", help="skip time_to_accuracy")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS),
                        help="the cells to compare (default: all)")
    args = parser.parse_args(argv)
    for part, rows in run_cases(args.repeats, cells=args.cells).items():
        for row in rows:
            print(f"{part:5s} {row['case']:35s} rnnlab {row['rnnlab_ms']:8.2f} ms   keras "
                  f"{row['reference_ms']:8.2f} ms   keras+XLA {row['reference_xla_ms']:8.2f} ms"
                  f"   speed-up against the faster {faster_reference(row) / row['rnnlab_ms']:.2f}x"
                  f"   {row['gflops']:.1f} of "
                  f"{row['peak_gflops']:.1f} GFLOP/s")
    if not args.no_tta:
        print(f"time to 0.99 memory accuracy: {time_to_accuracy(verbose=True):.1f} s")


if __name__ == "__main__":
    main()
