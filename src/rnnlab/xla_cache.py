"""XLA's persistent compilation cache, kept within a size: `rnnlab xla-cache`.

rnnlab's TensorFlow processes share one folder of compiled programs (rnnlab.tf_rnn._tf): a stage,
a sweep experiment or a test that builds a training step compiled before loads it instead of
compiling it again. XLA only ever adds to that folder, and a program's key also holds the name
TensorFlow gave the traced function, with a per-process counter in it, so processes that trace
in a different order each time (pytest's workers) add new programs on every run, as does every
new clone with its own .venv (the keys hold the environment's path): a fresh clone's `make test`
wrote 149 programs, 38 MiB, on 8 December; a day of benchmarks and sweeps, gigabytes.

`prune` keeps the most recently used programs while they fit in a size together and removes
all older ones. A removed
program is compiled again when next needed (seconds), to the same program: the results keep
their bits. Only XLA's own files (program_glob, and its temp files left by killed writers) are
ever removed, never anything else in the folder. The Makefile's targets that run TensorFlow
prune first, to XLA_CACHE_MAX_MIB.

Last use: a program's access time where the file system keeps it (relatime updates it on a read
at most once a day), else when it was written.

Nothing here imports TensorFlow, so pruning takes a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Mapping, NamedTuple

DEFAULT_PREFIX = "xla_compile_cache"  # TensorFlow's --tf_xla_persistent_cache_prefix default
DEFAULT_MAX_MIB = 1024
MIB = 1 << 20
STALE_TEMP_SECONDS = 3600  # a temp file this old belongs to a writer that was killed
_FLAG = re.compile(r"--(tf_xla_persistent_cache_directory|tf_xla_persistent_cache_prefix)"
                   r"=(\"[^\"]*\"|'[^']*'|\S*)")


def _flags(environ: Mapping[str, str]) -> dict[str, str]:
    """The cache's two flags in TF_XLA_FLAGS, the last of each winning (as TensorFlow reads
    them), quotes taken off."""
    return {name: value[1:-1] if value[:1] in "\"'" and len(value) > 1 else value
            for name, value in _FLAG.findall(environ.get("TF_XLA_FLAGS", ""))}


def folder(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder rnnlab's TensorFlow processes use as XLA's cache, by the rule
    rnnlab.tf_rnn._tf applies when it imports TensorFlow (tests/test_xla_cache.py checks that the
    two agree): a folder already given in TF_XLA_FLAGS, else RNNLAB_XLA_CACHE (empty: no cache),
    else rnnlab/xla under XDG_CACHE_HOME or ~/.cache. None when the cache is off."""
    env = os.environ if environ is None else environ
    given = _flags(env).get("tf_xla_persistent_cache_directory")
    if given is not None:
        path = given
    elif "RNNLAB_XLA_CACHE" in env:
        path = env["RNNLAB_XLA_CACHE"]
    else:
        base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "rnnlab", "xla")
    return Path(path) if path else None


def program_glob(environ: Mapping[str, str] | None = None) -> str:
    """The names of XLA's finished programs: PREFIX__KEY__KEY__DEVICE.pb (TensorFlow writes each
    to PREFIX...pb<unique>.tmp first, then renames it)."""
    env = os.environ if environ is None else environ
    return f"{_flags(env).get('tf_xla_persistent_cache_prefix') or DEFAULT_PREFIX}__*.pb"


class Program(NamedTuple):
    path: Path
    size: int
    last_use: float


class Pruned(NamedTuple):
    """What `prune` found and did: programs (and bytes) removed and kept, files it could not
    remove, and left-over temp files of killed writers removed."""

    removed: int
    removed_bytes: int
    kept: int
    kept_bytes: int
    failed: int = 0
    stale_temps: int = 0


def programs(cache: Path, pattern: str) -> list[Program]:
    """The regular files matching `pattern` in `cache`, most recently used first; [] if there
    is no such folder. One that another process removes meanwhile is left out."""
    found = []
    for path in cache.glob(pattern):
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            found.append(Program(path, info.st_size, max(info.st_atime, info.st_mtime)))
    return sorted(found, key=lambda p: (p.last_use, p.path.name), reverse=True)


def _remove(path: Path) -> bool:
    """Removes `path`; False if that failed (gone already counts as removed)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def prune(cache: Path, max_bytes: int, dry_run: bool = False,
          pattern: str | None = None) -> Pruned:
    """Keeps the most recently used programs of `cache` while they fit in max_bytes together
    and removes all older ones, least recently used first in that sense; also temp files of
    writers killed more than STALE_TEMP_SECONDS ago. A file it cannot remove is counted in
    `failed` and kept. dry_run: count only. pattern: program_glob()'s by default."""
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    pattern = pattern or program_glob()
    kept = kept_bytes = removed = removed_bytes = failed = 0
    full = False  # from the first program that does not fit on, every older one goes
    for program in programs(cache, pattern):
        full = full or kept_bytes + program.size > max_bytes
        if not full:
            kept, kept_bytes = kept + 1, kept_bytes + program.size
        elif dry_run or _remove(program.path):
            removed, removed_bytes = removed + 1, removed_bytes + program.size
        else:
            failed += 1
    old = time.time() - STALE_TEMP_SECONDS
    temps = [t for t in programs(cache, f"{pattern}*.tmp") if t.last_use < old]
    stale = sum(1 for t in temps if dry_run or _remove(t.path))
    return Pruned(removed, removed_bytes, kept, kept_bytes, failed, stale)


def describe(cache: Path, result: Pruned, max_mib: int, dry_run: bool) -> str:
    """One line: the folder, what it holds, what was (or would be) removed and what failed."""
    held = f"{result.kept} programs, {result.kept_bytes / MIB:.0f} MiB"
    verb = "would remove" if dry_run else "removed"
    line = f"XLA cache {cache}: "
    if result.removed:
        line += (f"{verb} the {result.removed} least recently used programs "
                 f"({result.removed_bytes / MIB:.0f} MiB) to stay within {max_mib} MiB; {held} "
                 "kept")
    else:
        line += f"{held}, within {max_mib} MiB"
    if result.stale_temps:
        line += f"; {verb} {result.stale_temps} temp files of killed runs"
    if result.failed:
        line += f"; could not remove {result.failed} programs (permissions?)"
    return line


HELP = "keep XLA's compilation cache within a size (a second)"
DESCRIPTION = f"""\
Keeps the most recently used of XLA's compiled programs in rnnlab's cache folder while they fit
in --max-mib together and removes the older ones ({DEFAULT_PREFIX}__*.pb files only, and
temp files of runs killed while writing one). The folder is the one rnnlab's TensorFlow
processes use: TF_XLA_FLAGS's --tf_xla_persistent_cache_directory if set, else
RNNLAB_XLA_CACHE, else ~/.cache/rnnlab/xla (XDG_CACHE_HOME's if set). A removed program is
compiled again when a run needs it, to the same program: results keep their bits. The
Makefile's TensorFlow targets run it first (XLA_CACHE_MAX_MIB, default {DEFAULT_MAX_MIB}).

Best run while no other rnnlab run is compiling: TensorFlow checks that a program is there,
then reads it, and fails the run if it went in between.

Takes well under a second."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-mib", type=_non_negative_int, default=DEFAULT_MAX_MIB,
                        metavar="N", help=f"the size to keep, in MiB (default {DEFAULT_MAX_MIB})")
    parser.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    parser.add_argument("--quiet", action="store_true", help="print only when files go")


def _non_negative_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a whole number of MiB >= 0, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    """`rnnlab xla-cache`: prune the cache folder to args.max_mib. 0, also when some files
    could not be removed (said in the line: a make target goes on); 1 if the folder cannot be
    read."""
    cache = folder()
    if cache is None:
        if not args.quiet:
            print("XLA cache: off (RNNLAB_XLA_CACHE is empty, or TF_XLA_FLAGS names no "
                  "folder), nothing to prune")
        return 0
    try:
        result = prune(cache, args.max_mib * MIB, dry_run=args.dry_run)
    except OSError as error:
        print(f"rnnlab xla-cache: error: {cache}: {error}", file=sys.stderr)
        return 1
    if result.removed or result.stale_temps or result.failed or not args.quiet:
        print(describe(cache, result, args.max_mib, args.dry_run))
    return 0
