"""Memory modes of the runtime backends, and handing freed heap memory back to the system.

Every bundle backend takes ``memory=`` (keyword-only), one of :data:`MEMORY_MODES`:

``"default"``
    What costs no measurable latency: ONNX Runtime runs without its pre-planned memory pattern
    (a second block of the size of all activations beside the arena), and shrinks the decoder's
    arena after a run of :data:`DECODER_SHRINK_BATCH` or more prompts (a batch of 16 boxes at
    1024 px grows it by ~500 MB, which an arena otherwise keeps for good); OpenVINO releases
    the encoder's intermediate buffers after each run (``CompiledModel.release_memory``).
``"low"``
    Smallest footprint between runs: ONNX Runtime without arena or memory pattern, OpenVINO
    releasing the encoder's buffers, and freed C heap memory handed back to the system after
    every encoder run. Costs latency (the pages are faulted in again on every run); for
    machines where RAM, not time, is the limit.
``"runtime"``
    The runtimes' own defaults (ONNX Runtime's arena and memory pattern keep their high-water
    mark): what edgesam did before memory modes existed; for comparison.

ONNX Runtime's arena shrinkage after a run (run option ``memory.enable_memory_arena_shrinkage``)
was measured too: on the encoder it cut the steady footprint but cost 15-46% encoder latency
(``"low"`` goes lower for a similar cost), so no mode uses it there; on the decoder it costs
nothing measurable for batches of 16 prompts but ~20% for single clicks, hence the batch
threshold. No arena setting brought the encoder's steady state under 400 MB at 1024 px without
such a cost (extend strategy, initial chunk, shared environment arena: 473-477 MB). Figures:
the README's "Memory" section.

numpy/ctypes only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["DECODER_SHRINK_BATCH", "MEMORY_MODES", "check_memory_mode", "trim_heap"]

MEMORY_MODES = ("default", "low", "runtime")
#: Decoder runs of this many prompts or more release their arena growth in ``"default"`` mode.
DECODER_SHRINK_BATCH = 4

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
