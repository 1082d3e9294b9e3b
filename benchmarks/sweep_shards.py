"""The capacity sweep on one machine against the same grid in two shards (two "machines"),
timed, with a bare git repository and a local DVC remote standing in for the shared remotes.

Each shard runs alone on this machine (as it would on a machine of its own), so the two-shard
wall time is the longer shard plus the collection; the one-machine time is the whole grid with
the same number of workers.

    python benchmarks/sweep_shards.py [--quick] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import env_with_xla_cache

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def machine(origin: Path, store: Path, dest: Path, env: dict) -> Path:
    """A clone of `origin` with `store` as its default DVC remote."""
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True)
    subprocess.run([str(BIN / "dvc"), "remote", "add", "--local", "-d", "store", str(store)],
                   cwd=dest, env=env, check=True)
    return dest


def timed(repo: Path, env: dict, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([str(BIN / "python"), "-m", "rnnlab.workflows.capacity", *args], cwd=repo,
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the QUICK grid (12 experiments)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    grid = (["--quick"] if args.quick else []) + ["--jobs", str(args.jobs)]
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        tmp = Path(tmp)
        env = env_with_xla_cache(cache, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
                                 DVC_NO_ANALYTICS="1")  # every run compiles afresh
        origin, store = tmp / "origin.git", tmp / "store"
        subprocess.run(["git", "clone", "-q", "--bare", str(REPO), str(origin)], check=True)
        single = timed(machine(origin, store, tmp / "single", env), env, *grid)
        shards = [timed(machine(origin, store, tmp / f"shard{k}", env), env, *grid,
                        "--shard", f"{k}/2", "--push", "origin") for k in (1, 2)]
        collect = timed(machine(origin, store, tmp / "collector", env), env,
                        *(["--quick"] if args.quick else []), "--collect", "origin")
        folder = "reports/capacity-quick" if args.quick else "reports/capacity"
        same = all((tmp / "single" / folder / name).read_bytes()
                   == (tmp / "collector" / folder / name).read_bytes()
                   for name in ("summary.json", "curve.csv"))
    name = "QUICK grid" if args.quick else "full grid"
    text = (f"{name}, {args.jobs} workers per machine: one machine {single:.0f} s; two machines "
            f"{max(shards) + collect:.0f} s (shards {shards[0]:.0f} s and {shards[1]:.0f} s, each "
            f"alone on this machine, then collecting {collect:.0f} s); summaries identical: {same}")
    print(text)
    return text


if __name__ == "__main__":
    main()
