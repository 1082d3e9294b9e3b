"""The sequences of the sheet's three tasks, generated in numpy, vectorised over sequences.

All generators take a `numpy.random.Generator`, so the same seed gives the same data.
Sequences are stored as small-integer class ids (not one-hot): the models one-hot them.
"""

from __future__ import annotations

import numpy as np

# Part 1 (numpy RNN, the sheet's copy task): symbols 0..n_symbols-1, then delimiter, blank.
# Part 2 (TF memory task) swaps the two special symbols: blank first, then delimiter.


def copy_task(n: int, to_remember_len: int, n_symbols: int, rng: np.random.Generator):
    """The sheet's memorisation task (question 1e).

    input  = s_1..s_L, DELIM, BLANK x L
    target = BLANK x L, DELIM, s_1..s_L
    with DELIM = n_symbols and BLANK = n_symbols + 1 (8 and 9 for the default 8 symbols).

    Returns:
        inputs: (n, 2L+1) uint8 class ids.
        targets: (n, 2L+1) uint8 class ids.
    """
    L = to_remember_len
    delim, blank = n_symbols, n_symbols + 1
    symbols = rng.integers(0, n_symbols, size=(n, L), dtype=np.uint8)
    inputs = np.full((n, 2 * L + 1), blank, dtype=np.uint8)
    targets = np.full((n, 2 * L + 1), blank, dtype=np.uint8)
    inputs[:, :L] = symbols
    inputs[:, L] = delim
    targets[:, L] = delim
    targets[:, L + 1:] = symbols
    return inputs, targets


def memory_task(n: int, to_remember_len: int, blank_separation_len: int, n_symbols: int,
                rng: np.random.Generator):
    """The sheet's memory task with blank separation (question 2e).

    input  = m_1..m_L, BLANK x B, DELIM, BLANK x L
    target = BLANK x (L+B+1), m_1..m_L
    with BLANK = n_symbols and DELIM = n_symbols + 1 (8 and 9 for the default 8 symbols).

    Returns:
        inputs: (n, 2L+B+1) uint8 class ids.
        targets: (n, 2L+B+1) uint8 class ids.
    """
    L, B = to_remember_len, blank_separation_len
    blank, delim = n_symbols, n_symbols + 1
    symbols = rng.integers(0, n_symbols, size=(n, L), dtype=np.uint8)
    inputs = np.full((n, 2 * L + B + 1), blank, dtype=np.uint8)
    targets = np.full((n, 2 * L + B + 1), blank, dtype=np.uint8)
    inputs[:, :L] = symbols
    inputs[:, L + B] = delim
    targets[:, L + B + 1:] = symbols
    return inputs, targets


def sine_curves(n: int, length: int, x_spacing: float, rng: np.random.Generator):
    """Sine curves sin(x / f) sampled at x_0, x_0 + x_spacing, ..., as the sheet's framework
    made them.

    f ~ U[1, 2) sets the (unknown to the model) frequency, x_0 ~ U[0, 4*pi) the phase.

    Returns:
        curves: (n, length) float32.
    """
    freq = rng.uniform(1.0, 2.0, size=(n, 1))
    start = rng.uniform(0.0, 4.0 * np.pi, size=(n, 1))
    x = start + x_spacing * np.arange(length)[None, :]
    return np.sin(x / freq).astype(np.float32)

