"""How well the two batch chains of rnnlab's recurrence overlap on the two cores, and what the
other way to run them would give: forward + backward of the bare recurrence (the loss
sum(h_t * R_t) for a fixed random R; its gradients with respect to the three weights), timed
three ways in alternating rounds:

- one program: rnnlab's layout, both chains unrolled in one XLA program (the default Layout);
- two programs: each half of the batch one chain, unrolled, in an XLA program of its own, the
  two called side by side from one plain tf.function (TensorFlow's executor runs them on two
  inter-op threads) and their weight gradients added;
- half alone: one of those programs by itself, half the batch on one chain: what each core
  would take if the two chains overlapped perfectly.

"overlap" is (2 x half alone) / one program: 2.0 when the chains run side by side all the time,
1.0 when they take turns. Not a training step (no output layer, loss or update), and the two
programs' weight gradients are summed in another order than the one program's: an estimate of
what a layout of separate programs could gain, not a layout rnnlab has.

    python benchmarks/chain_overlap.py [--repeats 20] [--cells lstm gru]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from common import load_average, machine, markdown_table, steady_median_ms

# (label, B, T, n_in, H): the bench's two shapes and the pipeline's two TensorFlow stages at
# the LSTM's size, H = 96, for both cells (the pipeline's GRU, matched in parameters: 110)
SHAPES = [("bench sine", 64, 100, 1, 64), ("bench memory", 500, 22, 10, 32),
          ("train_sine", 100, 100, 1, 96), ("train_memory", 100, 22, 10, 96)]


def gradient_functions(cell: str, B: int, T: int, n_in: int, H: int) -> dict:
    """{"one program" | "two programs" | "half alone": no-argument callable} (module docstring);
    each returns the weight gradients as numpy arrays, so a call waits for its result."""
    from rnnlab.tf_rnn._tf import tf
    from rnnlab.tf_rnn.model import CELL_KINDS
    from rnnlab.tf_rnn.recurrence import Layout

    @dataclasses.dataclass(frozen=True)
    class OneChainUnrolled(Layout):
        """One chain, unrolled as rnnlab unrolls two (Layout.unrolled asks for a split)."""
        def unrolled(self, n_steps, n_chains: int) -> bool:
            return n_steps is not None and n_steps <= self.unroll_max_steps

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((T, B, n_in)).astype(np.float32))
    r = tf.constant(rng.standard_normal((T, B, H)).astype(np.float32))
    # the same seed, so the same weights: rnnlab's layout, and one chain for each half
    two_chains, one_chain = (CELL_KINDS[cell].cell_class(n_in, H, layout=layout)
                             for layout in (Layout(), OneChainUnrolled()))

    def gradients(rnn, x, r):
        weights = list(rnn.weights.values())
        with tf.GradientTape() as tape:
            hs, _ = rnn.call_time_major(x, rnn.zero_state(x.shape[1]))
            loss = tf.reduce_sum(hs * r)
        return tape.gradient(loss, weights)

    one_program = tf.function(jit_compile=True)(lambda: gradients(two_chains, x, r))
    half = tf.function(jit_compile=True)(lambda xh, rh: gradients(one_chain, xh, rh))
    rows = B // 2

    @tf.function
    def two_programs():
        first, second = half(x[:, :rows], r[:, :rows]), half(x[:, rows:], r[:, rows:])
        return [a + b for a, b in zip(first, second, strict=True)]

    fns = {"one program": one_program, "two programs": two_programs,
           "half alone": lambda: half(x[:, :rows], r[:, :rows])}
    return {name: (lambda fn=fn: [g.numpy() for g in fn()]) for name, fn in fns.items()}


def report(repeats: int = 20, cells=("lstm", "gru")) -> str:
    header = ["case", "one program ms", "two programs ms", "half alone ms",
              "overlap, one program", "overlap, two programs"]
    rows = []
    for cell in cells:
        for label, B, T, n_in, H in SHAPES:
            times = steady_median_ms(gradient_functions(cell, B, T, n_in, H), repeats, warmup=2)
            one, two, alone = times["one program"], times["two programs"], times["half alone"]
            rows.append([f"{cell.upper()} {label} B={B} T={T} in={n_in} H={H}",
                         f"{one:.2f}", f"{two:.2f}", f"{alone:.2f}",
                         f"{2 * alone / one:.2f}", f"{2 * alone / two:.2f}"])
    return markdown_table(header, rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cells", nargs="+", choices=("lstm", "gru"), default=["lstm", "gru"])
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}; load average at start {load_average()}")
    print(report(args.repeats, tuple(args.cells)))


if __name__ == "__main__":
    main()
