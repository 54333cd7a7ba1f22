"""Give memory a finished stage freed back to the system, so the next stage starts lower.

glibc's allocator keeps freed blocks for reuse instead of returning them; after a stage that
made many short-lived objects (cross-validation, the ONNX conversion and its check) the
process would keep their high-water mark, and the next stage's peak would stack on it.
``malloc_trim`` hands the free pages back. Elsewhere (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_memory() -> None:
    """Return the allocator's free memory to the system (where glibc can)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
