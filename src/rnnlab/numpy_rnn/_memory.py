"""Freed memory kept in the process for the next training step (glibc's malloc), so that the
step does not fault its arrays' pages in anew every time.

Why: a numpy training step allocates its large arrays anew and frees them at its end (at the
copy task's bench batch of 32: the states, the BPTT deltas, their ReLU mask and the gradient
arriving from the output layer, 170 KiB each). glibc's malloc serves blocks from 128 KiB on
with mmap and returns them with munmap, and it trims the heap when the free space at its top
passes a threshold; so every step had the kernel hand out and zero those pages again, page fault
by page fault. With both thresholds raised, the freed blocks stay in the heap and the next step
reuses them (benchmarks/RESULTS.md, "The numpy RNN's step without page faults"). Keeping the
arrays in the layers for reuse would do the same without the C library, but a later call would
then overwrite what an earlier one returned.

The setting is process-wide and stays: TensorFlow in the same process allocates under it too
(its results do not change: only where memory lives does), and the process keeps up to
TRIM_THRESHOLD_BYTES of freed heap instead of returning it. It changes no bit of any result.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

# <malloc.h>: mallopt's parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks below this come from the heap: glibc's own upper bound when it adapts the threshold by
# itself (32 MiB on 64-bit); the largest numpy RNN arrays rnnlab makes, the bench's at B = 256,
# T = 100, H = 256, are 25 MiB.
MMAP_THRESHOLD_BYTES = 32 << 20
# Free space at the heap's top kept before it is returned: twice the above, glibc's own ratio.
TRIM_THRESHOLD_BYTES = 64 << 20
# The environment's own ways to set these (read by glibc at start-up), which win over ours.
USER_MALLOC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def user_set_malloc() -> bool:
    """Did the environment tune glibc's malloc thresholds itself?"""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return (any(name in os.environ for name in USER_MALLOC_SETTINGS)
            or "glibc.malloc.mmap_threshold" in tunables
            or "glibc.malloc.trim_threshold" in tunables)


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process (once; it stays).

    Returns:
        True if set. False, changing nothing, where the C library is not glibc (macOS, musl)
        or the environment set either threshold (see user_set_malloc); False too if glibc
        refused a value (32-bit builds cap the mmap threshold lower), in which case the trim
        threshold, set first, may have changed. An allocator put in with LD_PRELOAD (jemalloc,
        tcmalloc) ignores the call, which may still return True.
    """
    if platform.libc_ver()[0] != "glibc" or user_set_malloc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    return (mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
            and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)
