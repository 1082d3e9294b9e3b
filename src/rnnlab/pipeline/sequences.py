"""The sequences of the sheet's three tasks and of the adding problem, generated in numpy,
vectorised over sequences.

All generators take a `numpy.random.Generator`, so the same seed gives the same data.
Sequences are stored as small-integer class ids (not one-hot): the models one-hot them.
"""

from __future__ import annotations

import numpy as np

# Part 1 (numpy RNN, the sheet's copy task): symbols 0..n_symbols-1, then delimiter, blank.
# Part 2 (TF memory task) swaps the two special symbols: blank first, then delimiter.


def copy_task(n: int, to_remember_len: int, n_symbols: int, rng: np.random.Generator,
              blank_separation_len: int = 0):
    """The sheet's memorisation task (question 1e), and with B > 0 blanks between the symbols
    and the delimiter the long copy task (Arjovsky, Shah & Bengio 2016: L = 10, B = T - 1).

    input  = s_1..s_L, BLANK x B, DELIM, BLANK x L
    target = BLANK x (L+B), DELIM, s_1..s_L
    with DELIM = n_symbols and BLANK = n_symbols + 1 (8 and 9 for the default 8 symbols). The
    target echoes the delimiter (the sheet's layout; Arjovsky et al. ask for a blank there):
    either is read off the current input, so the memoryless loss L ln(n_symbols) / (2L+B+1)
    is the same.

    Returns:
        inputs: (n, 2L+B+1) uint8 class ids.
        targets: (n, 2L+B+1) uint8 class ids.
    """
    L, B = to_remember_len, blank_separation_len
    delim, blank = n_symbols, n_symbols + 1
    symbols = rng.integers(0, n_symbols, size=(n, L), dtype=np.uint8)
    inputs = np.full((n, 2 * L + B + 1), blank, dtype=np.uint8)
    targets = np.full((n, 2 * L + B + 1), blank, dtype=np.uint8)
    inputs[:, :L] = symbols
    inputs[:, L + B] = delim
    targets[:, L + B] = delim
    targets[:, L + B + 1:] = symbols
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



ADDING_MARKERS = 2  # the adding problem marks exactly two values


def adding_problem(n: int, seq_len: int, rng: np.random.Generator):
    """The adding problem (Hochreiter & Schmidhuber 1997, exp. 4; Le, Jaitly & Hinton 2015):
    T = seq_len steps of two channels, a value ~ U[0, 1] and a marker that is 1 at exactly two
    steps, one in each half of the sequence (Hochreiter's placement: the first marked value
    must be carried over at least the second half); the target is the sum of the two marked
    values. Always predicting 1 gives MSE Var(U1 + U2) = 1/6.

    Returns:
        inputs: (n, T, 2) float32: channel 0 the values, channel 1 the markers.
        targets: (n,) float32.
    """
    half = seq_len // 2
    values = rng.uniform(0.0, 1.0, size=(n, seq_len)).astype(np.float32)
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    markers = np.zeros((n, seq_len), dtype=np.float32)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second]).astype(np.float32)
    return np.stack([values, markers], axis=-1), targets
