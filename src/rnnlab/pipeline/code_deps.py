"""Which rnnlab modules each DVC stage runs, from the code, checked against dvc.yaml's deps.

A stage's code dependencies are its script plus every rnnlab module the script imports,
transitively, including imports inside functions and the packages' __init__ files (Python runs
them on import). They are computed from the source with `ast`, never by importing it, so
TensorFlow is not loaded and nothing runs.

    python -m rnnlab.pipeline.code_deps           # report what dvc.yaml lacks or has extra
    python -m rnnlab.pipeline.code_deps --fix     # rewrite the src/rnnlab lines of dvc.yaml
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import yaml

PACKAGE = "rnnlab"
SOURCE_ROOT = Path("src")
_STAGE_HEADER = re.compile(r"^  (\w+):\s*$")  # a stage's name, indented under `stages:`
_SRC_DEP = re.compile(r"^(\s+)- (src/rnnlab/\S+)\s*$")
_SCRIPT_DEP = re.compile(r"^(\s+)- (stages/\S+\.py)\s*$")


def module_file(name: str, root: Path = SOURCE_ROOT) -> Path | None:
    """src/rnnlab/a/b.py or src/rnnlab/a/b/__init__.py for module `rnnlab.a.b`, if it exists."""
    base = root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imported_names(path: Path, root: Path):
    """Every dotted name an import statement anywhere in `path` may load, including `a.b.c` for
    `from a.b import c` (c may be a submodule)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y, resolved against this file's package
                package = path.relative_to(root).parent.parts
                base = list(package[:len(package) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def import_closure(script: Path, root: Path = SOURCE_ROOT) -> set[Path]:
    """The rnnlab source files `script` runs when it is executed (packages' __init__ included)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in _imported_names(todo.pop(), root):
            if name.split(".")[0] != PACKAGE:
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
                path = module_file(".".join(parts[:i]), root)
                if path is not None and path not in seen:
                    seen.add(path)
                    todo.append(path)
    return seen


def _substitute(value, key: str, item: dict):
    """`${key}` and `${item.x}` of a foreach stage filled in (strings, lists and dicts)."""
    if isinstance(value, str):
        value = value.replace("${key}", key)
        return re.sub(r"\$\{item\.(\w+)\}", lambda m: str(item[m.group(1)]), value)
    if isinstance(value, list):
        return [_substitute(v, key, item) for v in value]
    if isinstance(value, dict):
        return {_substitute(k, key, item): _substitute(v, key, item) for k, v in value.items()}
    return value


def expand_stages(dvc_yaml: dict) -> dict[str, dict]:
    """The stages of dvc.yaml as DVC runs them: a foreach stage `data` becomes `data@copy_task`,
    ... with its `${key}` and `${item.x}` filled in."""
    stages = {}
    for name, stage in dvc_yaml["stages"].items():
        if "foreach" not in stage:
            stages[name] = stage
            continue
        for key, item in stage["foreach"].items():
            stages[f"{name}@{key}"] = _substitute(stage["do"], key, item)
    return stages


def declared(stage: dict, key: str) -> list[str]:
    """The paths (or params sections) a stage lists under `key`."""
    entries = []
    for entry in stage.get(key, []):
        if isinstance(entry, dict):  # `- path: {cache: false}` or `- params.yaml: [keys]`
            entries += list(entry) if key != "params" else [k for v in entry.values() for k in v or []]
        else:
            entries.append(entry)
    return entries


def stage_scripts(dvc_yaml: dict) -> dict[str, tuple[str, list[str]]]:
    """{stage name: (script path, declared deps)} for every `python stages/...` stage."""
    out = {}
    for name, stage in expand_stages(dvc_yaml).items():
        script = next(w for w in stage["cmd"].split() if w.startswith("stages/") and w.endswith(".py"))
        out[name] = (script, declared(stage, "deps"))
    return out


def upstream_stages(targets: list[str], dvc_path: Path = Path("dvc.yaml")) -> dict[str, dict]:
    """These stages and every stage upstream of them (whose outputs they depend on), by name;
    all stages if `targets` is empty."""
    stages = expand_stages(yaml.safe_load(dvc_path.read_text()))
    made_by = {out: name for name, stage in stages.items()
               for key in ("outs", "metrics", "plots") for out in declared(stage, key)}
    todo, seen = list(targets or stages), {}
    while todo:
        name = todo.pop()
        if name not in seen:
            seen[name] = stages[name]
            todo += [made_by[dep] for dep in declared(stages[name], "deps") if dep in made_by]
    return seen


def upstream_code(targets: list[str], dvc_path: Path = Path("dvc.yaml")) -> list[str]:
    """The code deps (src/ and stages/ files) of these stages and of every stage upstream."""
    return sorted({dep for stage in upstream_stages(targets, dvc_path).values()
                   for dep in declared(stage, "deps") if dep.startswith(("src/", "stages/"))})


def upstream_sections(targets: list[str], dvc_path: Path = Path("dvc.yaml")) -> list[str]:
    """The params.yaml sections these stages and their upstream stages read."""
    return sorted({section for stage in upstream_stages(targets, dvc_path).values()
                   for section in declared(stage, "params") if isinstance(section, str)
                   and section != "params.yaml"})


def missing_and_extra(dvc_path: Path = Path("dvc.yaml"),
                      root: Path = SOURCE_ROOT) -> dict[str, tuple[list[str], list[str]]]:
    """{stage: (code it runs that its deps lack, src/rnnlab deps it does not run)}, only for
    stages where either list is non-empty."""
    problems = {}
    for name, (script, deps) in stage_scripts(yaml.safe_load(dvc_path.read_text())).items():
        needed = {script} | {p.as_posix() for p in import_closure(Path(script), root)}
        declared_code = {d for d in deps if d.startswith(("src/", "stages/"))}
        missing, extra = sorted(needed - declared_code), sorted(declared_code - needed)
        if missing or extra:
            problems[name] = (missing, extra)
    return problems


def rewrite_src_deps(text: str, expected: dict[str, list[str]]) -> str:
    """dvc.yaml text with each stage's `- src/rnnlab/...` dep lines replaced by `expected`
    (placed where the old ones began, else after the stage's script line); the rest as is."""
    lines, stage_of, stage = text.splitlines(), [], None
    for line in lines:
        header = _STAGE_HEADER.match(line)
        stage = header.group(1) if header else stage
        stage_of.append(stage)
    has_src = {stage for line, stage in zip(lines, stage_of) if _SRC_DEP.match(line)}
    out, placed = [], set()
    for line, stage in zip(lines, stage_of):
        dep, script = _SRC_DEP.match(line), _SCRIPT_DEP.match(line)
        if dep and stage in expected:
            if stage not in placed:
                out += [f"{dep.group(1)}- {path}" for path in expected[stage]]
                placed.add(stage)
            continue
        out.append(line)
        if script and stage in expected and stage not in has_src | placed:
            out += [f"{script.group(1)}- {path}" for path in expected[stage]]
            placed.add(stage)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="rewrite dvc.yaml's src/rnnlab deps")
    args = parser.parse_args(argv)
    dvc_path = Path("dvc.yaml")
    if args.fix:
        scripts = stage_scripts(yaml.safe_load(dvc_path.read_text()))
        expected = {name.split("@")[0]: sorted(p.as_posix() for p in import_closure(Path(script)))
                    for name, (script, _) in scripts.items()}  # data@copy_task -> data
        dvc_path.write_text(rewrite_src_deps(dvc_path.read_text(), expected))
    problems = missing_and_extra(dvc_path)
    for stage, (missing, extra) in problems.items():
        for path in missing:
            print(f"dvc.yaml: stage {stage} runs {path} but does not depend on it")
        for path in extra:
            print(f"dvc.yaml: stage {stage} depends on {path} but never runs it")
    if problems:
        sys.exit(1)
    print("dvc.yaml: every stage depends on exactly the code it runs")


if __name__ == "__main__":
    main()
