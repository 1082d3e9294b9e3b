"""The LSTM core's two layout choices, measured: its batch cut into two chains or not, and the
time loop unrolled in Python or one tf.while_loop (rnnlab.tf_rnn.recurrence.Layout).

Each variant runs in processes of its own (the step functions are traced once per process),
its model built with the variant's Layout(n_chains, unroll_max_steps), at the two bench shapes
of bench_tf and at the pipeline's own: the first training step with an empty compilation cache
(tracing + XLA compilation), then, in a second process that loads the program from that cache
(as every later run of the shape does), the median training step. Until 8 December the step
was timed in the process that had just compiled it; twice that put the while loop ahead at the
bench's sine shape where alternating runs with the program loaded showed no lead (RESULTS.md,
"`make bench` with the rounds warmed up by time").

    python benchmarks/bench_lstm_choices.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

from common import env_with_xla_cache, markdown_table

# name -> (n_chains, unroll_max_steps); the first is rnnlab.tf_rnn.recurrence.Layout's default.
VARIANTS = {
    "two chains, unrolled (the default)": (2, 128),
    "two chains, one while loop": (2, 0),
    "one chain, one while loop": (1, 0),
}


# The pipeline's own shapes (params.yaml: batch_size 100, lstm_hidden 96; the memory task at
# blank_separation_len 5 and at the capacity sweep's longest, 80), next to bench_tf's.
PIPELINE_CASES = [
    ("LSTM pipeline sine B=100 T=100 in=1 H=96", 100, 100, 1, 96, 1, "mse"),
    ("LSTM pipeline memory B=100 T=22 in=10 H=96", 100, 22, 10, 96, 10, "ce"),
    ("LSTM capacity memory B=100 T=97 in=10 H=96", 100, 97, 10, 96, 10, "ce"),
]


def cases() -> list:
    import bench_tf
    return bench_tf.CASES + PIPELINE_CASES


def measure(variant: str, case_index: int, repeats: int) -> dict:
    """In this process: first-step and median step time of one variant at one shape."""
    import bench_tf
    from common import median_ms
    from rnnlab.tf_rnn.recurrence import Layout

    n_chains, unroll_max_steps = VARIANTS[variant]
    layout = Layout(n_chains=n_chains, unroll_max_steps=unroll_max_steps)
    _, B, T, D, H, n_out, loss = cases()[case_index]
    step = bench_tf.lstm_steps(B, T, D, H, n_out, loss, sides=("rnnlab",), parts=("train",),
                               layout=layout)
    step = step["rnnlab train"]
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    return {"first_s": first, "step_ms": median_ms(step, warmup=2, repeats=repeats)}


def run(repeats: int = 20) -> str:
    """Every variant at every shape, each in a fresh process with an empty XLA cache."""
    rows = []
    for index, case in enumerate(cases()):
        for variant in VARIANTS:
            with tempfile.TemporaryDirectory() as cache:
                env = env_with_xla_cache(cache, TF_CPP_MIN_LOG_LEVEL="3")
                compiled, loaded = (_measure_in_a_process(variant, index, repeats, env)
                                    for _ in range(2))
            rows.append([case[0], variant, f"{loaded['step_ms']:.2f}",
                         f"{compiled['first_s']:.1f}", f"{loaded['first_s']:.1f}"])
    return ("The LSTM core's layout choices (benchmarks/bench_lstm_choices.py): each variant "
            "in a fresh process with an empty XLA cache (its first step: tracing + compilation), "
            "then in a second one that loads the program from that cache (its first step, and "
            f"the median training step over {repeats} calls).\n\n"
            + markdown_table(["case", "variant", "step ms", "first step s, compiling",
                              "first step s, cache warm"], rows))


def _measure_in_a_process(variant: str, index: int, repeats: int, env: dict) -> dict:
    """measure() in a fresh process with environment `env`."""
    out = subprocess.run([sys.executable, __file__, "--one", variant, str(index), str(repeats)],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--one", nargs=3, metavar=("VARIANT", "CASE", "REPEATS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        variant, case, repeats = args.one
        print(json.dumps(measure(variant, int(case), int(repeats))))
    else:
        print(run(args.repeats))


if __name__ == "__main__":
    main()
