"""Memory modes of the runtime backends, and handing freed heap memory back to the system.

Every bundle backend takes ``memory=`` (keyword-only), one of :data:`MEMORY_MODES`:

``"default"``
    What costs no measurable latency: ONNX Runtime runs without its pre-planned memory pattern
    (a second block of the size of all activations beside the arena), and decodes batches of
    prompts :data:`DECODER_CHUNK` at a time (a batch of 16 boxes at 1024 px in one run grows the
    decoder's arena by ~500 MB, which it keeps for good); OpenVINO releases the encoder's
    intermediate buffers after each run (``CompiledModel.release_memory``) and decodes in the
    same chunks.
``"low"``
    Smallest footprint between runs: ONNX Runtime without arena (the encoder's activations in
    one pre-planned block per run, which costs less time than allocating them tensor by tensor;
    the decoder's tensor by tensor, in the same chunks), OpenVINO releasing the encoder's
    buffers, and freed C heap memory handed back to the system after every encoder run. Costs
    latency (the pages are faulted in again on every run); for machines where RAM, not time, is
    the limit.
``"runtime"``
    The runtimes' own defaults (ONNX Runtime's arena and memory pattern keep their high-water
    mark): what edgesam did before memory modes existed; for comparison.

ONNX Runtime's arena shrinkage after a run (run option ``memory.enable_memory_arena_shrinkage``)
was measured too: on the encoder it cut the steady footprint but cost 15-46% of ``set_image``
(``"low"`` goes lower for a similar cost), on the decoder 28-37% of a 16-prompt batch and ~20%
of a click, so no mode uses it; chunks of 8 prompts cost no measurable time. No arena setting
brought the encoder's steady state under 400 MB at 1024 px without such a cost (extend
strategy, initial chunk, shared environment arena: 445-477 MB): ONNX Runtime's allocators hold
3-5x the live set of a graph whose tensors vary in size (``benchmarks/ort_arena_growth.py``), and
handing that memory back after every run costs 20-25% of the encoder's time. Figures: the
README's "Memory" section.

numpy/ctypes only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["DECODER_CHUNK", "MEMORY_MODES", "check_memory_mode", "trim_heap"]

MEMORY_MODES = ("default", "low", "runtime")
#: Most prompts per decoder run of the CPU runtimes outside ``"runtime"`` mode (larger batches are split).
DECODER_CHUNK = 8

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
