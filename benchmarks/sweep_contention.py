"""Two sweep runs side by side on this machine: how fast each trains, against alone.

A sweep runs `--jobs 2` experiments at a time on 2 cores. Each arrangement below starts its
processes, lets each build its training step and take WARMUP_STEPS steps (then it records an
md5 of its weights: the bits), waits until all are ready, then counts the steps each takes in
the same WINDOW seconds. The workloads, at the pipeline's own shapes:

  lstm-memory  MyLSTMCell + linear layer, B = 100, T = 22, H = 96 (train_memory's step)
  lstm-sine    MyLSTMCell + linear layer, B = 100, T = 100, H = 96 (train_sine's step)
  numpy        the numpy RNN, Adam, batch 64, T = 27, H = 50 (train_numpy_rnn's step)

TensorFlow processes use both cores (as a sweep's runs do) unless "1 thread" says their
intra-op pool has one thread, "one core each" says each process may run only on a core of
its own (CPU affinity; the pool keeps its threads, so the program and the bits are the same),
or "idle threads sleep" says their pool's threads sleep when idle instead of spinning first
(rnnlab.tf_rnn._tf.idle_threads_sleep, as a sweep's workers run; the same program and bits);
an arrangement may do both.
"relative speed" is a process's steps per second against the same workload alone with the
default threads; their sum is the arrangement's throughput against running its processes one
after the other (1.0: nothing gained by running them together, 2.0: each as fast as alone).

    python benchmarks/sweep_contention.py [--window 12] [--only LABEL ...]

--only runs the "alone" rows (the reference) and the arrangements with those labels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import markdown_table

WARMUP_STEPS = 20
NUMPY_CHUNK = 100  # numpy steps per call
SHAPES = {"lstm-memory": (100, 22, 10, 96, 10, "ce"), "lstm-sine": (100, 100, 1, 96, 1, "mse")}
# (label, [(workload, intra-op threads: 0 = rnnlab's default), ...], modes: OWN_CORE and/or SLEEP)
OWN_CORE, SLEEP = "own core", "sleep"
BOTH = f"{OWN_CORE}+{SLEEP}"
ARRANGEMENTS = [
    ("alone", [("lstm-memory", 0)], ""), ("alone", [("lstm-sine", 0)], ""),
    ("alone", [("numpy", 0)], ""),
    ("alone, 1 thread", [("lstm-memory", 1)], ""),
    ("alone, 1 thread", [("lstm-sine", 1)], ""),
    ("two TF runs", [("lstm-memory", 0), ("lstm-memory", 0)], ""),
    ("two TF runs", [("lstm-sine", 0), ("lstm-sine", 0)], ""),
    ("two TF runs, 1 thread each", [("lstm-memory", 1), ("lstm-memory", 1)], ""),
    ("two TF runs, 1 thread each", [("lstm-sine", 1), ("lstm-sine", 1)], ""),
    ("two TF runs, one core each", [("lstm-memory", 0), ("lstm-memory", 0)], OWN_CORE),
    ("two TF runs, one core each", [("lstm-sine", 0), ("lstm-sine", 0)], OWN_CORE),
    ("two TF runs, idle threads sleep", [("lstm-memory", 0), ("lstm-memory", 0)], SLEEP),
    ("two TF runs, idle threads sleep", [("lstm-sine", 0), ("lstm-sine", 0)], SLEEP),
    ("two TF runs, one core each, idle threads sleep",
     [("lstm-memory", 0), ("lstm-memory", 0)], BOTH),
    ("two TF runs, one core each, idle threads sleep",
     [("lstm-sine", 0), ("lstm-sine", 0)], BOTH),
    ("TF + numpy", [("lstm-memory", 0), ("numpy", 0)], ""),
    ("TF + numpy", [("lstm-sine", 0), ("numpy", 0)], ""),
    ("TF + numpy, idle threads sleep", [("lstm-memory", 0), ("numpy", 0)], SLEEP),
    ("two numpy runs", [("numpy", 0), ("numpy", 0)], ""),
]


def _tf_step(workload: str, threads: int, sleep: bool):
    from rnnlab.tf_rnn._tf import idle_threads_sleep, keras, set_determinism, tf
    if threads:  # after rnnlab's import, which pins the pool at INTRA_OP_THREADS
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    if sleep:
        idle_threads_sleep()
    from bench_tf import LOSSES, _waiting, case_data
    from rnnlab.tf_rnn.model import make_model
    from rnnlab.tf_rnn.train import get_train_step

    set_determinism(0)
    B, T, D, H, n_out, loss = SHAPES[workload]
    x, y = case_data(B, T, D, n_out, loss)
    model = make_model("lstm", D, n_out, lstm_hidden=H, seed=0)
    step = _waiting(get_train_step(model, LOSSES[loss], keras.optimizers.Adam(1e-3), 5.0), x, y)

    def steps():
        step()
        return 1
    return steps, lambda: [v.numpy() for v in model.variables_list]


def _numpy_step():
    import numpy as np
    from rnnlab.numpy_rnn.model import RNNClassifier
    from rnnlab.numpy_rnn.train import train_classifier

    rng = np.random.default_rng(0)
    x, y = (rng.integers(0, 10, size=(2000, 27)) for _ in range(2))
    model = RNNClassifier(10, 50, "permutation", rng=0)
    seeds = iter(range(10**9))

    def steps():  # NUMPY_CHUNK Adam steps on batches of 64 (one call: its set-up amortised)
        train_classifier(model, x, y, optimizer="adam", learning_rate=1e-3, batch_size=64,
                         steps=NUMPY_CHUNK, clip_norm=1.0, seed=next(seeds), desc="")
        return NUMPY_CHUNK
    return steps, lambda: [v for _, v in sorted(model.state_dict().items())]


def worker(workload: str, threads: int, mode: str, ready: Path, go: Path, window: float) -> None:
    """One process of an arrangement: prints {"steps_per_s", "md5"} as JSON."""
    step, weights = (_numpy_step() if workload == "numpy"
                     else _tf_step(workload, threads, sleep=SLEEP in mode.split("+")))
    done = 0
    while done < WARMUP_STEPS:
        done += step()
    digest = hashlib.md5(b"".join(w.tobytes() for w in weights())).hexdigest()[:12]
    ready.touch()
    while not go.exists():
        time.sleep(0.01)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < window:
        steps += step()
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start), "md5": digest}))


def _on_core(index: int | None):
    """A preexec_fn that lets the process run only on the index-th CPU it may use (None: all)."""
    if index is None:
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return lambda: os.sched_setaffinity(0, {cpus[index % len(cpus)]})


def arrangement(procs: list[tuple[str, int]], window: float, mode: str = "") -> list[dict]:
    """Run the processes of one arrangement together; their results in order."""
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        readies = [Path(tmp) / f"ready{i}" for i in range(len(procs))]
        running = [subprocess.Popen(
            [sys.executable, __file__, "--worker", w, str(t), mode, str(r), str(go), str(window)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent)),
            preexec_fn=_on_core(i if OWN_CORE in mode.split("+") else None))
            for i, ((w, t), r) in enumerate(zip(procs, readies, strict=True))]
        while not all(r.exists() for r in readies):
            if any(p.poll() not in (None, 0) for p in running):
                raise RuntimeError(f"a worker of {procs} failed")
            time.sleep(0.05)
        go.touch()
        return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]


def report(window: float = 12.0, only: list[str] | None = None) -> str:
    alone: dict[tuple[str, int], dict] = {}
    rows = []
    for label, procs, mode in ARRANGEMENTS:
        if only and label != "alone" and label not in only:
            continue
        results = arrangement(procs, window, mode)
        if len(procs) == 1:
            alone[procs[0]] = results[0]
        relative = [r["steps_per_s"] / alone[(w, 0)]["steps_per_s"]
                    for (w, _), r in zip(procs, results, strict=True)]
        bits = ["same" if r["md5"] == alone[(w, 0)]["md5"] else "differ"
                for (w, _), r in zip(procs, results, strict=True)]
        rows.append([label, " + ".join(w for w, _ in procs),
                     ", ".join(f"{1000 / r['steps_per_s']:.2f}" for r in results),
                     ", ".join(f"{x:.2f}" for x in relative), f"{sum(relative):.2f}",
                     ", ".join(bits)])
    caption = (f"Two runs side by side (benchmarks/sweep_contention.py): steps counted over the "
               f"same {window:.0f} s; relative speed: steps per second against the same "
               f"workload alone with TensorFlow's default threads; sum: the arrangement's "
               f"throughput against running its processes one after the other; bits: the "
               f"weights after {WARMUP_STEPS} steps against the default run alone.")
    return caption + "\n\n" + markdown_table(
        ["arrangement", "workloads", "ms per step", "relative speed", "sum", "bits"], rows)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        w, t, m, r, g, win = sys.argv[2:8]
        worker(w, int(t), m, Path(r), Path(g), float(win))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--window", type=float, default=12.0)
        parser.add_argument("--only", nargs="+", metavar="LABEL",
                            choices=sorted({label for label, _, _ in ARRANGEMENTS}))
        args = parser.parse_args()
        print(report(args.window, args.only))
