"""params.yaml as typed, validated sections: one frozen dataclass per section, one rule per key.

Every key of every section has a rule (its field's metadata); a wrong type, an out-of-range
value, an unknown name, an unknown key (with a "did you mean"), a renamed key or value (naming
the new one) or a missing key is reported with the key path and what is allowed; all of a
file's mistakes are reported together, in one `ConfigError`. Only PyYAML is imported here, so
validation runs before numpy or TensorFlow load.

    copy_task, numpy_rnn = load_params("copy_task", "numpy_rnn")
    numpy_rnn.hidden  # 50
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rnnlab.choices import (
    LSTM_VARIANTS, MATCHED, NUMPY_OPTIMIZERS, RNN_INITS, TF_CELLS, TF_OPTIMIZERS)
from rnnlab.errors import ConfigError, did_you_mean

PARAMS_FILE = "params.yaml"


# ----------------------------------------------------------------------------- reading YAML

class ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader (YAML 1.1) that also reads exponent numbers as floats, as YAML 1.2 does.

    YAML 1.1 wants a dot and a signed exponent (1.0e-3), so `1e-3` as people write it, and
    `1e+38` as DVC writes a float back into params.yaml after `dvc exp run -S`, would be
    strings. Everything else (.inf, .nan, yes/no, 0o17, ...) resolves as in YAML 1.1.
    """


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_yaml(text: str, source: str | Path) -> Any:
    """Parse params YAML with `ParamsLoader` (no Python object tags); the one place params text
    becomes values: params.yaml and `-S key=value` overrides alike. Raises ConfigError."""
    try:
        return yaml.load(text, Loader=ParamsLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None


def read_params(path: str | Path = PARAMS_FILE) -> Any:
    """Parse params.yaml safely. Raises ConfigError if it cannot be read or parsed."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the params file ({exc.strerror})") from None
    return parse_yaml(text, path)


# ----------------------------------------------------------------------------- rules

@dataclass(frozen=True)
class Rule:
    """How one key is checked: its type and an optional range or set of allowed names.

    With `choices` and kind str the value must be one of them; with `choices` and kind int it
    may also be one of them (tf_model.rnn_hidden: a count or "matched")."""

    kind: type
    minimum: float | None = None
    exclusive_min: bool = False
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        names = ", ".join(repr(c) for c in self.choices)
        if self.kind is str:
            return f"one of {names}"
        text = {int: "an integer", float: "a number", bool: "true or false"}[self.kind]
        if self.minimum is not None:
            text += f" {'>' if self.exclusive_min else '>='} {self.minimum:g}"
        if self.maximum is not None:
            text += f" <= {self.maximum:g}"
        return f"{text} or {names}" if names else text

    def check(self, path: str, value: Any) -> Any:
        """Return the value converted to the rule's type, or raise ConfigError."""
        if isinstance(value, str) and value in self.choices:
            return value
        if self.kind is str or not _has_type(value, self.kind):
            shown = f"{value!r}" if self.kind is str else f"{value!r} ({type(value).__name__})"
            hint = _renamed_value_hint(path, value) or (
                did_you_mean(value, self.choices) if self.kind is str else "")
            raise ConfigError(f"{path}: got {shown}; expected {self.describe()}{hint}")
        value = self.kind(value)
        too_small = self.minimum is not None and (
            value <= self.minimum if self.exclusive_min else value < self.minimum)
        if too_small or (self.maximum is not None and value > self.maximum):
            raise ConfigError(f"{path}: got {value!r}; expected {self.describe()}")
        return value


def _has_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # YAML true/false must not pass as 1/0
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
    return isinstance(value, kind)


def _key(rule: Rule):
    """A dataclass field checked by `rule` (no default: every key must be in params.yaml)."""
    return dataclasses.field(metadata={"rule": rule})


def count(minimum: int = 1):
    return _key(Rule(int, minimum=minimum))


def positive():
    return _key(Rule(float, minimum=0.0, exclusive_min=True))


def non_negative():
    return _key(Rule(float, minimum=0.0))


def one_of(names: tuple[str, ...]):
    return _key(Rule(str, choices=names))


def seed_key():
    return count(0)


def vocab_key():
    return count(3)  # symbols plus delimiter and blank: at least one real symbol


# ----------------------------------------------------------------------------- the sections

@dataclass(frozen=True)
class Gradcheck:
    """Finite differences over every parameter entry of a tiny numpy RNN (float64)."""
    seed: int = seed_key()
    batch_size: int = count()
    seq_len: int = count()
    vocab_size: int = count(2)
    hidden: int = count()


@dataclass(frozen=True)
class ExplodingGradients:
    """Questions 1c/d: mean |gradient| against sequence length."""
    seed: int = seed_key()
    hidden: int = count()
    vocab_size: int = count(2)
    pretrain_steps: int = count(0)
    learning_rate: float = positive()
    max_seq_len: int = count()
    clip_norm: float = positive()


@dataclass(frozen=True)
class CopyTask:
    """Question 1e: s_1..s_L, blank x B, #, blank x L  ->  blank x (L+B), #, s_1..s_L (the
    sheet's task at B = 0; Arjovsky et al.'s long copy task at L = 10, B = T - 1)."""
    seed: int = seed_key()
    vocab_size: int = vocab_key()
    to_remember_len: int = count()
    blank_separation_len: int = count(0)
    n_train: int = count()
    n_test: int = count()


@dataclass(frozen=True)
class NumpyRNN:
    """The from-scratch numpy RNN trained on the copy task."""
    hidden: int = count()
    init: str = one_of(RNN_INITS)
    optimizer: str = one_of(NUMPY_OPTIMIZERS)
    learning_rate: float = positive()
    batch_size: int = count()
    steps: int = count()
    clip_norm: float = non_negative()
    seed: int = seed_key()


@dataclass(frozen=True)
class SineTask:
    """Questions 2c/d: sin(x / f) curves sampled every x_spacing."""
    seed: int = seed_key()
    n_train: int = count()
    n_test: int = count()
    seq_len: int = count(2)
    x_spacing: float = positive()
    n_given: int = count()
    n_generated: int = count()
    n_plot: int = count()


@dataclass(frozen=True)
class MemoryTask:
    """Question 2e: m_1..m_L, blank x B, delim, blank x L  ->  m_1..m_L at the end."""
    seed: int = seed_key()
    vocab_size: int = vocab_key()
    to_remember_len: int = count()
    blank_separation_len: int = count(0)
    n_train: int = count()
    n_test: int = count()


@dataclass(frozen=True)
class AddingTask:
    """The adding problem: T steps of (value ~ U[0, 1], marker); two markers, one in each half;
    target the sum of the two marked values."""
    seed: int = seed_key()
    seq_len: int = count(2)   # one marker in each half needs two steps at least
    n_train: int = count()
    n_test: int = count()


@dataclass(frozen=True)
class TFModel:
    """The TensorFlow cell of both TF tasks."""
    cell: str = one_of(TF_CELLS)
    lstm_hidden: int = count()
    lstm_variant: str = one_of(LSTM_VARIANTS)
    lstm_forget_bias: float = _key(Rule(float))
    rnn_hidden: int | str = _key(Rule(int, minimum=1, choices=(MATCHED,)))
    rnn_init: str = one_of(RNN_INITS)
    gru_hidden: int | str = _key(Rule(int, minimum=1, choices=(MATCHED,)))
    optimizer: str = one_of(TF_OPTIMIZERS)
    clip_norm: float = non_negative()
    seed: int = seed_key()

    def model_options(self) -> dict[str, Any]:
        """The keyword arguments of rnnlab.tf_rnn.model.make_model these params give."""
        return {key: getattr(self, key) for key in (
            "lstm_hidden", "lstm_variant", "lstm_forget_bias", "rnn_hidden", "rnn_init",
            "gru_hidden", "seed")}

    @property
    def label(self) -> str:
        """The cell as a reader names it: "LSTM", "LSTM (coupled)", "GRU", "ReLU RNN",
        "IRNN (identity init)"."""
        if self.cell == "rnn":
            return "IRNN (identity init)" if self.rnn_init == "identity" else "ReLU RNN"
        if self.cell == "lstm" and self.lstm_variant != "vanilla":
            return f"LSTM ({self.lstm_variant})"
        return self.cell.upper()


@dataclass(frozen=True)
class TFSine:
    """Training of the TF cell on the sine task."""
    epochs: int = count()
    batch_size: int = count()
    learning_rate: float = positive()
    input_noise: float = non_negative()
    lr_decay_to: float = _key(Rule(float, minimum=0.0, exclusive_min=True, maximum=1.0))


@dataclass(frozen=True)
class TFMemory:
    """Training of the TF cell on the memory task."""
    epochs: int = count()
    batch_size: int = count()
    learning_rate: float = positive()


@dataclass(frozen=True)
class TFAdding:
    """Training of the TF cell on the adding problem (MSE at the last step)."""
    epochs: int = count()
    batch_size: int = count()
    learning_rate: float = positive()


SECTIONS: dict[str, type] = {
    "gradcheck": Gradcheck, "exploding_gradients": ExplodingGradients,
    "copy_task": CopyTask, "numpy_rnn": NumpyRNN, "sine_task": SineTask,
    "memory_task": MemoryTask, "adding_task": AddingTask, "tf_model": TFModel,
    "tf_sine": TFSine, "tf_memory": TFMemory, "tf_adding": TFAdding,
}

# Old names, refused with the new name: {section: {old key: (new key, why)}}.
RENAMED_KEYS = {
    "tf_model": {"hidden": ("lstm_hidden", "the LSTM's units; the RNN's are tf_model.rnn_hidden"),
                 "match_params": ("rnn_hidden",
                                  "'matched' gives the RNN the LSTM's parameter count"),
                 "init": ("rnn_init", "the RNN's W_hh; the LSTM has its own init")},
    "sine_task": {"step": ("x_spacing", "the spacing of x between samples")},
}
# {key path: {old value: hint}}
RENAMED_VALUES = {
    "numpy_rnn.init": {"random": "'permutation' (the random permutation it meant) or 'gaussian' "
                                 "(the sheet's random init)"},
    "tf_model.rnn_init": {"random": "'orthogonal' (the Haar-orthogonal matrix it meant) or "
                                    "'gaussian' (the sheet's random init)"},
}


def rules(section: str) -> dict[str, Rule]:
    """{key: Rule} of a section, in params.yaml order."""
    return {f.name: f.metadata["rule"] for f in dataclasses.fields(SECTIONS[section])}


def _renamed_value_hint(path: str, value: Any) -> str:
    hint = RENAMED_VALUES.get(path, {}).get(value) if isinstance(value, str) else None
    return f" ({value!r} was renamed: did you mean {hint}?)" if hint else ""


# ----------------------------------------------------------------------------- validation

def _cross_key_problems(cfg: dict[str, Any]) -> list[str]:
    """Rules that involve more than one key, over the sections that passed their own checks."""
    problems = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    sine = cfg.get("sine_task")
    if sine:
        need(sine.n_given < sine.seq_len,
             f"sine_task.n_given: got {sine.n_given}; expected fewer given samples than the "
             f"training curve length sine_task.seq_len ({sine.seq_len})")
        need(sine.n_plot <= sine.n_test,
             f"sine_task.n_plot: got {sine.n_plot}; expected at most sine_task.n_test "
             f"({sine.n_test}) curves to draw")
    problems += _tf_model_problems(cfg.get("tf_model"))
    # Batches are drawn from the training set: it must hold at least one batch's worth.
    for trainer, task, what in (("numpy_rnn", "copy_task", "sequences"),
                                ("tf_memory", "memory_task", "sequences"),
                                ("tf_sine", "sine_task", "curves"),
                                ("tf_adding", "adding_task", "sequences")):
        if cfg.get(trainer) and cfg.get(task):
            batch, n_train = cfg[trainer].batch_size, cfg[task].n_train
            need(batch <= n_train, f"{trainer}.batch_size: got {batch}; expected at most "
                                   f"{task}.n_train ({n_train}) training {what}")
    return problems


def _tf_model_problems(m) -> list[str]:
    """The LSTM's switches mean something only for the LSTM, the forget bias only with a forget
    gate: a setting that would be silently ignored is refused, naming both keys."""
    if m is None:
        return []
    problems = []
    changed = [(key, value) for key, value, default in (
        ("lstm_variant", m.lstm_variant, "vanilla"), ("lstm_forget_bias", m.lstm_forget_bias, 1.0))
        if value != default]
    if m.cell != "lstm":
        problems += [f"tf_model.{key}: got {value!r}, but tf_model.cell is {m.cell!r}: it is a "
                     f"switch of the LSTM only (set tf_model.cell: lstm, or leave tf_model.{key} "
                     f"at its default)" for key, value in changed]
    elif m.lstm_variant == "no_forget_gate" and m.lstm_forget_bias != 1.0:
        problems.append(f"tf_model.lstm_forget_bias: got {m.lstm_forget_bias!r}, but "
                        f"tf_model.lstm_variant is 'no_forget_gate': there is no forget gate to "
                        f"bias (leave tf_model.lstm_forget_bias at 1)")
    return problems


def _closest(name: str, candidates) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(given, known, kind: str, where, renamed=None) -> tuple[list[str], set[str]]:
    """A problem for every name in `given` that is not in `known`, with a suggestion; and the
    names suggested (their "missing" is the same mistake, not reported twice)."""
    problems, suggested = [], set()
    for name in given:
        if name in known:
            continue
        if renamed and name in renamed:
            new, why = renamed[name]
            problems.append(f"{where(name)}: renamed; did you mean '{new}'? ({why})")
            suggested.add(new)
            continue
        close = _closest(str(name), known)
        hint = f" (did you mean '{close}'?)" if close else ""
        problems.append(f"{where(name)}: unknown {kind}{hint}; allowed {kind}s: "
                        f"{', '.join(known)}")
        suggested |= {close} if close else set()
    return problems, suggested


def validate_section(section: str, values: Any, problems: list[str]):
    """The typed section, or None if it has problems (appended to `problems`)."""
    section_rules = rules(section)
    if not isinstance(values, dict):
        problems.append(f"{section}: expected a mapping of keys, got {values!r}")
        return None
    found, suggested = _unknown(values, section_rules, "key", lambda key: f"{section}.{key}",
                                RENAMED_KEYS.get(section))
    checked = {}
    for key, rule in section_rules.items():
        if key not in values:
            if key not in suggested:
                found.append(f"{section}.{key}: missing key; expected {rule.describe()}")
            continue
        try:
            checked[key] = rule.check(f"{section}.{key}", values[key])
        except ConfigError as exc:
            found.append(str(exc))
    problems += found
    return None if found else SECTIONS[section](**checked)


def validate(raw: Any) -> dict[str, Any]:
    """Check a parsed params.yaml; return {section name: its typed, frozen section}.

    Every mistake is found in one pass: ConfigError names one key, or lists them all, one per
    line, so that a file with three typos takes one run to fix, not three."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{PARAMS_FILE}: expected a mapping of sections, "
                          f"got {type(raw).__name__}")
    problems, suggested = _unknown(raw, SECTIONS, "section", lambda name: name)
    cfg = {}
    for section in SECTIONS:
        if section not in raw:
            if section not in suggested:
                problems.append(f"{section}: missing section in {PARAMS_FILE}")
            continue
        typed = validate_section(section, raw[section], problems)
        if typed is not None:
            cfg[section] = typed
    problems += _cross_key_problems(cfg)
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{PARAMS_FILE} has {len(problems)} mistakes:\n  "
                          + "\n  ".join(problems))
    return cfg


def load_params(*sections: str, path: str | Path = PARAMS_FILE) -> tuple:
    """Validate the whole params file and return the requested sections, typed, in order.

    The whole file is validated (not just `sections`) so a typo anywhere is reported by the
    first stage that runs, before any output is touched.
    """
    cfg = validate(read_params(path))
    return tuple(cfg[name] for name in sections)


def as_dict(section) -> dict[str, Any]:
    """A section as a plain dict (e.g. to record the params that generated a data file)."""
    return dataclasses.asdict(section)
