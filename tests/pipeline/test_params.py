"""params.yaml as typed sections (rnnlab.pipeline.params): every kind of rule, renamed keys and
values, YAML number parsing and unsafe YAML. (A few bad files also go through a real
`dvc repro` in test_pipeline_e2e.py.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from rnnlab.pipeline.params import SECTIONS, load_params, read_params, validate
from rnnlab.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


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
    ("exploding-zero-clip", _set("exploding_gradients", "clip_norm", 0),
     "exploding_gradients.clip_norm"),
    ("exploding-float-length", _set("exploding_gradients", "max_seq_len", 1.5),
     "exploding_gradients.max_seq_len"),
    ("exploding-negative-lr", _set("exploding_gradients", "learning_rate", -0.1),
     "exploding_gradients.learning_rate"),
    ("copy-zero-remember", _set("copy_task", "to_remember_len", 0), "copy_task.to_remember_len"),
    ("copy-vocab-too-small", _set("copy_task", "vocab_size", 2), "copy_task.vocab_size"),
    ("copy-empty-test-set", _set("copy_task", "n_test", 0), "copy_task.n_test"),
    ("copy-typo-key", _rename("copy_task", "to_remember_len", "to_remeber_len"),
     "did you mean 'to_remember_len'"),
    ("numpy-old-random-init", _set("numpy_rnn", "init", "random"),
     "'random' was renamed: did you mean 'permutation'"),
    ("numpy-negative-hidden", _set("numpy_rnn", "hidden", -5), "numpy_rnn.hidden"),
    ("numpy-unknown-init", _set("numpy_rnn", "init", "xavier"), "numpy_rnn.init"),
    ("numpy-unknown-optimizer", _set("numpy_rnn", "optimizer", "adamw"), "numpy_rnn.optimizer"),
    ("numpy-zero-lr", _set("numpy_rnn", "learning_rate", 0), "numpy_rnn.learning_rate"),
    ("numpy-negative-clip", _set("numpy_rnn", "clip_norm", -1.0), "numpy_rnn.clip_norm"),
    ("numpy-batch-over-train", _set("numpy_rnn", "batch_size", 10**7), "numpy_rnn.batch_size"),
    ("numpy-missing-steps", _delete("numpy_rnn", "steps"), "numpy_rnn.steps"),
    ("sine-given-over-length", _set("sine_task", "n_given", 1000), "sine_task.n_given"),
    ("sine-string-spacing", _set("sine_task", "x_spacing", "fast"), "sine_task.x_spacing"),
    ("sine-old-step-key", _rename("sine_task", "x_spacing", "step"),
     "sine_task.step: renamed; did you mean 'x_spacing'"),
    ("sine-plot-over-test", _set("sine_task", "n_plot", 10**6), "sine_task.n_plot"),
    ("memory-negative-blanks", _set("memory_task", "blank_separation_len", -1),
     "memory_task.blank_separation_len"),
    ("memory-vocab-too-small", _set("memory_task", "vocab_size", 1), "memory_task.vocab_size"),
    ("tf-unknown-cell", _set("tf_model", "cell", "lsmt"), "tf_model.cell"),
    ("tf-unknown-variant", _set("tf_model", "lstm_variant", "no_forget"),
     "tf_model.lstm_variant: got 'no_forget'; expected one of 'vanilla', 'no_forget_gate'"),
    ("tf-variant-of-a-gru", lambda p: p["tf_model"].update(cell="gru", lstm_variant="coupled"),
     "tf_model.lstm_variant: got 'coupled', but tf_model.cell is 'gru'"),
    ("tf-forget-bias-of-an-rnn", lambda p: p["tf_model"].update(cell="rnn", lstm_forget_bias=0),
     "tf_model.lstm_forget_bias: got 0.0, but tf_model.cell is 'rnn'"),
    ("tf-forget-bias-without-forget-gate",
     lambda p: p["tf_model"].update(lstm_variant="no_forget_gate", lstm_forget_bias=0),
     "tf_model.lstm_forget_bias: got 0.0, but tf_model.lstm_variant is 'no_forget_gate'"),
    ("tf-gru-hidden-zero", _set("tf_model", "gru_hidden", 0), "tf_model.gru_hidden: got 0"),
    ("adding-too-short", _set("adding_task", "seq_len", 1),
     "adding_task.seq_len: got 1; expected an integer >= 2"),
    ("adding-batch-over-train", _set("tf_adding", "batch_size", 20000),
     "tf_adding.batch_size: got 20000; expected at most adding_task.n_train (10000)"),
    ("tf-unknown-rnn-hidden", _set("tf_model", "rnn_hidden", "same"), "tf_model.rnn_hidden"),
    ("tf-bool-hidden", _set("tf_model", "lstm_hidden", True), "tf_model.lstm_hidden"),
    ("tf-typo-key", _rename("tf_model", "lstm_hidden", "lstm_hiden"), "did you mean 'lstm_hidden'"),
    ("tf-old-hidden-key", _rename("tf_model", "lstm_hidden", "hidden"),
     "tf_model.hidden: renamed; did you mean 'lstm_hidden'"),
    ("tf-old-init-value", _set("tf_model", "rnn_init", "random"), "did you mean 'orthogonal'"),
    ("tf-sine-zero-epochs", _set("tf_sine", "epochs", 0), "tf_sine.epochs"),
    ("tf-memory-nan-lr", _set("tf_memory", "learning_rate", float("nan")),
     "tf_memory.learning_rate"),
    ("typo-section", _rename_section("numpy_rnn", "numpy_rnnn"), "did you mean 'numpy_rnn'"),
    ("missing-section", _delete("tf_memory"), "tf_memory"),
]


def test_default_params_are_valid_typed_and_frozen():
    cfg = validate(default_params())
    assert list(cfg) == list(SECTIONS) == list(default_params())  # params.yaml's order
    assert cfg["copy_task"].to_remember_len == 13 and cfg["numpy_rnn"].hidden == 50
    assert cfg["memory_task"].to_remember_len == 8 and cfg["memory_task"].blank_separation_len == 5
    assert cfg["tf_model"].cell == "lstm" and cfg["tf_model"].rnn_hidden == "matched"
    assert cfg["numpy_rnn"].init == "permutation"
    for name, section in cfg.items():
        assert type(section) is SECTIONS[name]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg["numpy_rnn"].hidden = 3


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
    params["tf_model"]["cell"] = "gruu"
    with pytest.raises(ConfigError, match=r"tf_model.cell: got 'gruu'; expected one of 'lstm', "
                                          r"'rnn', 'gru' \(did you mean 'gru'\?\)$"):
        validate(params)
    params = default_params()
    params["numpy_rnn"]["init"] = "random"  # the old name: refused, never silently aliased
    with pytest.raises(ConfigError) as info:
        validate(params)
    assert str(info.value) == (
        "numpy_rnn.init: got 'random'; expected one of 'gaussian', 'identity', 'orthogonal', "
        "'permutation' ('random' was renamed: did you mean 'permutation' (the random "
        "permutation it meant) or 'gaussian' (the sheet's random init)?)")
    params = default_params()
    params["tf_model"]["rnn_hidden"] = 0
    with pytest.raises(ConfigError, match=r"tf_model.rnn_hidden: got 0; expected an integer >= 1 "
                                          r"or 'matched'"):
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
    assert cfg["numpy_rnn"].learning_rate == 1.0 and isinstance(cfg["numpy_rnn"].clip_norm, float)


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
    assert validate(params)["exploding_gradients"].learning_rate == 0.001
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
    # `python -m rnnlab.workflows.capacity -S section.key=value` reads the value with the params
    # loader and hands it to DVC's `exp run -S` in a form DVC reads back as the same value.
    import argparse

    from rnnlab.workflows.dvc_commands import key_value, set_values

    assert key_value("tf_memory.learning_rate=1e-3") == ("tf_memory.learning_rate", 0.001)
    assert key_value("tf_memory.learning_rate=1e38") == ("tf_memory.learning_rate", 1e38)
    assert key_value("tf_model.cell=rnn") == ("tf_model.cell", "rnn")
    assert key_value("tf_model.rnn_hidden=matched") == ("tf_model.rnn_hidden", "matched")
    assert key_value("a.flag=false") == ("a.flag", False)
    assert key_value("tf_memory.epochs=15") == ("tf_memory.epochs", 15)
    with pytest.raises(argparse.ArgumentTypeError, match="-S tf_model.cell: not valid YAML"):
        key_value("tf_model.cell=[rnn")
    assert set_values({"a.lr": 1e38, "a.flag": False, "a.cell": "rnn"}) == [
        "a.lr=1e+38", "a.flag=false", "a.cell=rnn"]


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


def test_load_params_returns_the_sections_asked_for(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(default_params()))
    numpy_rnn, tf_model = load_params("numpy_rnn", "tf_model", path=path)
    assert numpy_rnn.hidden == 50 and tf_model.lstm_hidden == 96


def test_every_mistake_is_reported_in_one_run():
    params = default_params()
    params["numpy_rnn"]["hidden"] = 0
    params["tf_model"]["cel"] = "lstm"
    params["sine_task"]["n_plot"] = 10**6
    del params["tf_memory"]["epochs"]
    with pytest.raises(ConfigError) as info:
        validate(params)
    lines = str(info.value).splitlines()
    assert lines[0] == "params.yaml has 4 mistakes:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "numpy_rnn.hidden", "tf_model.cel", "tf_memory.epochs", "sine_task.n_plot"]
    assert "did you mean 'cell'" in lines[2]
