"""User-facing errors (stages turn these into one readable line and a non-zero exit), and
the argument checks the numpy and TensorFlow constructors share (Keras-style ValueErrors)."""

import math
import numbers


class RnnlabError(Exception):
    """An error whose message is meant for the user, not a traceback."""

    exit_code = 2


class ConfigError(RnnlabError):
    """An invalid value (or a missing/unknown key) in params.yaml."""


class DataError(RnnlabError):
    """A missing, truncated, corrupt or mismatched data file."""


class DivergenceError(RnnlabError):
    """Training produced a NaN or Inf loss or weight."""

    exit_code = 3


def _invalid(name: str, expected: str, value) -> ValueError:
    return ValueError(f"Received an invalid value for argument `{name}`, expected {expected}, "
                      f"got {value!r}.")


def check_positive_int(name: str, value) -> int:
    """`value` as an int; ValueError naming the argument unless it is an integer > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise _invalid(name, "a positive integer", value)
    return int(value)


def check_seed(value, name: str = "seed") -> int:
    """`value` as an int; ValueError unless it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise _invalid(name, "a non-negative integer", value)
    return int(value)


def check_number(name: str, value, minimum: float = 0.0, *, exclusive: bool = True,
                 maximum: float = math.inf) -> float:
    """`value` as a float; ValueError unless it is a finite number in the range (minimum
    excluded unless exclusive=False; maximum included)."""
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and math.isfinite(value) and value <= maximum
          and (value > minimum if exclusive else value >= minimum))
    if not ok:
        low = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        high = "" if maximum == math.inf else f" and <= {maximum:g}"
        raise _invalid(name, f"a finite number {low}{high}", value)
    return float(value)


def did_you_mean(value, names) -> str:
    """' (did you mean 'x'?)' for the name in `names` closest to `value`, or ''."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(n) for n in names], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(name: str, value, choices: tuple) -> str:
    """`value` if it is one of `choices`; ValueError naming the argument, the allowed names and
    the closest one otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Received an invalid value for argument `{name}`, expected one of "
                         f"{', '.join(choices)}, got {value!r}{did_you_mean(value, choices)}.")
    return value
