"""What a TensorFlow process of rnnlab pays before it does anything: the import of
rnnlab.tf_rnn._tf (TensorFlow, Keras, rnnlab's settings), which every TensorFlow stage, sweep
worker and test subprocess pays once.

Runs `python -X importtime -c "import rnnlab.tf_rnn._tf"` in fresh processes and prints the
median wall time of the whole process, of the import itself and of the interpreter's shutdown
after it, and the modules that take longest on their own (self time, their submodules not
counted), median over the runs; then what the import leaves for Python's garbage collector.
`--python` times another environment's interpreter (for example one with other package
versions) the same way.

    python benchmarks/import_time.py [--repeats 7] [--top 8] [--python PATH]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict

from common import markdown_table

MODULE = "rnnlab.tf_rnn._tf"
# "import time:  self [us] | cumulative | <indent>name", one line per module, children first
LINE = re.compile(r"^import time:\s+(?P<self>\d+) \|\s+(?P<cumulative>\d+) \| (?P<name>.+)$")


def one_run(python: str) -> tuple[float, float, dict[str, int], int]:
    """(wall seconds of the process, seconds from the import's end to the process's end,
    {module: self time in us}, cumulative us of MODULE)."""
    start = time.perf_counter()
    done = subprocess.run([python, "-X", "importtime", "-c",
                           f"import time; import {MODULE}; print(time.time())"],
                          capture_output=True, text=True, check=True)
    ended, wall = time.time(), time.perf_counter() - start
    own, total = {}, 0
    for line in done.stderr.splitlines():
        match = LINE.match(line)
        if match:
            name = match["name"].strip()
            own[name] = int(match["self"])
            if name == MODULE:
                total = int(match["cumulative"])
    return wall, ended - float(done.stdout), own, total


def versions(python: str) -> str:
    """The versions of the packages that decide the import time, in `python`'s environment."""
    code = ("import importlib.metadata as m\n"
            "for p in ('tensorflow-cpu', 'tensorflow', 'keras', 'ml_dtypes', 'numpy'):\n"
            "    try: print(p, m.version(p))\n"
            "    except m.PackageNotFoundError: pass\n")
    found = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return ", ".join(found.stdout.splitlines())


def collector_counts(python: str) -> str:
    """What the import leaves for Python's garbage collector: rnnlab.tf_rnn._tf freezes it
    (gc.freeze), garbage cycles included; unfrozen, a full collection frees those."""
    code = (f"import gc, {MODULE}\n"
            "frozen = gc.get_freeze_count()\n"
            "gc.unfreeze()\n"
            "print(frozen, gc.collect())")
    found = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    frozen, garbage = found.stdout.split()
    return (f"after the import: {frozen} objects frozen (gc.get_freeze_count()), of which "
            f"{garbage} garbage (what gc.collect() frees after gc.unfreeze())")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    one_run(args.python)  # untimed: the first run after an install reads the files from disk
    walls, exits, totals, own = [], [], [], defaultdict(list)
    for _ in range(args.repeats):
        wall, exit_seconds, modules, total = one_run(args.python)
        walls.append(wall)
        exits.append(exit_seconds)
        totals.append(total)
        for name, us in modules.items():
            own[name].append(us)
    median_self = {name: statistics.median(v) for name, v in own.items()}
    top = sorted(median_self.items(), key=lambda item: -item[1])[:args.top]
    print(f"{args.python} ({versions(args.python)}); {args.repeats} fresh processes, medians:")
    print(f"process wall {statistics.median(walls):.2f} s; import {MODULE} "
          f"{statistics.median(totals) / 1e6:.2f} s; from its end to the process's end "
          f"(interpreter shutdown) {statistics.median(exits):.2f} s")
    print(collector_counts(args.python) + "\n")
    print(markdown_table(["module (self time, without its submodules)", "ms"],
                         [[name, f"{us / 1e3:.0f}"] for name, us in top]))


if __name__ == "__main__":
    main()
