"""
Keeping freed memory for reuse, for the screen capture's large buffers.

Every frame allocates buffers of up to a monitor's size (mss's copy of a
grab, numpy's temporaries, Pillow's images).  glibc serves an allocation
larger than its mmap threshold (128 KiB at first, adapted as it goes) with
a fresh mapping and unmaps it when freed, so the next frame faults those
pages in again: measured on a 640 × 400 picture, turning it into an RGB
image took 1.1 ms with fresh pages and 0.14 ms with reused ones.  Raising
the threshold keeps such buffers in the heap, and raising the trim
threshold keeps the freed heap for the next frame.
"""

import ctypes
import sys

from twisted.logger import Logger

log = Logger()

# mallopt(3) parameters.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above this (64-bit: HEAP_MAX_SIZE / 2).
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024


def keep_freed_memory(largest: int) -> bool:
    """
    Ask glibc to serve allocations of up to C{largest} bytes (at most
    L{MAX_MMAP_THRESHOLD}) from the heap and to keep up to twice that of
    freed heap instead of giving it back at once.  Process-wide; C{False}
    (and nothing changed) where there is no glibc C{mallopt}.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    threshold = max(0, min(int(largest), MAX_MMAP_THRESHOLD))
    kept = bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * threshold))
    if not kept:
        log.info("glibc kept its malloc thresholds")
    return kept
