"""requirements/lock.txt agrees with pyproject.toml, and it is what `make setup` installs.

Fast and offline: it reads the files and runs tools/check_lock.py (stdlib + pip's packaging).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_lock", ROOT / "tools" / "check_lock.py")
check_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_lock)

LOCK_TEXT = (ROOT / check_lock.LOCK_NAME).read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
BUILD_IN = (ROOT / "requirements" / "build.in").read_text(encoding="utf-8")


def pins(text: str = LOCK_TEXT) -> dict[str, list[tuple[str, object]]]:
    out: dict[str, list] = {}
    for name, version, marker, _ in check_lock.parse_lock(text):
        out.setdefault(name, []).append((version, marker))
    return out


def test_the_lock_agrees_with_pyproject():
    check_lock.check(PYPROJECT, LOCK_TEXT, BUILD_IN)


def test_every_pin_has_hashes_and_the_header_names_its_command():
    assert all(hashes for *_, hashes in check_lock.parse_lock(LOCK_TEXT))
    header = [line for line in LOCK_TEXT.splitlines()[:4] if line.startswith("#")]
    assert any("make lock" in line for line in header)
    assert any(line.lstrip("# ").startswith("uv pip compile pyproject.toml") for line in header)


def test_tensorflow_is_one_release_on_both_machines():
    locked = pins()
    (cpu,) = locked["tensorflow-cpu"]
    (other,) = locked["tensorflow"]
    assert cpu[0] == other[0]
    for machine, wanted in (("x86_64", "tensorflow-cpu"), ("aarch64", "tensorflow")):
        for env in check_lock.environments():
            if env["platform_machine"] == machine:
                applying = [name for name in ("tensorflow", "tensorflow-cpu")
                            if locked[name][0][1].evaluate(env)]
                assert applying == [wanted]


def _drop_entry(text: str, name: str) -> str:
    """The lock without `name`'s entry (its pin line, hash lines and comments)."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if re.match(rf"^{re.escape(name)}==", line):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return "".join(out)


@pytest.mark.parametrize(("lock", "named"), [
    (lambda t: re.sub(r"^numpy==\S+", "numpy==1.25.0", t, flags=re.M), "numpy==1.25.0"),
    (lambda t: _drop_entry(t, "tensorflow"), "tensorflow "),
    (lambda t: _drop_entry(t, "pytest-xdist"), "pytest-xdist"),
    (lambda t: _drop_entry(t, "setuptools"), "setuptools"),
    (lambda t: re.sub(r"^(dvclive==\S+) \\\n(\s+--hash=\S+ \\\n)*\s+--hash=\S+\n", r"\1\n", t,
                      flags=re.M), "dvclive"),
    (lambda t: t.replace("tensorflow==", "tensorflow>=", 1), "tensorflow>="),
])
def test_a_lock_that_disagrees_is_refused_naming_the_package(lock, named):
    broken = lock(LOCK_TEXT)
    assert broken != LOCK_TEXT
    with pytest.raises(check_lock.LockError, match=re.escape(named)):
        check_lock.check(PYPROJECT, broken, BUILD_IN)


def test_a_new_dependency_of_pyproject_must_be_locked():
    pyproject = {**PYPROJECT, "project": {**PYPROJECT["project"]}}
    pyproject["project"]["dependencies"] = [*PYPROJECT["project"]["dependencies"], "scipy>=1.11"]
    with pytest.raises(check_lock.LockError, match="scipy"):
        check_lock.check(pyproject, LOCK_TEXT, BUILD_IN)
    pyproject["project"]["dependencies"] = ["numpy>=99"]
    with pytest.raises(check_lock.LockError, match=r"numpy==\S+ does not satisfy numpy>=99"):
        check_lock.check(pyproject, LOCK_TEXT, BUILD_IN)


def test_setup_installs_exactly_the_lock():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^LOCK\s*:=\s*{re.escape(check_lock.LOCK_NAME)}$", makefile, re.M)
    recipe = makefile.split("$(STAMP): pyproject.toml $(LOCK)\n", 1)[1].split("\n\n", 1)[0]
    steps = [line.strip() for line in recipe.splitlines()]
    install = [s for s in steps if "pip install" in s or "$(UV_INTO_VENV)" in s]
    assert install == [
        "$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/lock-uv.txt",
        "$(UV_INTO_VENV) sync --python $(BIN)/python --require-hashes --compile-bytecode $(LOCK)",
        "$(UV_INTO_VENV) install --python $(BIN)/python --no-deps --no-build-isolation -e .",
    ]
    assert "UV_INTO_VENV := $(BIN)/uv pip --quiet --no-config" in makefile
    assert steps.index("@$(BIN)/python tools/check_lock.py") < steps.index(install[0])
    assert "@$(BIN)/python tools/check_lock.py --entry uv > $(VENV)/lock-uv.txt" in steps
    assert steps.index("@$(BIN)/python tools/check_lock.py --installed") > steps.index(install[-1])
    assert check_lock.entry(LOCK_TEXT, "uv").startswith("uv==")
    lock_recipe = makefile.split("\nlock:\n", 1)[1].split("\n\n", 1)[0]
    extras = re.findall(r"--extra (\S+)", lock_recipe)
    assert sorted(extras) == sorted(check_lock.EXTRAS)
    assert "pyproject.toml requirements/build.in" in lock_recipe


def test_make_setup_stops_with_one_line_naming_the_package(tmp_path):
    (tmp_path / "tools").mkdir()
    (tmp_path / "requirements").mkdir()
    shutil.copy(ROOT / "tools" / "check_lock.py", tmp_path / "tools")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "requirements" / "build.in", tmp_path / "requirements")
    broken = re.sub(r"^matplotlib==\S+", "matplotlib==3.7.0", LOCK_TEXT, flags=re.M)
    (tmp_path / check_lock.LOCK_NAME).write_text(broken, encoding="utf-8")
    run = subprocess.run([sys.executable, "tools/check_lock.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stdout == ""
    assert len(run.stderr.splitlines()) == 1
    assert "matplotlib==3.7.0 does not satisfy matplotlib>=3.8" in run.stderr
