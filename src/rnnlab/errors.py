"""User-facing errors (stages turn these into one readable line and a non-zero exit), and
the argument check the numpy and TensorFlow constructors share."""

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


def check_positive_int(name: str, value) -> int:
    """`value` as an int; ValueError naming the argument unless it is an integer > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"Received an invalid value for argument `{name}`, expected a "
                         f"positive integer, got {value!r}.")
    return int(value)
