"""Stage code dependencies (rnnlab.pipeline.code_deps): every stage depends on the fingerprint of
exactly the rnnlab code it runs, DVC re-runs exactly the stages whose code changed, the layers
import only downwards, and the numpy half never loads TensorFlow."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from helpers import REPO, VENV_BIN
from rnnlab.pipeline import code_deps
from rnnlab.pipeline.code_deps import FINGERPRINT_STAGE

SRC = REPO / "src"


def test_dvc_yaml_wires_every_stage_to_its_code_fingerprint(monkeypatch):
    monkeypatch.chdir(REPO)
    assert code_deps.wiring_problems(yaml.safe_load(Path("dvc.yaml").read_text())) == []


def test_the_committed_fingerprints_are_todays_code(monkeypatch):
    """data/code/*.txt as committed (and in dvc.lock) must be what today's code gives, or a
    fresh clone's `dvc repro` would re-run stages (fix: `dvc repro`, then commit)."""
    monkeypatch.chdir(REPO)
    scripts = code_deps.pipeline_scripts(yaml.safe_load(Path("dvc.yaml").read_text()))
    for script in scripts:
        assert Path(code_deps.fingerprint_path(script)).read_text() == \
            code_deps.fingerprint(script), script
    assert sorted(p.as_posix() for p in Path("data/code").glob("*.txt")) == \
        sorted(map(code_deps.fingerprint_path, scripts))


def test_the_committed_dvc_lock_has_todays_code():
    """dvc.lock's hashes of src/rnnlab and stages/ (code_fingerprints' deps) must be today's,
    even for an edit no stage runs (a workflow module): otherwise a fresh clone's `make repro`
    re-runs code_fingerprints and leaves dvc.lock modified (fix: `dvc repro code_fingerprints`,
    then commit dvc.lock)."""
    status = subprocess.run([str(VENV_BIN / "dvc"), "status", "--json", FINGERPRINT_STAGE],
                            cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout) == {}, status.stdout


def test_wiring_mistakes_are_named_with_their_stage(monkeypatch):
    monkeypatch.chdir(REPO)
    text = (REPO / "dvc.yaml").read_text()
    assert "      - data/code/train_sine.txt\n" in text
    broken = yaml.safe_load(text.replace("      - data/code/train_sine.txt\n",
                                         "      - src/rnnlab/training.py\n"))
    assert code_deps.wiring_problems(broken) == [
        "stage train_sine runs stages/train_sine.py but does not depend on "
        "data/code/train_sine.txt",
        "stage train_sine lists src/rnnlab/training.py: code is tracked through its fingerprint"]
    del broken["stages"]["code_fingerprints"]["deps"][0]
    assert code_deps.wiring_problems(broken)[-1] == \
        "stage code_fingerprints does not depend on src/rnnlab"


def test_a_fingerprint_follows_exactly_the_code_its_script_runs(tmp_path, monkeypatch):
    _package(tmp_path, {"src/rnnlab/__init__.py": "", "src/rnnlab/x.py": "X = 1\n",
                        "src/rnnlab/y.py": "Y = 1\n",
                        "stages/a.py": "from rnnlab import x\n",
                        "stages/b.py": "import rnnlab.y\n"})
    monkeypatch.chdir(tmp_path)
    before = {s: code_deps.fingerprint(f"stages/{s}.py") for s in "ab"}
    assert "src/rnnlab/x.py" in before["a"] and "src/rnnlab/y.py" not in before["a"]
    Path("src/rnnlab/x.py").write_text("X = 2\n")
    after = {s: code_deps.fingerprint(f"stages/{s}.py") for s in "ab"}
    assert after["a"] != before["a"] and after["b"] == before["b"]
    Path("src/rnnlab/y.py").write_text("Y = 2\n")  # the md5 DVC records is the text's
    assert code_deps.current_md5("data/code/b.txt") == \
        hashlib.md5(code_deps.fingerprint("stages/b.py").encode()).hexdigest()
    assert code_deps.current_md5("data/code/nosuch.txt") is None


def _package(root: Path, files: dict[str, str]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))


def test_upstream_stages_and_sections():
    dvc_path = REPO / "dvc.yaml"
    assert set(code_deps.upstream_stages(["train_numpy_rnn"], dvc_path)) == {
        "train_numpy_rnn", "data@copy_task", "check_params", "code_fingerprints"}
    assert code_deps.upstream_sections(["train_sine", "train_memory"], dvc_path) == [
        "memory_task", "sine_task", "tf_memory", "tf_model", "tf_sine"]


def test_closure_follows_every_kind_of_import(tmp_path):
    _package(tmp_path / "src", {
        "rnnlab/__init__.py": "",
        "rnnlab/a.py": "import numpy\n",
        "rnnlab/b.py": "def f():\n    from rnnlab.sub import c  # inside a function\n",
        "rnnlab/sub/__init__.py": "",
        "rnnlab/sub/c.py": "from . import d\nfrom .e import thing\n",
        "rnnlab/sub/d.py": "",
        "rnnlab/sub/e.py": "thing = 1\n",
        "rnnlab/unused.py": "",
    })
    (tmp_path / "script.py").write_text("import rnnlab.a\nfrom rnnlab import b\n")
    closure = code_deps.import_closure(tmp_path / "script.py", tmp_path / "src")
    assert {p.relative_to(tmp_path / "src").as_posix() for p in closure} == {
        "rnnlab/__init__.py", "rnnlab/a.py", "rnnlab/b.py", "rnnlab/sub/__init__.py",
        "rnnlab/sub/c.py", "rnnlab/sub/d.py", "rnnlab/sub/e.py"}
    # without the library's imports inside functions: what running the script surely loads
    sure = code_deps.import_closure(tmp_path / "script.py", tmp_path / "src", lazy=False)
    assert {p.relative_to(tmp_path / "src").as_posix() for p in sure} == {
        "rnnlab/__init__.py", "rnnlab/a.py", "rnnlab/b.py"}


def test_the_stages_that_run_tensorflow_are_told_from_their_imports(monkeypatch):
    """The run pool pairs TensorFlow runs with numpy ones (queue.next_run): a numpy stage whose
    library reaches rnnlab.tf_rnn only inside a function it does not call (gradient_flow_copy,
    through trained_models) must not count as one."""
    monkeypatch.chdir(REPO)
    uses = {name: code_deps.uses_tensorflow([name])
            for name in code_deps.stage_scripts(yaml.safe_load(Path("dvc.yaml").read_text()))}
    assert {name for name, yes in uses.items() if yes} == {
        "train_sine", "train_memory", "train_adding", "gradient_flow_memory"}
    assert code_deps.uses_tensorflow(["train_numpy_rnn", "gradient_flow_copy"]) is False
    assert code_deps.uses_tensorflow([]) is True  # every stage


# The layers of rnnlab, top to bottom (rnnlab/__init__.py): a module may import its own layer
# and those below it, never one above.
LAYERS = [
    {"cli", "__main__"}, {"workflows"}, {"pipeline"}, {"numpy_rnn", "tf_rnn"}, {"training"},
    {"initializers"},
    {"errors", "choices"},
]


def _layer(module: str) -> int:
    part = module.split(".")[1] if module.count(".") else ""
    return next((i for i, names in enumerate(LAYERS) if part in names), len(LAYERS))


def _rnnlab_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rnnlab"):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("rnnlab"))


def _modules():
    for path in sorted((SRC / "rnnlab").rglob("*.py")):
        yield ".".join(path.relative_to(SRC).with_suffix("").parts), path


def test_no_module_imports_one_above_it():
    upward = [f"{module} imports {name}" for module, path in _modules()
              for name in _rnnlab_imports(path) if _layer(name) < _layer(module)]
    assert upward == []
    assert not [f"{m} imports {n}" for m, p in _modules() if ".numpy_rnn" in m
                for n in _rnnlab_imports(p) if ".tf_rnn" in n]
    assert not [f"{m} imports {n}" for m, p in _modules() if ".tf_rnn" in m
                for n in _rnnlab_imports(p) if ".numpy_rnn" in n]


def test_the_numpy_half_never_imports_tensorflow():
    for script in ("train_numpy_rnn", "gradcheck", "exploding_gradients", "make_data"):
        for path in code_deps.import_closure(REPO / "stages" / f"{script}.py", SRC):
            tree = ast.parse(path.read_text())
            names = {a.name.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.Import) for a in node.names}
            names |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                      if isinstance(node, ast.ImportFrom)}
            assert not names & {"tensorflow", "keras"}, (script, path)


# Modules of every layer and half: each is touched, the fingerprint stage re-run, and
# `dvc status` must flag exactly the stages whose scripts import it.
TOUCHED = ["src/rnnlab/numpy_rnn/cell.py", "src/rnnlab/tf_rnn/gradient_flow.py",
           "src/rnnlab/pipeline/plotting.py", "src/rnnlab/workflows/queue.py"]


@pytest.mark.slow
def test_touching_a_module_flags_exactly_the_stages_that_import_it(built_project):
    project = built_project
    scripts = code_deps.stage_scripts(yaml.safe_load((REPO / "dvc.yaml").read_text()))
    try:
        for module in TOUCHED:
            path = project.root / module
            text = path.read_text()
            path.write_text(text + "# touched\n")
            try:
                # the fingerprints follow the files as they are now: the module touched last
                # is restored already, so no repro is needed in between
                project.dvc("repro", "code_fingerprints")
                # `dvc status` names each changed stage on a line of its own, ending in ":"
                flagged = {line[:-1] for line in project.dvc("status").stdout.splitlines()
                           if line.endswith(":") and not line[:1].isspace()}
            finally:
                path.write_text(text)
            expected = {name for name, (script, _) in scripts.items()
                        if name != "code_fingerprints" and module in
                        {p.relative_to(REPO).as_posix()
                         for p in code_deps.import_closure(REPO / script, SRC)}}
            assert flagged == expected, module
    finally:
        project.dvc("repro", "code_fingerprints")
    assert "up to date" in project.dvc("status").stdout
