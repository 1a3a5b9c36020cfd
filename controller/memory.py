"""Give memory back to the operating system after the initial listing (docs/benchmarks.md, notes).

The listing parses every object at once; once the handlers are done with them, CPython frees the objects
but glibc keeps the freed heap pages mapped, so the process would sit at its start-up peak for good.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)


def release() -> bool:
    """Collect garbage, then return free heap pages to the OS where the C library can (glibc)."""
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return False
    trim.argtypes = [ctypes.c_size_t]
    return bool(trim(0))
