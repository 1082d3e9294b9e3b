"""Stage code dependencies (rnnlab.pipeline.code_deps): dvc.yaml lists exactly the rnnlab code
each stage runs, the layers import only downwards, and the numpy half never loads TensorFlow."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from helpers import REPO, VENV_BIN
from rnnlab.pipeline import code_deps

SRC = REPO / "src"


def test_dvc_yaml_deps_are_exactly_the_code_each_stage_runs(monkeypatch):
    monkeypatch.chdir(REPO)
    problems = code_deps.missing_and_extra()
    report = [f"stage {stage}: missing {missing}, not run {extra}"
              for stage, (missing, extra) in problems.items()]
    assert not problems, "\n".join(report) + "\n(fix: python -m rnnlab.pipeline.code_deps --fix)"


def test_a_missing_dep_is_named_with_its_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    text = (REPO / "dvc.yaml").read_text()
    broken = tmp_path / "dvc.yaml"
    line = "      - src/rnnlab/training.py\n"
    first = [header for header in re.findall(r"^  (\w+):\n", text[:text.index(line)], re.M)][-1]
    broken.write_text(text.replace(line, "", 1))  # gone from the first stage that lists it
    problems = code_deps.missing_and_extra(broken)
    assert problems == {first: (["src/rnnlab/training.py"], [])}
    # --fix puts it back, and leaves every other line as it was.
    expected = {name.split("@")[0]: sorted(p.as_posix() for p in code_deps.import_closure(Path(script)))
                for name, (script, _) in code_deps.stage_scripts(yaml.safe_load(text)).items()}
    assert code_deps.rewrite_src_deps(broken.read_text(), expected) == text


def _package(root: Path, files: dict[str, str]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))


def test_upstream_stages_sections_and_code():
    dvc_path = REPO / "dvc.yaml"
    assert set(code_deps.upstream_stages(["train_numpy_rnn"], dvc_path)) == {
        "train_numpy_rnn", "data@copy_task", "check_params"}
    assert code_deps.upstream_sections(["train_sine", "train_memory"], dvc_path) == [
        "memory_task", "sine_task", "tf_memory", "tf_model", "tf_sine"]
    code = code_deps.upstream_code(["train_numpy_rnn"], dvc_path)
    assert "stages/make_data.py" in code and "src/rnnlab/numpy_rnn/cell.py" in code
    assert not [path for path in code if "tf_rnn" in path]


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


# The layers of rnnlab, top to bottom (rnnlab/__init__.py): a module may import its own layer
# and those below it, never one above.
LAYERS = [
    {"workflows"}, {"pipeline"}, {"numpy_rnn", "tf_rnn"}, {"training"}, {"initializers"},
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


TOUCH_ALL = """
import json, sys
from pathlib import Path
from dvc.repo import Repo

repo, flagged = Repo("."), {}
for path in sorted(Path("src/rnnlab").rglob("*.py")):
    text = path.read_text()
    path.write_text(text + "# touched\\n")
    try:
        flagged[path.as_posix()] = sorted(name.split(":")[-1] for name in repo.status())
    finally:
        path.write_text(text)
json.dump(flagged, sys.stdout)
"""


@pytest.mark.slow
def test_touching_a_module_flags_exactly_the_stages_that_import_it(built_project):
    """In a reproduced clone: append a comment to each module, ask `dvc status`, restore."""
    out = built_project.run(str(VENV_BIN / "python"), "-c", TOUCH_ALL).stdout
    flagged = json.loads(out)
    scripts = code_deps.stage_scripts(yaml.safe_load((REPO / "dvc.yaml").read_text()))
    for module, stages in flagged.items():
        expected = set()
        for name, (script, _) in scripts.items():
            closure = code_deps.import_closure(REPO / script, SRC)
            if module in {p.relative_to(REPO).as_posix() for p in closure}:
                expected.add(name)
        assert set(stages) == expected, module
    assert len(flagged) == len(list((SRC / "rnnlab").rglob("*.py")))
    assert "up to date" in built_project.dvc("status").stdout
