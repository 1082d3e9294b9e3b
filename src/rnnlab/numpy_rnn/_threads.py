"""Where the numpy RNN's matrix products run: one BLAS thread, and this module's own threads
across the batch when a product is large enough to share.

Why: a recurrent step's matmuls take microseconds, too little to split, and on a machine shared
with another job a multi-threaded BLAS call waits whenever one of its threads is descheduled. So
training limits numpy's BLAS to one thread (`blas_threads`, through threadpoolctl) and large
steps are split by rows over a small thread pool instead (numpy releases the GIL inside BLAS
calls): the shards of a batch never interact inside a time loop, so the threads meet once per
loop, and a descheduled thread delays only its own rows. benchmarks/RESULTS.md has the numbers.
"""

from __future__ import annotations

import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from rnnlab.training import available_cores

# Work (multiply-adds) from which a product or a time loop is split over the cores: below it,
# handing work to another thread costs more than it saves. The copy task's whole step (B=64,
# H=50, T=27: 4.3M for the stacked weight gradients) stays on one thread, which was faster
# than splitting those products (benchmarks/RESULTS.md, the split table); B=256, H=256 is split.
PARALLEL_MIN_MACS = 1 << 23
# How many partial sums a large sum_outer adds: fixed, not the core count, because the order of
# a float sum decides its last bits (rows of a product, matmul's split, can follow the cores).
SUM_PARTS = 2


@functools.lru_cache(maxsize=1)
def _blas():
    """threadpoolctl's handle on the BLAS libraries loaded in this process (numpy's OpenBLAS)."""
    return ThreadpoolController().select(user_api="blas")


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit numpy's BLAS to `n` threads inside the block; None leaves it alone."""
    if n is None:
        yield
        return
    with _blas().limit(limits=int(n)):
        yield


def n_cores() -> int:
    return available_cores()


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n_cores(), thread_name_prefix="rnnlab")


def shards(n_rows: int, macs: int, n_parts: int | None = None) -> list[slice]:
    """Contiguous row slices, `n_parts` (default: one per core) if `macs` of work justify it,
    else [all rows]."""
    n = min(n_parts or n_cores(), n_rows // 32) if macs >= PARALLEL_MIN_MACS else 1
    if n <= 1:
        return [slice(None)]
    bounds = [n_rows * i // n for i in range(n + 1)]
    # consecutive bounds pairwise: n + 1 bounds give n slices (the shift truncates on purpose)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=False)]


def map_shards(fn, row_slices) -> None:
    """fn(rows) for every slice, on the thread pool (one BLAS thread each) when there are
    several."""
    if len(row_slices) == 1:
        fn(row_slices[0])
        return
    with blas_threads(1):
        for future in [_pool().submit(fn, rows) for rows in row_slices]:
            future.result()


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b, with the rows of `a` (and of the result) split over the cores when large."""
    row_slices = shards(a.shape[0], a.shape[0] * a.shape[1] * b.shape[1])
    if len(row_slices) == 1:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    map_shards(lambda rows: np.matmul(a[rows], b, out=out[rows]), row_slices)
    return out


def sum_outer(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a.T @ b, i.e. the sum of outer(a_i, b_i) over rows i (weight gradients over stacked time
    steps); when large, SUM_PARTS blocks of rows are summed side by side and the partial sums
    added, so the result has the same bits on any number of cores."""
    row_slices = shards(a.shape[0], a.shape[0] * a.shape[1] * b.shape[1], SUM_PARTS)
    if len(row_slices) == 1:
        return np.matmul(a.T, b, out=out)
    parts = [None] * len(row_slices)

    def part(i: int) -> None:
        parts[i] = a[row_slices[i]].T @ b[row_slices[i]]

    map_shards(part, range(len(row_slices)))
    return np.add.reduce(parts, out=out)
