"""The task sequences (the sheet's layouts, rnnlab.pipeline.sequences), and the datasets on disk
with the checks made when a file is loaded (rnnlab.pipeline.datasets, .files)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import yaml

from rnnlab.errors import DataError
from rnnlab.pipeline import sequences as data
from rnnlab.pipeline.datasets import dataset_path, read_dataset, write_dataset
from rnnlab.pipeline.files import atomic_output, load_arrays, save_arrays
from rnnlab.pipeline.params import read_params

from helpers import REPO


def default_params() -> dict:
    return read_params(REPO / "params.yaml")


def test_copy_task_layout_matches_the_sheet():
    inputs, targets = data.copy_task(50, 13, 8, np.random.default_rng(0))
    assert inputs.shape == targets.shape == (50, 27) and inputs.dtype == np.uint8
    symbols = inputs[:, :13]
    assert symbols.max() <= 7
    assert np.all(inputs[:, 13] == 8)           # delimiter after the L symbols
    assert np.all(inputs[:, 14:] == 9)          # then L blanks
    assert np.all(targets[:, :13] == 9)         # target: blanks while reading
    assert np.all(targets[:, 13] == 8)          # the delimiter echoed
    assert np.array_equal(targets[:, 14:], symbols)  # then the symbols, in order


def test_long_copy_task_layout_is_arjovskys_with_the_delimiter_echoed():
    T = 100  # Arjovsky et al.: 10 symbols, T - 1 blanks, delimiter, 10 blanks: T + 20 steps
    inputs, targets = data.copy_task(30, 10, 8, np.random.default_rng(0),
                                     blank_separation_len=T - 1)
    assert inputs.shape == targets.shape == (30, T + 20)
    symbols = inputs[:, :10]
    assert np.all(inputs[:, 10:T + 9] == 9) and np.all(inputs[:, T + 9] == 8)
    assert np.all(inputs[:, T + 10:] == 9)
    assert np.all(targets[:, :T + 9] == 9) and np.all(targets[:, T + 9] == 8)
    assert np.array_equal(targets[:, T + 10:], symbols)
    # the same draws as the sheet's layout: B changes where the symbols go, not which
    sheet, _ = data.copy_task(30, 10, 8, np.random.default_rng(0))
    assert np.array_equal(sheet[:, :10], symbols)


def test_memory_task_layout_matches_the_sheet():
    L, B = 8, 5
    inputs, targets = data.memory_task(40, L, B, 8, np.random.default_rng(1))
    assert inputs.shape == (40, 2 * L + B + 1)
    symbols = inputs[:, :L]
    assert symbols.max() <= 7
    assert np.all(inputs[:, L:L + B] == 8)      # blank = 8 in part 2
    assert np.all(inputs[:, L + B] == 9)        # delimiter = 9 in part 2
    assert np.all(inputs[:, L + B + 1:] == 8)
    assert np.all(targets[:, :L + B + 1] == 8)
    assert np.array_equal(targets[:, L + B + 1:], symbols)


def test_sine_curves_follow_the_generator_definition():
    curves = data.sine_curves(200, 101, 0.15, np.random.default_rng(2))
    assert curves.shape == (200, 101) and curves.dtype == np.float32
    assert np.abs(curves).max() <= 1.0
    # Consecutive samples of sin(x/f) with f in [1, 2) and step 0.15 differ by at most 0.15.
    assert np.abs(np.diff(curves, axis=1)).max() <= 0.15 + 1e-6


@pytest.fixture
def copy_params():
    params = default_params()["copy_task"]
    params.update(n_train=30, n_test=10, to_remember_len=4)
    return params


def test_dataset_round_trip_is_reproducible(tmp_path, copy_params):
    write_dataset("copy_task", copy_params, tmp_path / "a")
    write_dataset("copy_task", copy_params, tmp_path / "b")
    for split in ("train", "test"):
        a, b = (dataset_path("copy_task", split, tmp_path / r).read_bytes() for r in "ab")
        assert hashlib.md5(a).digest() == hashlib.md5(b).digest()  # bit-identical files
    train = read_dataset("copy_task", "train", copy_params, tmp_path / "a")
    assert train["inputs"].shape == (30, 9)


def test_resizing_the_train_set_keeps_the_test_set(tmp_path, copy_params):
    write_dataset("copy_task", copy_params, tmp_path / "a")
    write_dataset("copy_task", dict(copy_params, n_train=99), tmp_path / "b")
    a, b = (read_dataset("copy_task", "test", p, tmp_path / r)
            for p, r in ((copy_params, "a"), (dict(copy_params, n_train=99), "b")))
    assert np.array_equal(a["inputs"], b["inputs"])


def test_missing_file_names_the_file_and_the_fix(tmp_path, copy_params):
    with pytest.raises(DataError, match=r"data/copy_task/train.npz: file is missing; rebuild it "
                                        r"with `dvc repro -f data@copy_task`"):
        read_dataset("copy_task", "train", copy_params, tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_files_are_reported(tmp_path, copy_params, damage):
    write_dataset("copy_task", copy_params, tmp_path)
    path = dataset_path("copy_task", "train", tmp_path)
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[: len(blob) // 2], "garbage": b"\x00garbage" * 50,
                      "empty": b""}[damage])
    with pytest.raises(DataError, match=r"train.npz: file is truncated or corrupt.*dvc repro -f"):
        read_dataset("copy_task", "train", copy_params, tmp_path)


def test_params_mismatch_names_the_key(tmp_path, copy_params):
    write_dataset("copy_task", copy_params, tmp_path)
    with pytest.raises(DataError,
                       match=r"made with copy_task.to_remember_len=4 but params.yaml says 5"):
        read_dataset("copy_task", "train", dict(copy_params, to_remember_len=5), tmp_path)


def test_foreign_and_wrong_kind_files_are_refused(tmp_path, copy_params):
    path = dataset_path("copy_task", "train", tmp_path)
    path.parent.mkdir(parents=True)
    np.savez(path, inputs=np.zeros((30, 9), np.uint8))  # a plain npz, no rnnlab record
    with pytest.raises(DataError, match="not an rnnlab file"):
        read_dataset("copy_task", "train", copy_params, tmp_path)
    save_arrays(path, {"curves": np.zeros((2, 3), np.float32)}, {"kind": "sine", "params": {}})
    with pytest.raises(DataError, match="holds 'sine' data, expected 'copy_task'"):
        read_dataset("copy_task", "train", copy_params, tmp_path)


def test_shape_dtype_and_range_are_checked(tmp_path, copy_params):
    path = dataset_path("copy_task", "train", tmp_path)
    good = data.copy_task(30, 4, 8, np.random.default_rng(0))
    meta = {"kind": "copy_task", "params": copy_params}
    save_arrays(path, {"inputs": good[0][:, :5], "targets": good[1]}, meta)
    with pytest.raises(DataError, match=r"array 'inputs' has shape \(30, 5\)"):
        read_dataset("copy_task", "train", copy_params, tmp_path)
    save_arrays(path, {"inputs": good[0].astype(np.int64), "targets": good[1]}, meta)
    with pytest.raises(DataError, match="array 'inputs' has dtype int64"):
        read_dataset("copy_task", "train", copy_params, tmp_path)
    save_arrays(path, {"inputs": good[0] + 20, "targets": good[1]}, meta)
    with pytest.raises(DataError, match="beyond vocab_size"):
        read_dataset("copy_task", "train", copy_params, tmp_path)


def test_pickled_arrays_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.array('{"format_version": 1}'),
             payload=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_arrays(path, "somewhere")


def test_atomic_output_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_params_file_round_trip_through_yaml_keeps_types():
    params = default_params()
    assert yaml.safe_load(yaml.safe_dump(params)) == params


ADDING = {"seed": 0, "seq_len": 20, "n_train": 400, "n_test": 300}


def test_the_adding_problem_checks_out_against_its_definition(tmp_path):
    write_dataset("adding", ADDING, tmp_path)
    test = read_dataset("adding", "test", ADDING, tmp_path)
    inputs, targets = test["inputs"], test["targets"]
    assert inputs.shape == (300, 20, 2) and inputs.dtype == np.float32
    assert targets.shape == (300,) and targets.dtype == np.float32
    values, markers = inputs[..., 0], inputs[..., 1]
    assert 0 <= values.min() and values.max() <= 1
    assert np.all(markers.sum(axis=1) == 2) and set(np.unique(markers)) == {0.0, 1.0}
    first, second = (np.argmax(m, axis=1) for m in (markers, markers[:, ::-1]))
    assert np.all(first < 10) and np.all(19 - second >= 10)  # one marker in each half
    np.testing.assert_allclose(targets, (values * markers).sum(axis=1), rtol=1e-6)
    # always predicting 1 (the memoryless answer) scores about Var(U1 + U2) = 1/6
    assert abs(np.mean((1 - targets) ** 2) - 1 / 6) < 0.03


@pytest.mark.parametrize("damage, message", [
    (lambda a: a["inputs"].__setitem__((0, slice(None), 1), 0.0), "exactly 2 markers"),
    (lambda a: a["inputs"].__setitem__((1, 0, 0), 1.5), r"values outside \[0, 1\]"),
    (lambda a: a["targets"].__setitem__(2, a["targets"][2] + 0.5), "not the sum"),
])
def test_a_damaged_adding_file_is_refused_naming_the_file(tmp_path, damage, message):
    write_dataset("adding", ADDING, tmp_path)
    path = dataset_path("adding", "train", tmp_path)
    arrays, meta = load_arrays(path, "data@adding")
    arrays = {k: v.copy() for k, v in arrays.items()}
    damage(arrays)
    save_arrays(path, arrays, meta)
    with pytest.raises(DataError, match=message) as info:
        read_dataset("adding", "train", ADDING, tmp_path)
    assert "data/adding/train.npz" in str(info.value)
