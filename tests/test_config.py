"""params.yaml validation: unit tests of the rules, and bad files run through a real `dvc repro`."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

from rnnlab.config import SCHEMA, load_config, read_params, validate
from rnnlab.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def default_params() -> dict:
    return read_params(REPO / "params.yaml")


def _set(section, key, value):
    def mutate(params):
        params[section][key] = value
    return mutate


def _delete(section, key=None):
    def mutate(params):
        if key is None:
            del params[section]
        else:
            del params[section][key]
    return mutate


def _rename(section, key, new_key):
    def mutate(params):
        params[section][new_key] = params[section].pop(key)
    return mutate


def _rename_section(section, new_name):
    def mutate(params):
        params[new_name] = params.pop(section)
    return mutate


# (id, mutation, text the one-line message must contain). Each section, each kind of rule.
BAD_VARIANTS = [
    ("gradcheck-negative-seed", _set("gradcheck", "seed", -1), "gradcheck.seed"),
    ("gradcheck-zero-hidden", _set("gradcheck", "hidden", 0), "gradcheck.hidden"),
    ("gradcheck-string-batch", _set("gradcheck", "batch_size", "three"), "gradcheck.batch_size"),
    ("exploding-zero-clip", _set("exploding_gradients", "clip_norm", 0), "exploding_gradients.clip_norm"),
    ("exploding-float-length", _set("exploding_gradients", "max_seq_len", 1.5), "exploding_gradients.max_seq_len"),
    ("exploding-negative-lr", _set("exploding_gradients", "learning_rate", -0.1), "exploding_gradients.learning_rate"),
    ("copy-zero-remember", _set("copy_task", "to_remember_len", 0), "copy_task.to_remember_len"),
    ("copy-vocab-too-small", _set("copy_task", "vocab_size", 2), "copy_task.vocab_size"),
    ("copy-empty-test-set", _set("copy_task", "n_test", 0), "copy_task.n_test"),
    ("copy-typo-key", _rename("copy_task", "to_remember_len", "to_remeber_len"), "did you mean 'to_remember_len'"),
    ("numpy-negative-hidden", _set("numpy_rnn", "hidden", -5), "numpy_rnn.hidden"),
    ("numpy-unknown-init", _set("numpy_rnn", "init", "xavier"), "numpy_rnn.init"),
    ("numpy-unknown-optimizer", _set("numpy_rnn", "optimizer", "adamw"), "numpy_rnn.optimizer"),
    ("numpy-zero-lr", _set("numpy_rnn", "learning_rate", 0), "numpy_rnn.learning_rate"),
    ("numpy-negative-clip", _set("numpy_rnn", "clip_norm", -1.0), "numpy_rnn.clip_norm"),
    ("numpy-batch-over-train", _set("numpy_rnn", "batch_size", 10**7), "numpy_rnn.batch_size"),
    ("numpy-missing-steps", _delete("numpy_rnn", "steps"), "numpy_rnn.steps"),
    ("sine-given-over-length", _set("sine_task", "n_given", 1000), "sine_task.n_given"),
    ("sine-string-step", _set("sine_task", "step", "fast"), "sine_task.step"),
    ("sine-plot-over-test", _set("sine_task", "n_plot", 10**6), "sine_task.n_plot"),
    ("memory-negative-blanks", _set("memory_task", "blank_separation_len", -1), "memory_task.blank_separation_len"),
    ("memory-vocab-too-small", _set("memory_task", "vocab_size", 1), "memory_task.vocab_size"),
    ("tf-unknown-cell", _set("tf_model", "cell", "gru"), "tf_model.cell"),
    ("tf-string-flag", _set("tf_model", "match_params", "yes"), "tf_model.match_params"),
    ("tf-bool-hidden", _set("tf_model", "hidden", True), "tf_model.hidden"),
    ("tf-typo-key", _rename("tf_model", "hidden", "hiden"), "did you mean 'hidden'"),
    ("tf-sine-zero-epochs", _set("tf_sine", "epochs", 0), "tf_sine.epochs"),
    ("tf-memory-nan-lr", _set("tf_memory", "learning_rate", float("nan")), "tf_memory.learning_rate"),
    ("typo-section", _rename_section("numpy_rnn", "numpy_rnnn"), "did you mean 'numpy_rnn'"),
    ("missing-section", _delete("tf_memory"), "tf_memory"),
]


def test_default_params_are_valid_and_cover_the_schema():
    cfg = validate(default_params())
    assert set(cfg) == set(SCHEMA)
    assert cfg["copy_task"]["to_remember_len"] == 13 and cfg["numpy_rnn"]["hidden"] == 50
    assert cfg["memory_task"]["to_remember_len"] == 8
    assert cfg["memory_task"]["blank_separation_len"] == 5
    assert cfg["tf_model"]["cell"] == "lstm"


@pytest.mark.parametrize("name, mutate, expected", BAD_VARIANTS, ids=[v[0] for v in BAD_VARIANTS])
def test_bad_params_name_the_key(name, mutate, expected):
    params = default_params()
    mutate(params)
    with pytest.raises(ConfigError) as info:
        validate(params)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message  # one readable line


def test_messages_list_the_allowed_values():
    params = default_params()
    params["tf_model"]["cell"] = "gru"
    with pytest.raises(ConfigError, match=r"tf_model.cell: got 'gru'; expected one of 'rnn', 'lstm'"):
        validate(params)
    params = default_params()
    params["numpy_rnn"]["hidden"] = 0
    with pytest.raises(ConfigError, match=r"numpy_rnn.hidden: got 0; expected an integer >= 1"):
        validate(params)


def test_integers_are_accepted_where_numbers_are_expected():
    params = default_params()
    params["numpy_rnn"]["learning_rate"] = 1
    params["numpy_rnn"]["clip_norm"] = 0
    cfg = validate(params)
    assert cfg["numpy_rnn"]["learning_rate"] == 1.0 and isinstance(cfg["numpy_rnn"]["clip_norm"], float)


def test_exponent_numbers_without_a_dot_are_numbers(tmp_path):
    # Plain PyYAML (YAML 1.1) reads `1e-3` as the string '1e-3', and DVC writes a float set by
    # `dvc exp run -S` back as `1e+38`; the params loader reads both as numbers (YAML 1.2).
    text = yaml.safe_dump(default_params())
    assert yaml.safe_load("x: 1e-3")["x"] == "1e-3"
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("learning_rate: 0.001", "learning_rate: 1e-3", 1))
    params = read_params(path)
    assert params["exploding_gradients"]["learning_rate"] == 0.001
    assert isinstance(params["exploding_gradients"]["learning_rate"], float)
    assert validate(params)["exploding_gradients"]["learning_rate"] == 0.001
    for written, number in (("1e38", 1e38), ("1e+38", 1e38), ("-2E+5", -2e5), ("1.5e3", 1500.0)):
        path.write_text(f"x: {written}\n")
        assert read_params(path)["x"] == number and isinstance(read_params(path)["x"], float)
    # Everything else resolves as in YAML 1.1.
    path.write_text("a: .inf\nb: 1_000\nc: 0x1f\nd: yes\ne: 1e3x\nf: '1e-3'\n")
    assert read_params(path) == {"a": float("inf"), "b": 1000, "c": 31, "d": True, "e": "1e3x",
                                 "f": "1e-3"}
    # A quoted exponent is a string, and a string is not a number.
    path.write_text(text.replace("learning_rate: 0.001", "learning_rate: '1e-3'", 1))
    params = read_params(path)
    assert params["exploding_gradients"]["learning_rate"] == "1e-3"
    with pytest.raises(ConfigError, match="exploding_gradients.learning_rate: got '1e-3'"):
        validate(params)
    params["exploding_gradients"]["learning_rate"] = "1e-3x"
    with pytest.raises(ConfigError, match="exploding_gradients.learning_rate: got '1e-3x'"):
        validate(params)


def test_set_overrides_are_read_like_params_yaml():
    # `python -m rnnlab.capacity -S section.key=value` reads the value with the params loader
    # and hands it to `dvc exp run -S` in a form DVC reads back as the same value.
    import argparse

    from rnnlab.capacity import _key_value
    from rnnlab.dvc_cli import set_args

    assert _key_value("tf_memory.learning_rate=1e-3") == ("tf_memory.learning_rate", 0.001)
    assert _key_value("tf_memory.learning_rate=1e38") == ("tf_memory.learning_rate", 1e38)
    assert _key_value("tf_model.cell=rnn") == ("tf_model.cell", "rnn")
    assert _key_value("tf_model.match_params=false") == ("tf_model.match_params", False)
    assert _key_value("tf_memory.epochs=15") == ("tf_memory.epochs", 15)
    with pytest.raises(argparse.ArgumentTypeError, match="-S tf_model.cell: not valid YAML"):
        _key_value("tf_model.cell=[rnn")
    assert set_args({"a.lr": 1e38, "a.flag": False, "a.cell": "rnn"}) == [
        "-S", "a.lr=1e+38", "-S", "a.flag=false", "-S", "a.cell=rnn"]


def test_unsafe_yaml_and_broken_yaml_are_refused(tmp_path):
    unsafe = tmp_path / "params.yaml"
    unsafe.write_text("numpy_rnn: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_params(unsafe)
    broken = tmp_path / "broken.yaml"
    broken.write_text("numpy_rnn: [hidden: 1\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        read_params(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        read_params(tmp_path / "absent.yaml")


def test_load_config_returns_attribute_sections(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(default_params()))
    cfg = load_config(["numpy_rnn", "tf_model"], path)
    assert cfg.numpy_rnn.hidden == 50 and cfg.tf_model.match_params is True


# ---- the same bad files through a real `dvc repro` --------------------------------------

def _output_hashes(root: Path) -> dict[str, str]:
    hashes = {}
    for folder in ("data", "models", "metrics", "plots"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                hashes[str(path.relative_to(root))] = hashlib.md5(path.read_bytes()).hexdigest()
    return hashes


@pytest.mark.slow
@pytest.mark.parametrize("name, mutate, expected", BAD_VARIANTS, ids=[v[0] for v in BAD_VARIANTS])
def test_dvc_repro_refuses_bad_params_and_loses_nothing(built_project, name, mutate, expected):
    project = built_project
    before = _output_hashes(project.root)
    params = copy.deepcopy(project.params())
    mutate(params)
    project.write_params(params)
    try:
        proc = project.dvc("repro", check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        assert expected in output, output
        assert "Traceback" not in output
        # Nothing was added or altered; DVC removed only the outputs of the stage it started.
        after = _output_hashes(project.root)
        assert set(after) <= set(before)
        assert all(after[p] == before[p] for p in after)
    finally:
        project.git("checkout", "--", "params.yaml")
        project.dvc("checkout", "--force")
    assert _output_hashes(project.root) == before
