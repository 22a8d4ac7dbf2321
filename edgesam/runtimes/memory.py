"""Memory modes of the runtime backends, and handing freed heap memory back to the system.

Every bundle backend takes ``memory=`` (keyword-only), one of :data:`MEMORY_MODES`:

``"default"``
    The runtime's allocator keeps what a call needs, but gives back what it grew by after each
    encoder run (ONNX Runtime: arena shrinkage; OpenVINO: ``CompiledModel.release_memory``).
    Measured at the same latency as ``"runtime"`` (see the README's "Memory" section).
``"low"``
    Smallest footprint: no allocator arena or memory plan is kept between runs and freed heap
    memory goes back to the system after every encoder run. Costs latency (page faults on
    every run); for machines where RAM, not time, is the limit.
``"runtime"``
    The runtime's own defaults (an arena that grows to its high-water mark and keeps it): what
    edgesam did before memory modes existed; for comparison.

numpy/ctypes only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["MEMORY_MODES", "check_memory_mode", "trim_heap"]

MEMORY_MODES = ("default", "low", "runtime")

_LIBC: object | None = None


def check_memory_mode(memory: object) -> str:
    """``memory`` if it names a mode; else a ``ValueError``/``TypeError`` listing the modes."""
    if not isinstance(memory, str):
        raise TypeError(f"memory must be one of {MEMORY_MODES}, got {type(memory).__name__}")
    if memory not in MEMORY_MODES:
        raise ValueError(f"memory must be one of {MEMORY_MODES}, got {memory!r}")
    return memory


def trim_heap() -> bool:
    """Return the free memory at the top of the C heap to the system (glibc ``malloc_trim``).

    Returns True when glibc released something; False elsewhere (other C libraries, macOS,
    Windows), where this is a no-op.
    """
    global _LIBC
    if not sys.platform.startswith("linux"):
        return False
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _LIBC = False
    trim = getattr(_LIBC, "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False
