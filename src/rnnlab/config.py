"""params.yaml parsed into a validated config before any stage does work.

Every key of every section has a rule; a wrong type, an out-of-range value, an unknown name,
an unknown key (with a "did you mean") or a missing key becomes one `ConfigError` naming the
key path and what is allowed. Only PyYAML is imported here, so validation is instant and runs
before numpy or TensorFlow are loaded.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from rnnlab.errors import ConfigError

PARAMS_FILE = "params.yaml"


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader (YAML 1.1) that also reads exponent numbers as floats, as YAML 1.2 does.

    YAML 1.1 wants a dot and a signed exponent (1.0e-3), so `1e-3` as people write it, and
    `1e+38` as DVC writes a float back into params.yaml after `dvc exp run -S`, would be
    strings. Everything else (.inf, .nan, yes/no, 0o17, ...) resolves as in YAML 1.1.
    """


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


@dataclass(frozen=True)
class Rule:
    """How one key is checked: its type and an optional range or set of allowed values."""

    kind: type
    minimum: float | None = None
    exclusive_min: bool = False
    maximum: float | None = None
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        name = {int: "an integer", float: "a number", bool: "true or false"}[self.kind]
        if self.minimum is not None:
            name += f" {'>' if self.exclusive_min else '>='} {self.minimum:g}"
        if self.maximum is not None:
            name += f" <= {self.maximum:g}"
        return name

    def check(self, path: str, value: Any) -> Any:
        """Return the value converted to the rule's type, or raise ConfigError."""
        if self.choices:
            if value not in self.choices:
                raise ConfigError(f"{path}: got {value!r}; expected {self.describe()}")
            return value
        if not _has_type(value, self.kind):
            raise ConfigError(f"{path}: got {value!r} ({type(value).__name__}); expected {self.describe()}")
        value = self.kind(value)
        too_small = self.minimum is not None and (
            value <= self.minimum if self.exclusive_min else value < self.minimum)
        too_large = self.maximum is not None and value > self.maximum
        if too_small or too_large:
            raise ConfigError(f"{path}: got {value!r}; expected {self.describe()}")
        return value


def _has_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # YAML true/false must not pass as 1/0
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
    return isinstance(value, kind)


def count(minimum: int = 1) -> Rule:
    return Rule(int, minimum=minimum)


def positive() -> Rule:
    return Rule(float, minimum=0.0, exclusive_min=True)


def choice(*names: str) -> Rule:
    return Rule(str, choices=names)


SEED = count(0)
NON_NEGATIVE = Rule(float, minimum=0.0)
FLAG = Rule(bool)
VOCAB = count(3)  # symbols plus delimiter and blank: at least one real symbol

SCHEMA: dict[str, dict[str, Rule]] = {
    "gradcheck": {"seed": SEED, "batch_size": count(), "seq_len": count(), "vocab_size": count(2),
                  "hidden": count()},
    "exploding_gradients": {"seed": SEED, "hidden": count(), "vocab_size": count(2),
                            "pretrain_steps": count(0), "learning_rate": positive(),
                            "max_seq_len": count(), "clip_norm": positive()},
    "copy_task": {"seed": SEED, "vocab_size": VOCAB, "to_remember_len": count(),
                  "n_train": count(), "n_test": count()},
    "numpy_rnn": {"hidden": count(), "init": choice("identity", "random", "orthogonal"),
                  "optimizer": choice("adam", "sgd"), "learning_rate": positive(),
                  "batch_size": count(), "steps": count(), "clip_norm": NON_NEGATIVE,
                  "seed": SEED},
    "sine_task": {"seed": SEED, "n_train": count(), "n_test": count(), "seq_len": count(2),
                  "step": positive(), "n_given": count(), "n_generated": count(),
                  "n_plot": count()},
    "memory_task": {"seed": SEED, "vocab_size": VOCAB, "to_remember_len": count(),
                    "blank_separation_len": count(0), "n_train": count(), "n_test": count()},
    "tf_model": {"cell": choice("rnn", "lstm"), "hidden": count(), "match_params": FLAG,
                 "init": choice("random", "identity"), "optimizer": choice("adam", "momentum"),
                 "clip_norm": NON_NEGATIVE, "seed": SEED},
    "tf_sine": {"epochs": count(), "batch_size": count(), "learning_rate": positive(),
                "input_noise": NON_NEGATIVE,
                "lr_decay_to": Rule(float, minimum=0.0, exclusive_min=True, maximum=1.0)},
    "tf_memory": {"epochs": count(), "batch_size": count(), "learning_rate": positive()},
}


def _cross_field_rules(cfg: dict[str, dict[str, Any]]) -> None:
    """Rules that involve more than one key. Raises ConfigError."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    sine = cfg.get("sine_task")
    if sine:
        need(sine["n_given"] < sine["seq_len"],
             f"sine_task.n_given: got {sine['n_given']}; expected fewer given samples than the "
             f"training curve length sine_task.seq_len ({sine['seq_len']})")
        need(sine["n_plot"] <= sine["n_test"],
             f"sine_task.n_plot: got {sine['n_plot']}; expected at most sine_task.n_test "
             f"({sine['n_test']}) curves to draw")
    for section in ("copy_task", "memory_task"):
        task = cfg.get(section)
        # Batches are drawn from the training set: it must hold at least one batch's worth.
        trainer = {"copy_task": "numpy_rnn", "memory_task": "tf_memory"}[section]
        if task and cfg.get(trainer):
            batch = cfg[trainer]["batch_size"]
            need(batch <= task["n_train"],
                 f"{trainer}.batch_size: got {batch}; expected at most {section}.n_train "
                 f"({task['n_train']}) training sequences")
    if cfg.get("sine_task") and cfg.get("tf_sine"):
        batch, n_train = cfg["tf_sine"]["batch_size"], cfg["sine_task"]["n_train"]
        need(batch <= n_train, f"tf_sine.batch_size: got {batch}; expected at most "
                               f"sine_task.n_train ({n_train}) training curves")


def _did_you_mean(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _reject_unknown(given, known, kind: str, where) -> None:
    """The first name in `given` that is not in `known` is an error, with a suggestion."""
    for name in given:
        if name not in known:
            raise ConfigError(f"{where(name)}: unknown {kind}{_did_you_mean(str(name), known)}; "
                              f"allowed {kind}s: {', '.join(known)}")


def validate(raw: Any, sections: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Check a parsed params.yaml; return {section: {key: value}} for `sections` (all if None)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{PARAMS_FILE}: expected a mapping of sections, got {type(raw).__name__}")
    _reject_unknown(raw, SCHEMA, "section", lambda name: name)
    wanted = list(SCHEMA) if sections is None else sections
    cfg = {}
    for section in wanted:
        if section not in raw:
            raise ConfigError(f"{section}: missing section in {PARAMS_FILE}")
        cfg[section] = _validate_section(section, raw[section])
    _cross_field_rules(cfg)
    return cfg


def _validate_section(section: str, values: Any) -> dict[str, Any]:
    rules = SCHEMA[section]
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: expected a mapping of keys, got {values!r}")
    _reject_unknown(values, rules, "key", lambda key: f"{section}.{key}")
    out = {}
    for key, rule in rules.items():
        if key not in values:
            raise ConfigError(f"{section}.{key}: missing key; expected {rule.describe()}")
        out[key] = rule.check(f"{section}.{key}", values[key])
    return out


def parse_yaml(text: str, source: str | Path) -> Any:
    """Parse params YAML with `ParamsLoader` (no Python object tags); the one place params text
    becomes values: params.yaml and `-S key=value` overrides alike. Raises ConfigError."""
    try:
        return yaml.load(text, Loader=ParamsLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None


def read_params(path: str | Path = PARAMS_FILE) -> Any:
    """Parse params.yaml safely (no Python object tags). Raises ConfigError if unreadable."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the params file ({exc.strerror})") from None
    return parse_yaml(text, path)


def load_config(sections: list[str], path: str | Path = PARAMS_FILE) -> SimpleNamespace:
    """Validate the whole params file and return the requested sections as attribute objects.

    The whole file is validated (not just `sections`) so a typo anywhere is reported by the
    first stage that runs, before any output is touched.
    """
    cfg = validate(read_params(path))
    return SimpleNamespace(**{s: SimpleNamespace(**cfg[s]) for s in sections})


def section_dict(ns: SimpleNamespace) -> dict[str, Any]:
    """A section as a plain dict (e.g. to record the params that generated a data file)."""
    return dict(vars(ns))

