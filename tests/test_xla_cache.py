"""rnnlab.xla_cache: XLA's compilation cache pruned to a size, least recently used first, in the
folder rnnlab's TensorFlow processes really use; and `rnnlab xla-cache`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab import cli, xla_cache
from rnnlab.xla_cache import MIB

KIB = 1024


def make_program(folder: Path, name: str, size: int, last_use: float) -> Path:
    """A file named as XLA names its programs, `size` bytes, last used at `last_use`."""
    path = folder / f"xla_compile_cache__{name}__0__XLA_CPU_JIT.pb"
    path.write_bytes(b"\0" * size)
    os.utime(path, (last_use, last_use))
    return path


@pytest.fixture()
def cache(tmp_path):
    """Five programs of 100 KiB used at times 1000..5000 (p1 the oldest), a larger one used at
    time 500; and what must stay: a file that is not XLA's, a folder with a program's name, and
    the temp file of a program being written."""
    folder = tmp_path / "xla"
    folder.mkdir()
    for k in range(1, 6):
        make_program(folder, f"p{k}", 100 * KIB, 1000.0 * k)
    make_program(folder, "big", 300 * KIB, 500.0)
    (folder / "notes.txt").write_text("mine")
    os.utime(folder / "notes.txt", (1.0, 1.0))
    (folder / "xla_compile_cache__p6__0__XLA_CPU_JIT.pb").mkdir()  # not a file: never removed
    temp = folder / f"{PROGRAM}host-1-2-3.tmp"  # TensorFlow's temp name while it writes one
    temp.write_bytes(b"\0" * KIB)
    os.utime(temp, (time.time() - 10,) * 2)  # being written now
    return folder


PROGRAM = "xla_compile_cache__p7__0__XLA_CPU_JIT.pb"
KEEP = {"notes.txt", "p6", f"{PROGRAM}host-1-2-3.tmp"}


def names(folder: Path) -> set[str]:
    return {p.name.split("__")[1] if p.name.endswith(".pb") else p.name
            for p in folder.iterdir()}


def prune(folder, max_bytes, **options):
    return xla_cache.prune(folder, max_bytes, pattern="xla_compile_cache__*.pb", **options)


def test_prune_keeps_the_most_recently_used_within_the_size_and_touches_nothing_else(cache):
    result = prune(cache, 350 * KIB)
    assert result == xla_cache.Pruned(removed=3, removed_bytes=500 * KIB, kept=3,
                                      kept_bytes=300 * KIB)
    assert names(cache) == {"p3", "p4", "p5"} | KEEP


def test_every_program_older_than_the_first_that_does_not_fit_goes(cache):
    """Least recently used first: a small old program does not stay where a newer one went."""
    make_program(cache, "small", 10 * KIB, 100.0)  # the oldest of all
    prune(cache, 250 * KIB)
    assert names(cache) == {"p4", "p5"} | KEEP


def test_a_program_read_lately_counts_as_used_though_it_was_written_long_ago(cache):
    old = cache / "xla_compile_cache__p1__0__XLA_CPU_JIT.pb"
    os.utime(old, (9000.0, 1000.0))  # read at 9000, written at 1000
    prune(cache, 100 * KIB)
    assert names(cache) == {"p1"} | KEEP


def test_a_dry_run_counts_the_same_and_removes_nothing(cache):
    before = names(cache)
    assert prune(cache, 0, dry_run=True) == xla_cache.Pruned(6, 800 * KIB, 0, 0)
    assert names(cache) == before
    assert prune(cache, 0) == xla_cache.Pruned(6, 800 * KIB, 0, 0)
    assert names(cache) == KEEP


def test_a_temp_file_left_by_a_killed_writer_goes_after_an_hour(cache):
    temp = cache / f"{PROGRAM}host-1-2-3.tmp"
    os.utime(temp, (time.time() - 3601,) * 2)
    assert prune(cache, MIB, dry_run=True).stale_temps == 1 and temp.exists()
    assert prune(cache, MIB) == xla_cache.Pruned(0, 0, 6, 800 * KIB, stale_temps=1)
    assert not temp.exists()


def test_a_program_that_cannot_be_removed_is_counted_and_the_rest_still_go(cache, monkeypatch):
    stuck = cache / "xla_compile_cache__p2__0__XLA_CPU_JIT.pb"
    real_unlink = Path.unlink

    def unlink(path, missing_ok=False):
        if path == stuck:
            raise PermissionError(13, "Permission denied")
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    result = prune(cache, 0)
    assert (result.removed, result.failed) == (5, 1)
    assert names(cache) == {"p2"} | KEEP


@pytest.mark.parametrize("flags, expected", [
    ("--tf_xla_persistent_cache_directory=/a --tf_xla_persistent_cache_directory=/b", "/b"),
    ('--tf_xla_persistent_cache_directory="/a b" --tf_xla_auto_jit=0', "/a b"),
    ("--tf_xla_persistent_cache_directory='/c'", "/c"),
    ("--tf_xla_persistent_cache_directory=", None),
])
def test_tf_xla_flags_are_read_as_tensorflow_reads_them(flags, expected):
    got = xla_cache.folder({"TF_XLA_FLAGS": flags, "RNNLAB_XLA_CACHE": "/not-this"})
    assert (None if got is None else str(got)) == expected


def test_a_prefix_in_tf_xla_flags_names_the_programs():
    assert xla_cache.program_glob({}) == "xla_compile_cache__*.pb"
    assert xla_cache.program_glob(
        {"TF_XLA_FLAGS": "--tf_xla_persistent_cache_prefix=mine"}) == "mine__*.pb"


def test_no_folder_is_an_empty_cache_and_a_negative_size_is_refused(tmp_path):
    assert xla_cache.prune(tmp_path / "none", 0) == xla_cache.Pruned(0, 0, 0, 0)
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        xla_cache.prune(tmp_path, -1)


@pytest.mark.parametrize("environ", [
    {"RNNLAB_XLA_CACHE": "/somewhere/xla"},
    {"RNNLAB_XLA_CACHE": ""},                                # the cache off
    {"XDG_CACHE_HOME": "/xdg"},
    {"XDG_CACHE_HOME": "", "HOME": "/home/someone"},
    {"HOME": "/home/someone"},
])
def test_the_folder_is_the_one_rnnlab_tensorflow_processes_use(monkeypatch, environ):
    """The same rule as rnnlab.tf_rnn._tf's, which sets the folder when it imports TensorFlow."""
    from rnnlab.tf_rnn import _tf

    for name in ("RNNLAB_XLA_CACHE", "XDG_CACHE_HOME", "TF_XLA_FLAGS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    flag = _tf._xla_cache_flag()
    expected = flag.split("=", 1)[1] if flag else None
    got = xla_cache.folder()
    assert (None if got is None else str(got)) == expected


CHILD = """
import os
import rnnlab.tf_rnn._tf
from rnnlab import xla_cache
print(os.environ["TF_XLA_FLAGS"])
print(xla_cache.folder())
"""


def test_a_folder_already_in_tf_xla_flags_wins_in_both(tmp_path):
    """_tf keeps a folder TF_XLA_FLAGS names over RNNLAB_XLA_CACHE; so does folder()."""
    env = {**os.environ, "RNNLAB_XLA_CACHE": str(tmp_path / "not-this"),
           "TF_XLA_FLAGS": f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={tmp_path}"}
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          check=True, env=env)
    flags, folder = done.stdout.splitlines()[-2:]
    assert f"--tf_xla_persistent_cache_directory={tmp_path}" in flags.split()
    assert "not-this" not in flags
    assert folder == str(tmp_path)


def test_the_command_prunes_the_folder_and_says_so_in_one_line(cache, monkeypatch, capsys):
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.setenv("RNNLAB_XLA_CACHE", str(cache))
    assert cli.main(["xla-cache", "--quiet"]) == 0  # 800 KiB, within 1024 MiB: silent
    assert capsys.readouterr().out == ""
    assert cli.main(["xla-cache", "--max-mib", "0", "--dry-run"]) == 0
    assert capsys.readouterr().out == (
        f"XLA cache {cache}: would remove the 6 least recently used programs (1 MiB) to stay "
        "within 0 MiB; 0 programs, 0 MiB kept\n")
    assert names(cache) == {"p1", "p2", "p3", "p4", "p5", "big"} | KEEP
    assert cli.main(["xla-cache", "--max-mib", "0", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith(f"XLA cache {cache}: removed the 6 ")
    assert names(cache) == KEEP
    monkeypatch.setenv("RNNLAB_XLA_CACHE", "")
    assert cli.main(["xla-cache"]) == 0
    assert "off" in capsys.readouterr().out


def test_the_command_refuses_a_size_that_is_not_a_whole_number(capsys):
    for bad in ("-1", "1.5", "lots", "\u0663"):  # the last: an Arabic-Indic digit three
        with pytest.raises(SystemExit) as stop:
            cli.main(["xla-cache", "--max-mib", bad])
        assert stop.value.code == 2
        assert f"argument --max-mib: expected a whole number of MiB >= 0, got '{bad}'" in \
            capsys.readouterr().err


def test_every_make_target_that_runs_tensorflow_prunes_first():
    makefile = (Path(__file__).parents[1] / "Makefile").read_text(encoding="utf-8")
    for target in ("repro", "test", "test-fast", "bench", "compare", "capacity", "ablation",
                   "papers"):
        assert f"\n{target}: setup prune-xla-cache\n" in makefile, target
    recipe = makefile.split("\nprune-xla-cache: setup\n", 1)[1].split("\n\n", 1)[0]
    assert recipe == "\t@$(BIN)/rnnlab xla-cache --quiet --max-mib $(XLA_CACHE_MAX_MIB)"
