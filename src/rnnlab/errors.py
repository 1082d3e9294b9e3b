"""User-facing errors. Stages turn these into one readable line and a non-zero exit."""


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
