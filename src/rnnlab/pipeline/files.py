"""Safe, atomic, reproducible file I/O for every stage output.

- Every output is written to a temporary file beside it, fsync'ed, renamed into place and its
  folder fsync'ed, so an interrupted or killed stage, or a power loss, leaves the previous
  file or the new one, never a partial or empty one.
- Arrays go to .npz files written byte-for-byte reproducibly (fixed zip timestamps), so the
  same data gives the same DVC hash; they are loaded with `allow_pickle=False`.
- Datasets and models carry a format version and the params that generated them; loading
  checks both and turns any problem into a `DataError` that names the file and the fix.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnnlab.errors import DataError

FORMAT_VERSION = 1
META_KEY = "__meta__"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path in the same folder; rename it to `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed earlier run
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        _fsync_file(tmp)  # the bytes on disk before the name points at them
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # and the rename itself, so a power loss cannot undo it
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """fsync a folder's entry list (where the OS allows opening a folder; Linux does)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the file itself is synced
        pass
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_png(path: str | Path, fig) -> None:
    """Save a matplotlib figure as PNG atomically (metadata fixed, so bytes are reproducible)."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write arrays plus a JSON `meta` record to an .npz file, reproducibly and atomically."""
    payload = dict(arrays)
    payload[META_KEY] = np.array(json.dumps({"format_version": FORMAT_VERSION, **meta},
                                            sort_keys=True))
    with atomic_output(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(payload):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.require(payload[name], requirements="C"),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue())


def load_arrays(path: str | Path, stage: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an .npz written by `save_arrays`. Any problem -> DataError naming the file."""
    path = Path(path)
    fix = f"rebuild it with `dvc repro -f {stage}`"
    if not path.is_file():
        raise DataError(f"{path}: file is missing; {fix}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as exc:  # zip, header and pickle errors all mean the same to the user
        raise DataError(f"{path}: file is truncated or corrupt ({type(exc).__name__}); "
                        f"{fix}") from None
    try:
        meta = json.loads(arrays.pop(META_KEY).item())
    except (KeyError, ValueError, TypeError):
        raise DataError(f"{path}: not an rnnlab file (no format record); {fix}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: format version {meta.get('format_version')!r}, expected "
                        f"{FORMAT_VERSION}; {fix}")
    return arrays, meta


def load_checked(path: str | Path, *, stage: str, kind: str, section: str,
                 params: dict[str, Any], check: Callable[[dict[str, np.ndarray]], str | None]):
    """Load a dataset or model and verify its kind, its generating params and its arrays.

    Args:
        stage: the DVC stage that writes the file (named in the fix).
        kind: the expected `meta["kind"]`.
        section: the params.yaml section the file was generated from.
        params: that section's current values; they must equal the recorded ones.
        check: returns a description of what is wrong with the arrays, or None.
    """
    arrays, meta = load_arrays(path, stage)
    fix = f"rebuild it with `dvc repro -f {stage}`"
    if meta.get("kind") != kind:
        raise DataError(f"{path}: holds {meta.get('kind')!r} data, expected {kind!r}; {fix}")
    recorded = meta.get("params", {})
    for key, value in params.items():
        if recorded.get(key) != value:
            raise DataError(f"{path}: was made with {section}.{key}={recorded.get(key)!r} but "
                            f"params.yaml says {value!r}; {fix}")
    problem = check(arrays)
    if problem:
        raise DataError(f"{path}: {problem}; {fix}")
    return arrays, meta


def expect_arrays(arrays: dict[str, np.ndarray], spec: dict[str, tuple[str, tuple]]) -> str | None:
    """Check names, dtypes and shapes: spec = {name: (dtype, shape)}, None in a shape = any."""
    for name, (dtype, shape) in spec.items():
        if name not in arrays:
            return f"array '{name}' is missing"
        array = arrays[name]
        if array.dtype != np.dtype(dtype):
            return f"array '{name}' has dtype {array.dtype}, expected {dtype}"
        if len(array.shape) != len(shape) or any(
                want is not None and got != want
                for got, want in zip(array.shape, shape, strict=True)):
            return f"array '{name}' has shape {array.shape}, expected {shape}"
    return None


def write_csv(path: str | Path, columns: dict[str, Any]) -> None:
    """Write equal-length columns as CSV (DVC plot data); floats with 6 significant digits.
    Columns of unequal length are a bug in the caller: ValueError, nothing written."""
    names = list(columns)
    lengths = {name: len(columns[name]) for name in names}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{path}: columns of unequal length {lengths}")
    rows = zip(*(columns[name] for name in names), strict=True)
    cell = lambda v: f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)  # noqa: E731
    lines = [",".join(names)] + [",".join(cell(v) for v in row) for row in rows]
    write_text(path, "\n".join(lines) + "\n")
