"""Where a compiled training step's time goes, kernel by kernel: rnnlab's step of one cell at
bench_tf's shapes, run under TensorFlow's profiler, each event of XLA's CPU runtime (one per
kernel it launches: a dot, a fusion of element-wise work, a concatenation, a copy) matched to
its instruction in the step's optimised HLO.

Per shape: the step's time without the profiler (common.steady_median_ms) and under it (each
kernel's event costs time of its own, so small kernels weigh more there), the kernels' summed
time (over both threads: above the wall time where kernels run side by side), how many kernels
a step launches, how much of the time none, one or two kernels run, and the kernels grouped
by kind and output shape (fusions by XLA's name for them, which names their root ops).

    python benchmarks/kernel_profile.py [--cells lstm gru] [--steps 20] [--top 12]
"""

from __future__ import annotations

import argparse
import collections
import glob
import re
import tempfile
import time

from bench_tf import CELLS, LOSSES, case_data, cases, rnnlab_fns
from common import markdown_table, steady_median_ms
from rnnlab.tf_rnn._tf import tf

# `%name = f32[250,128]{1,0} opcode(` in HLO text: an instruction of a computation
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+?)(?:\{[\d,]*\})? ([\w\-]+)\(")


def entry_instructions(hlo: str) -> dict:
    """{instruction name: (opcode, output type)} of the HLO module's ENTRY computation."""
    found, inside = {}, False
    for line in hlo.splitlines():
        if line.startswith("ENTRY"):
            inside = True
        elif inside and line.startswith("}"):
            break
        elif inside and (match := INSTRUCTION.match(line)):
            name, shape, opcode = match.groups()
            found[name] = (opcode, shape)
    return found


def kernel_group(name: str, opcode: str, shape: str) -> str:
    """A fusion by XLA's name stem ("add_tanh_fusion"), anything else by its opcode."""
    kind = re.sub(r"\.\d+$", "", name) if opcode == "fusion" else opcode
    return f"{kind} {shape}"


def kernel_events(logdir: str, names: dict) -> list[tuple[str, int, int]]:
    """(instruction name, start ps, end ps) of every profiled event that is an instruction of
    `names`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    for path in glob.glob(f"{logdir}/plugins/profile/*/*.xplane.pb"):
        with open(path, "rb") as f:
            space.MergeFromString(f.read())  # every host's file, should there be several
    events = []
    for plane in space.planes:
        metadata = {key: value.name for key, value in plane.event_metadata.items()}
        for line in plane.lines:
            start = line.timestamp_ns * 1000
            events += [(metadata[e.metadata_id], start + e.offset_ps,
                        start + e.offset_ps + e.duration_ps)
                       for e in line.events if metadata.get(e.metadata_id) in names]
    return events


def running_at_once(events: list[tuple[str, int, int]]) -> dict:
    """{0, 1, 2: share of the time from the first kernel's start to the last one's end during
    which that many kernels ran (2: two or more)}."""
    edges = sorted([(start, 1) for _, start, _ in events] + [(end, -1) for _, _, end in events])
    time_at = collections.Counter()
    running, last = 0, edges[0][0]
    for t, change in edges:
        time_at[min(running, 2)] += t - last
        running, last = running + change, t
    total = sum(time_at.values())
    return {n: time_at[n] / total for n in (0, 1, 2)}


def profile_case(cell: str, B: int, T: int, D: int, H: int, n_out: int, loss: str,
                 steps: int) -> dict:
    """The step's median ms without the profiler, its mean wall µs under it, kernels per
    step, kernel µs per step, and {group: [calls, µs]}."""
    x, y = case_data(B, T, D, n_out, loss)
    step = rnnlab_fns(cell, x, H, n_out, LOSSES[loss])["train"]
    names = entry_instructions(step.experimental_get_compiler_ir(x, y)(stage="optimized_hlo"))
    step(x, y).numpy()  # compiles
    plain = steady_median_ms({"step": lambda: step(x, y).numpy()}, steps, warmup=1)["step"]
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        for _ in range(steps):
            step(x, y).numpy()
        wall = (time.perf_counter() - started) / steps * 1e6
        tf.profiler.experimental.stop()
        events = kernel_events(logdir, names)
    if not events:
        raise RuntimeError("TensorFlow's profiler recorded no event of the step's XLA kernels")
    groups = collections.defaultdict(lambda: [0, 0.0])
    for name, start, end in events:
        group = groups[kernel_group(name, *names[name])]
        group[0] += 1
        group[1] += (end - start) / 1e6
    return {"plain_ms": plain, "wall": wall, "kernels": len(events) / steps,
            "kernel_us": sum(us for _, us in groups.values()) / steps,
            "at_once": running_at_once(events),
            "groups": {g: [n / steps, us / steps] for g, (n, us) in groups.items()}}


def report(cells=tuple(CELLS), steps: int = 20, top: int = 12) -> str:
    lines = []
    for cell in cells:
        for name, *shape in cases(cell):
            p = profile_case(cell, *shape, steps=steps)
            lines += [f"{name}: {p['plain_ms']:.2f} ms per step without the profiler, "
                      f"{p['wall'] / 1e3:.2f} ms under it, "
                      f"{p['kernels']:.0f} kernels per step, {p['kernel_us'] / 1e3:.2f} ms of "
                      "kernel time (both threads); from the first kernel to the last, none ran "
                      f"{p['at_once'][0]:.0%} of the time, one {p['at_once'][1]:.0%}, two "
                      f"{p['at_once'][2]:.0%}", ""]
            rows = sorted(p["groups"].items(), key=lambda item: -item[1][1])[:top]
            lines += [markdown_table(
                ["kernel (kind, output)", "per step", "µs per call", "µs per step", "share"],
                [[g, f"{n:.0f}", f"{us / n:.1f}", f"{us:.0f}", f"{us / p['kernel_us']:.0%}"]
                 for g, (n, us) in rows]), ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--steps", type=int, default=20, help="profiled steps per shape")
    parser.add_argument("--top", type=int, default=12, help="kernel groups shown per shape")
    args = parser.parse_args(argv)
    print(report(args.cells, args.steps, args.top))


if __name__ == "__main__":
    main()
