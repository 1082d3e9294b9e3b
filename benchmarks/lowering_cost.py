"""What building a compiled step costs per activation op, with XLA's persistent cache warm
(so no compilation is in the number): TensorFlow's Tanh and Sigmoid, which tf2xla lowers through
an MLIR pipeline of their own per op, against rnnlab.tf_rnn.activations (the same HLO through
tf2xla's classic kernel) and a Mul for scale; then the first training step of the LSTM at the
pipeline's shapes, built with either.

Each measurement runs in a fresh process, with an XLA cache of this run's own: a priming process
compiles the program first, then the measured processes load it, alternating the two sides.

    python benchmarks/lowering_cost.py [--repeats 3] [--ops 400]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from common import env_with_xla_cache, markdown_table

OPS = {"tf.tanh": ("tf", "tanh"), "activations.tanh": ("rnnlab", "tanh"),
       "tf.sigmoid": ("tf", "sigmoid"), "activations.sigmoid": ("rnnlab", "sigmoid"),
       "Mul (for scale)": ("tf", "mul")}
# (label, cell, loss, B, T, n_in, H): the pipeline's sine stage and a capacity-grid point
STEPS = [("train_sine: B=100 T=100 in=1 H=96", "lstm", "sine", 100, 100, 1, 96),
         ("capacity, B=40: B=100 T=97 in=10 H=96", "lstm", "memory", 100, 97, 10, 96),
         ("train_memory: B=100 T=22 in=10 H=96", "lstm", "memory", 100, 22, 10, 96)]


def child_ops(side: str, op: str, n_ops: int) -> dict:
    """Seconds of the first call of a compiled chain of n_ops ops (trace, lowering, cache)."""
    from rnnlab.tf_rnn import activations
    from rnnlab.tf_rnn._tf import tf

    fn = (lambda v: v * 1.0001) if op == "mul" else getattr(
        activations if side == "rnnlab" else tf, op)

    @tf.function(jit_compile=True, autograph=False)
    def chain(x):
        for _ in range(n_ops):
            x = fn(x)
        return x

    x = tf.ones((8, 8))
    start = time.perf_counter()
    chain(x)
    return {"first_call": time.perf_counter() - start}


def child_step(side: str, index: int) -> dict:
    """Seconds of tracing and of the first call of the LSTM training step STEPS[index]."""
    import numpy as np

    from rnnlab.tf_rnn import activations
    from rnnlab.tf_rnn._tf import set_determinism, tf
    from rnnlab.tf_rnn.losses import MEMORY_LOSS, SINE_LOSS
    from rnnlab.tf_rnn.model import make_model
    from rnnlab.tf_rnn.train import get_train_step, make_optimizer

    activations._AVAILABLE = side == "rnnlab"  # TensorFlow's own ops otherwise
    _, cell, loss, B, T, n_in, H = STEPS[index]
    set_determinism(0)
    n_out = 1 if loss == "sine" else 10
    model = make_model(cell, n_in, n_out, lstm_hidden=H)
    step = get_train_step(model, (SINE_LOSS if loss == "sine" else MEMORY_LOSS).fn,
                          make_optimizer("adam", 1e-3), 5.0)
    x = tf.constant(np.zeros((B, T, n_in), np.float32))
    y = tf.constant(np.zeros((B, T), np.float32 if loss == "sine" else np.int32))
    start = time.perf_counter()
    step.get_concrete_function(x, y)
    traced = time.perf_counter()
    step(x, y)
    return {"trace": traced - start, "first_call": time.perf_counter() - traced}


def run_child(args: list[str], cache: str) -> dict:
    env = env_with_xla_cache(cache, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(variants: dict[str, list[str]], repeats: int, cache: str) -> dict[str, list[dict]]:
    """Each variant primed once (its program compiled into `cache`), then `repeats` rounds of
    one fresh process per variant, alternating."""
    for args in variants.values():
        run_child(args, cache)
    runs: dict[str, list[dict]] = {label: [] for label in variants}
    for _ in range(repeats):
        for label, args in variants.items():
            runs[label].append(run_child(args, cache))
    return runs


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(repeats: int, n_ops: int) -> str:
    with tempfile.TemporaryDirectory() as cache:
        ops = measure({label: ["ops", side, op, str(n_ops)] for label, (side, op) in OPS.items()},
                      repeats, cache)
        steps = measure({f"{i} {side}": ["step", side, str(i)]
                         for i in range(len(STEPS)) for side in ("tf", "rnnlab")}, repeats, cache)
    op_rows = [[label, f"{median(runs, 'first_call'):.2f}",
                f"{1000 * median(runs, 'first_call') / n_ops:.2f}"] for label, runs in ops.items()]
    step_rows = []
    for i, (label, *_) in enumerate(STEPS):
        tf_runs, ours = steps[f"{i} tf"], steps[f"{i} rnnlab"]
        step_rows.append([label, f"{median(tf_runs, 'trace'):.2f}",
                          f"{median(tf_runs, 'first_call'):.2f}", f"{median(ours, 'trace'):.2f}",
                          f"{median(ours, 'first_call'):.2f}"])
    return "\n\n".join([
        f"A compiled chain of {n_ops} ops, first call with the program in XLA's cache (median "
        f"of {repeats} fresh processes):",
        markdown_table(["op", "first call s", "ms per op"], op_rows),
        "The LSTM's training step (forward, BPTT, clipping, Adam), first call with the program "
        f"in XLA's cache, built with TensorFlow's tanh or rnnlab's (median of {repeats}):",
        markdown_table(["step", "TF ops: trace s", "TF ops: first call s",
                        "rnnlab's: trace s", "rnnlab's: first call s"], step_rows)])


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        kind, side, *rest = sys.argv[2:]
        result = (child_ops(side, rest[0], int(rest[1])) if kind == "ops"
                  else child_step(side, int(rest[0])))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ops", type=int, default=400)
    args = parser.parse_args()
    print(report(args.repeats, args.ops))


if __name__ == "__main__":
    main()
