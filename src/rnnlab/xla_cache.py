"""XLA's persistent compilation cache, kept within a size: `rnnlab xla-cache`.

rnnlab's TensorFlow processes share one folder of compiled programs (rnnlab.tf_rnn._tf): a stage,
a sweep experiment or a test that builds a training step compiled before loads it instead of
compiling it again. XLA only ever adds to that folder, and a program's key also holds the name
TensorFlow gave the traced function, with a per-process counter in it, so processes that trace
in a different order each time (pytest's workers) add new programs on every run: some 150 per
`make test`, hundreds of MiB a day.

`prune` removes the least recently used programs until the rest fit in a size. A removed
program is compiled again when next needed (seconds), to the same program: the results keep
their bits. Only XLA's own files (PROGRAM_GLOB) are ever removed, never anything else in the
folder. The Makefile's targets that run TensorFlow prune first, to XLA_CACHE_MAX_MB.

Last use: a program's access time where the file system keeps it (relatime updates it on a read
at most once a day), else when it was written.

Nothing here imports TensorFlow, so pruning takes a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Mapping, NamedTuple

PROGRAM_GLOB = "xla_compile_cache__*.pb"  # the files TensorFlow's XLA cache writes
DEFAULT_MAX_MB = 1024
MIB = 1 << 20
_FOLDER_FLAG = re.compile(r"--tf_xla_persistent_cache_directory=(\S*)")


def folder(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder rnnlab's TensorFlow processes use as XLA's cache, by the rule
    rnnlab.tf_rnn._tf applies when it imports TensorFlow (tests/test_xla_cache.py checks that the
    two agree): a folder already given in TF_XLA_FLAGS, else RNNLAB_XLA_CACHE (empty: no cache),
    else rnnlab/xla under XDG_CACHE_HOME or ~/.cache. None when the cache is off."""
    env = os.environ if environ is None else environ
    given = _FOLDER_FLAG.search(env.get("TF_XLA_FLAGS", ""))
    if given:
        path = given.group(1)
    elif "RNNLAB_XLA_CACHE" in env:
        path = env["RNNLAB_XLA_CACHE"]
    else:
        base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "rnnlab", "xla")
    return Path(path) if path else None


class Program(NamedTuple):
    path: Path
    size: int
    last_use: float


class Pruned(NamedTuple):
    """What `prune` found and did: programs (and bytes) removed and kept."""

    removed: int
    removed_bytes: int
    kept: int
    kept_bytes: int


def programs(cache: Path) -> list[Program]:
    """XLA's programs in `cache`, most recently used first; [] if there is no such folder.
    A program another process removes meanwhile is left out."""
    found = []
    for path in cache.glob(PROGRAM_GLOB):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        found.append(Program(path, stat.st_size, max(stat.st_atime, stat.st_mtime)))
    return sorted(found, key=lambda p: (p.last_use, p.path.name), reverse=True)


def prune(cache: Path, max_bytes: int, dry_run: bool = False) -> Pruned:
    """Removes the least recently used programs of `cache` until the others take at most
    max_bytes (the most recent ones kept whole; a program larger than the budget alone goes).
    dry_run: count only."""
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    kept = kept_bytes = removed = removed_bytes = 0
    for program in programs(cache):
        if kept_bytes + program.size <= max_bytes:
            kept, kept_bytes = kept + 1, kept_bytes + program.size
            continue
        if not dry_run:
            program.path.unlink(missing_ok=True)  # a concurrent prune may have removed it
        removed, removed_bytes = removed + 1, removed_bytes + program.size
    return Pruned(removed, removed_bytes, kept, kept_bytes)


def describe(cache: Path, result: Pruned, max_mb: int, dry_run: bool) -> str:
    """One line: the folder, what it holds, what was (or would be) removed."""
    held = f"{result.kept} programs, {result.kept_bytes / MIB:.0f} MiB"
    if not result.removed:
        return f"XLA cache {cache}: {held}, within {max_mb} MiB"
    verb = "would remove" if dry_run else "removed"
    return (f"XLA cache {cache}: {verb} the {result.removed} least recently used programs "
            f"({result.removed_bytes / MIB:.0f} MiB) to stay within {max_mb} MiB; {held} kept")


HELP = "keep XLA's compilation cache within a size (a second)"
DESCRIPTION = f"""\
Removes the least recently used of XLA's compiled programs from rnnlab's cache folder
({PROGRAM_GLOB} files only) until the rest take at most --max-mb. The folder is the one
rnnlab's TensorFlow processes use: TF_XLA_FLAGS's --tf_xla_persistent_cache_directory if set,
else RNNLAB_XLA_CACHE, else ~/.cache/rnnlab/xla (XDG_CACHE_HOME's if set). A removed program is
compiled again when a run needs it; results keep their bits. The Makefile's TensorFlow targets
run it first (XLA_CACHE_MAX_MB, default {DEFAULT_MAX_MB}).

Takes well under a second."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-mb", type=_non_negative_int, default=DEFAULT_MAX_MB,
                        metavar="N", help=f"the size to keep, in MiB (default {DEFAULT_MAX_MB})")
    parser.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    parser.add_argument("--quiet", action="store_true", help="print only when programs go")


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of MiB >= 0, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    """`rnnlab xla-cache`: prune the cache folder to args.max_mb; 0, or 1 on an OS error."""
    cache = folder()
    if cache is None:
        if not args.quiet:
            print("XLA cache: off (RNNLAB_XLA_CACHE is empty), nothing to prune")
        return 0
    try:
        result = prune(cache, args.max_mb * MIB, dry_run=args.dry_run)
    except OSError as error:
        print(f"rnnlab xla-cache: error: {cache}: {error}", file=sys.stderr)
        return 1
    if result.removed or not args.quiet:
        print(describe(cache, result, args.max_mb, args.dry_run))
    return 0
