"""Process memory: one malloc arena.

glibc gives each thread that allocates under contention an arena of its own, and memory
freed in an arena is kept for that arena. The delivery worker's and the API's threads build
large strings (payloads, batches of events) in turn, so a busy process ends up holding a
hundred MiB or more that it does not use: delivering 10,000 bundles, peak RSS went from
270 MiB with glibc's default (8 arenas per core) to 188 MiB with one, at the same CPU per
bundle (Python holds the GIL around almost every allocation anyway).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter number for the arena limit (malloc.h)."""
ARENAS = 1


def limit_malloc_arenas() -> bool:
    """Apply the limit, unless ``MALLOC_ARENA_MAX`` is set (it then rules) or the C library
    is not glibc; returns whether the limit was set here."""
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, ARENAS))
    except (OSError, AttributeError):  # no such library, or a libc without mallopt (musl)
        return False
