"""Freed memory kept in the process for the next training step (glibc's malloc), so that the
step does not fault its arrays' pages in anew every time.

Why: a numpy training step allocates its large arrays anew (the states, the BPTT deltas, the
logits and their gradient: 170 KiB each at the copy task's bench batch of 32) and frees them at
its end. glibc's malloc serves blocks from 128 KiB on with mmap and returns them with munmap, and
it trims the heap when the free space at its top passes a threshold; so every step had the
kernel hand out and zero those pages again, page fault by page fault, about a quarter of the
copy task's step (benchmarks/RESULTS.md). With both thresholds raised, the freed blocks stay in
the heap and the next step reuses them. Keeping the arrays in the layers for reuse would do the
same without the C library, but a later call would then overwrite what an earlier one returned.

It does not change a single bit of the results: only where the arrays live.
"""

from __future__ import annotations

import ctypes
import functools
import platform

# <malloc.h>: mallopt's parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks below this come from the heap: glibc's own upper bound when it adapts the threshold by
# itself (32 MiB on 64-bit), far above any array of the numpy RNN's training at its sizes.
MMAP_THRESHOLD_BYTES = 32 << 20
# Free space at the heap's top kept before it is returned: twice the above, glibc's own ratio.
TRIM_THRESHOLD_BYTES = 64 << 20


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process (once; it stays).

    Returns:
        True if set; False where the C library is not glibc (macOS, musl), which is left alone.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    return (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
