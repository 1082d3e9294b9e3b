"""Which code each DVC stage runs, derived from the source, and the fingerprint DVC tracks.

A stage's code is its script plus every rnnlab module the script imports, transitively,
including imports inside functions and the packages' __init__ files (Python runs them on
import). It is computed from the source with `ast`, never by importing it, so TensorFlow is not
loaded and nothing runs.

DVC does not list those files one by one: every file a stage depends on is a column of
`dvc exp show` (40 source files made the table unreadable). Instead the first stage,
`code_fingerprints`, depends on the folders src/rnnlab and stages and writes one fingerprint
per stage script, data/code/<script>.txt: the md5 of every file that script runs. Each stage
depends on its script's fingerprint, so editing a module re-runs exactly the stages that
import it (the fingerprints of the others come out byte for byte the same, and DVC skips them).

    python -m rnnlab.pipeline.code_deps           # check that dvc.yaml wires every fingerprint
    python -m rnnlab.pipeline.code_deps --write   # write data/code/*.txt (the stage does this)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import sys
from pathlib import Path

import yaml

PACKAGE = "rnnlab"
SOURCE_ROOT = Path("src")
SCRIPTS = Path("stages")
FINGERPRINTS = Path("data/code")
FINGERPRINT_STAGE = "code_fingerprints"
CODE_FOLDERS = ("src/rnnlab", "stages")  # what the fingerprint stage depends on


def module_file(name: str, root: Path = SOURCE_ROOT) -> Path | None:
    """src/rnnlab/a/b.py or src/rnnlab/a/b/__init__.py for module `rnnlab.a.b`, if it exists."""
    base = root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _import_nodes(tree: ast.AST, inside_functions: bool):
    """The import statements of a module: all of them, or only those that run when it is
    imported (not those inside function bodies, which run when the function is called)."""
    if inside_functions:
        yield from (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))
        return
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo += ast.iter_child_nodes(node)


def _imported_names(path: Path, root: Path, inside_functions: bool = True):
    """Every dotted name an import statement in `path` may load (anywhere, or only at import
    time: `_import_nodes`), including `a.b.c` for `from a.b import c` (c may be a
    submodule)."""
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path)), inside_functions):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        else:
            if node.level:  # relative: from .x import y, resolved against this file's package
                package = path.relative_to(root).parent.parts
                base = list(package[:len(package) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def import_closure(script: Path, root: Path = SOURCE_ROOT, lazy: bool = True) -> set[Path]:
    """The rnnlab source files `script` runs when it is executed (packages' __init__ included):
    every file it may import, or with `lazy` off those it surely imports: the library modules'
    imports inside functions left out (the script's own are its main's)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        for name in _imported_names(path, root, inside_functions=lazy or path == script):
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
            entries += (list(entry) if key != "params"
                        else [k for v in entry.values() for k in v or []])
        else:
            entries.append(entry)
    return entries


def stage_scripts(dvc_yaml: dict) -> dict[str, tuple[str, list[str]]]:
    """{stage name: (script path, declared deps)} for every `python stages/...` stage."""
    out = {}
    for name, stage in expand_stages(dvc_yaml).items():
        script = next(w for w in stage["cmd"].split()
                      if w.startswith("stages/") and w.endswith(".py"))
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


def upstream_sections(targets: list[str], dvc_path: Path = Path("dvc.yaml")) -> list[str]:
    """The params.yaml sections these stages and their upstream stages read."""
    return sorted({section for stage in upstream_stages(targets, dvc_path).values()
                   for section in declared(stage, "params") if isinstance(section, str)
                   and section != "params.yaml"})


def uses_tensorflow(targets: list[str], dvc_path: Path = Path("dvc.yaml")) -> bool:
    """True if any of these stages or those upstream runs rnnlab's TensorFlow half: its
    script surely imports a module of rnnlab.tf_rnn (import_closure without lazy imports); all
    stages if `targets` is empty."""
    scripts = stage_scripts(yaml.safe_load(dvc_path.read_text()))
    tf_half = SOURCE_ROOT / PACKAGE / "tf_rnn"
    return any(tf_half in path.parents for name in upstream_stages(targets, dvc_path)
               for path in import_closure(Path(scripts[name][0]), lazy=False))


def fingerprint_path(script: str | Path) -> str:
    """data/code/train_memory.txt for stages/train_memory.py."""
    return (FINGERPRINTS / f"{Path(script).stem}.txt").as_posix()


def fingerprint(script: str | Path, root: Path = SOURCE_ROOT) -> str:
    """The fingerprint of what `script` runs: one `md5  path` line per file, sorted by path."""
    files = sorted({Path(script).as_posix()}
                   | {p.as_posix() for p in import_closure(Path(script), root)})
    lines = [f"{hashlib.md5(Path(f).read_bytes()).hexdigest()}  {f}" for f in files]
    return (f"# the code `python {Path(script).as_posix()}` runs; written by the "
            f"{FINGERPRINT_STAGE} stage\n" + "\n".join(lines) + "\n")


def current_md5(dep: str) -> str | None:
    """The md5 DVC would record for code dep `dep` now: a fingerprint as the fingerprint stage
    would write it from today's code (the file on disk may be older), or, for a project that
    lists code files directly (the interruption tests' small one), the file's own md5."""
    path = Path(dep)
    if path.parent == FINGERPRINTS and path.suffix == ".txt":
        script = SCRIPTS / f"{path.stem}.py"
        if not script.is_file():
            return None
        return hashlib.md5(fingerprint(script).encode()).hexdigest()
    try:
        return hashlib.md5(path.read_bytes()).hexdigest()
    except OSError:
        return None


def is_code_dep(dep: str) -> bool:
    """A stage's code dep: its script's fingerprint, or a code file listed directly."""
    return Path(dep).parent == FINGERPRINTS or dep.startswith(("src/", "stages/"))


def pipeline_scripts(dvc_yaml: dict) -> list[str]:
    """Every stage script dvc.yaml runs, but the fingerprint stage's own."""
    return sorted({script for name, (script, _) in stage_scripts(dvc_yaml).items()
                   if name != FINGERPRINT_STAGE})


def write_fingerprints(dvc_yaml: dict) -> list[str]:
    """data/code/<script>.txt for every stage script; returns the paths written."""
    from rnnlab.pipeline.files import write_text

    paths = []
    for script in pipeline_scripts(dvc_yaml):
        paths.append(fingerprint_path(script))
        write_text(paths[-1], fingerprint(script))
    return paths


def wiring_problems(dvc_yaml: dict) -> list[str]:
    """What dvc.yaml gets wrong about code: a stage without its script's fingerprint, or
    listing code files itself; a fingerprint stage that misses a script or a code folder."""
    problems = []
    stages = expand_stages(dvc_yaml)
    for name, (script, deps) in stage_scripts(dvc_yaml).items():
        if name == FINGERPRINT_STAGE:
            continue
        if fingerprint_path(script) not in deps:
            problems.append(f"stage {name} runs {script} but does not depend on "
                            f"{fingerprint_path(script)}")
        problems += [f"stage {name} lists {dep}: code is tracked through its fingerprint"
                     for dep in deps if dep.startswith(("src/", "stages/"))]
    maker = stages.get(FINGERPRINT_STAGE, {})
    outs = set(declared(maker, "outs"))
    problems += [f"stage {FINGERPRINT_STAGE} does not write {path}"
                 for path in map(fingerprint_path, pipeline_scripts(dvc_yaml))
                 if path not in outs]
    problems += [f"stage {FINGERPRINT_STAGE} does not depend on {folder}"
                 for folder in CODE_FOLDERS if folder not in declared(maker, "deps")]
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="rnnlab deps", description="Check that dvc.yaml tracks each stage's code through "
        "its fingerprint (data/code/<script>.txt), or --write the fingerprints.")
    parser.add_argument("--write", action="store_true",
                        help="write data/code/*.txt from today's code (the first stage does)")
    args = parser.parse_args(argv)
    dvc_yaml = yaml.safe_load(Path("dvc.yaml").read_text())
    if args.write:
        written = write_fingerprints(dvc_yaml)
        print(f"wrote {len(written)} fingerprints to {FINGERPRINTS}/")
        return
    problems = wiring_problems(dvc_yaml)
    for problem in problems:
        print(f"dvc.yaml: {problem}")
    if problems:
        sys.exit(1)
    print("dvc.yaml: every stage depends on the fingerprint of exactly the code it runs")


if __name__ == "__main__":
    main()
