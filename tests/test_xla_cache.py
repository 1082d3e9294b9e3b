"""rnnlab.xla_cache: XLA's compilation cache pruned to a size, least recently used first, in the
folder rnnlab's TensorFlow processes really use; and `rnnlab xla-cache`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import cli, xla_cache

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
    time 500, and two files that are not XLA's."""
    folder = tmp_path / "xla"
    folder.mkdir()
    for k in range(1, 6):
        make_program(folder, f"p{k}", 100 * KIB, 1000.0 * k)
    make_program(folder, "big", 300 * KIB, 500.0)
    (folder / "notes.txt").write_text("mine")
    os.utime(folder / "notes.txt", (1.0, 1.0))
    (folder / "xla_compile_cache__tmp").write_bytes(b"\0" * KIB)  # not a finished .pb
    return folder


def names(folder: Path) -> set[str]:
    return {p.name.split("__")[1] if p.name.endswith(".pb") else p.name
            for p in folder.iterdir()}


def test_prune_keeps_the_most_recently_used_within_the_size_and_touches_nothing_else(cache):
    result = xla_cache.prune(cache, 350 * KIB)
    assert result == xla_cache.Pruned(removed=3, removed_bytes=500 * KIB, kept=3,
                                      kept_bytes=300 * KIB)
    assert names(cache) == {"p3", "p4", "p5", "notes.txt", "xla_compile_cache__tmp"}


def test_a_program_read_lately_counts_as_used_though_it_was_written_long_ago(cache):
    old = cache / "xla_compile_cache__p1__0__XLA_CPU_JIT.pb"
    os.utime(old, (9000.0, 1000.0))  # read at 9000, written at 1000
    xla_cache.prune(cache, 100 * KIB)
    assert names(cache) == {"p1", "notes.txt", "xla_compile_cache__tmp"}


def test_a_dry_run_counts_the_same_and_removes_nothing(cache):
    before = names(cache)
    assert xla_cache.prune(cache, 0, dry_run=True) == xla_cache.Pruned(6, 800 * KIB, 0, 0)
    assert names(cache) == before
    assert xla_cache.prune(cache, 0) == xla_cache.Pruned(6, 800 * KIB, 0, 0)
    assert names(cache) == {"notes.txt", "xla_compile_cache__tmp"}


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
    assert cli.main(["xla-cache", "--max-mb", "0", "--dry-run"]) == 0
    assert capsys.readouterr().out == (
        f"XLA cache {cache}: would remove the 6 least recently used programs (1 MiB) to stay "
        "within 0 MiB; 0 programs, 0 MiB kept\n")
    assert len(list(cache.glob(xla_cache.PROGRAM_GLOB))) == 6
    assert cli.main(["xla-cache", "--max-mb", "0", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith(f"XLA cache {cache}: removed the 6 ")
    assert not list(cache.glob(xla_cache.PROGRAM_GLOB))
    monkeypatch.setenv("RNNLAB_XLA_CACHE", "")
    assert cli.main(["xla-cache"]) == 0
    assert "off" in capsys.readouterr().out


def test_the_command_refuses_a_size_that_is_not_a_whole_number(capsys):
    for bad in ("-1", "1.5", "lots"):
        with pytest.raises(SystemExit) as stop:
            cli.main(["xla-cache", "--max-mb", bad])
        assert stop.value.code == 2
        assert f"argument --max-mb: expected a whole number of MiB >= 0, got '{bad}'" in \
            capsys.readouterr().err


def test_every_make_target_that_runs_tensorflow_prunes_first():
    makefile = (Path(__file__).parents[1] / "Makefile").read_text(encoding="utf-8")
    for target in ("repro", "test", "test-fast", "bench", "compare", "capacity", "ablation",
                   "papers"):
        recipe = makefile.split(f"\n{target}: setup\n", 1)[1].split("\n\n", 1)[0]
        assert recipe.splitlines()[0] == "\t@$(PRUNE_XLA_CACHE)", target
    assert "PRUNE_XLA_CACHE  := $(BIN)/rnnlab xla-cache --quiet --max-mb $(XLA_CACHE_MAX_MB)" \
        in makefile
