"""Give the C heap's free memory back to the kernel (glibc ``malloc_trim``).

Why: glibc keeps memory that was freed in its heaps for reuse, and returns to the kernel only
what is free at the top of the main heap. The initial sync's transients (parsed answers, SQLite
statements, TLS buffers, from the event loop's thread and aiosqlite's) leave free holes that
stay in roomd's RSS for the life of the process although nothing needs them
(bench/README.md, RSS). ``malloc_trim(0)`` releases the free whole pages of every heap
(``madvise``); the next allocation that needs them takes them back from the kernel. Python's own
object arenas are not glibc's heap and are not touched.

Elsewhere than glibc (musl, macOS) there is no ``malloc_trim``: ``trim`` does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

__all__ = ["trim"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:  # the process's own symbols: the C library the interpreter runs on
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


def trim() -> bool:
    """Release the C heap's free pages to the kernel; whether any were released (False also
    where the C library has no ``malloc_trim``)."""
    function = _malloc_trim()
    return function is not None and bool(function(0))
