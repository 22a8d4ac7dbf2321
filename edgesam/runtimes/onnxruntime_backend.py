"""ONNX Runtime backend: runs a bundle's ``encoder.onnx`` and ``decoder.onnx``.

onnxruntime is imported when the backend is constructed (``pip install "edgesam[onnxruntime]"``,
or ``onnxruntime-gpu`` for CUDA / TensorRT execution providers).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from edgesam.bundle.format import Bundle
from edgesam.runtimes.base import import_runtime
from edgesam.runtimes.bundle_backend import BundleBackend, check_io_names
from edgesam.runtimes.memory import DECODER_CHUNK, check_memory_mode, trim_heap
from edgesam.runtimes.precision import normalize_precision

__all__ = ["OnnxRuntimeBackend", "default_providers"]

# Providers never picked by default: Azure runs remote endpoints, and the TensorRT EP builds
# engines on first use (minutes) -- pass it explicitly, or use the "tensorrt" backend.
_NOT_DEFAULT = ("AzureExecutionProvider", "TensorrtExecutionProvider")
_CPU = "CPUExecutionProvider"

Provider = str | tuple[str, dict[str, Any]]


def default_providers(available: Sequence[str]) -> list[str]:
    """The installed providers in ONNX Runtime's priority order, CPU last, minus Azure/TensorRT."""
    chosen = [p for p in available if p not in _NOT_DEFAULT and p != _CPU]
    return [*chosen, _CPU]


class OnnxRuntimeBackend(BundleBackend):
    """Run a bundle with ONNX Runtime.

    Args:
        bundle_dir: bundle folder (validated with :func:`edgesam.export.load_bundle`).
        providers: execution providers in priority order, names or ``(name, options)`` pairs,
            e.g. ``["CUDAExecutionProvider", "CPUExecutionProvider"]``. Default: every installed
            provider except Azure and TensorRT, CPU last (see :func:`default_providers`).
        intra_op_threads: threads inside one operator (ORT default: one per physical core).
        inter_op_threads: threads across independent operators.
        session_options: an ``onnxruntime.SessionOptions`` to start from (thread counts given
            here are set on it).
        precision: ``"fp32"`` or None (the bundle's own). ONNX Runtime runs the float parts of
            every bundle in fp32 (its CPU provider has no bf16/fp16 switch); a lower precision is
            refused with a ``ValueError`` naming the backends that offer it.
        check: accepted for the same signature as the other backends (nothing is lowered here).
        memory: ``"default"`` (arena, no pre-planned memory pattern; the decoder runs batches
            of prompts ``DECODER_CHUNK`` at a time, so a batch of boxes or a segment-everything
            pass does not grow its arena past that), ``"low"`` (the same chunks, no arena; the
            encoder's activations in one pre-planned block per run, the decoder's tensor by
            tensor; C heap trimmed after each encoder run: smallest footprint, slower) or
            ``"runtime"`` (ONNX Runtime's defaults: arena and memory pattern keep their
            high-water mark). Overrides those two fields of ``session_options``. See
            :mod:`edgesam.runtimes.memory`.

    Attributes:
        providers: the providers the encoder session actually uses.
        precision, effective_precision: ``"fp32"``.
        memory: the memory mode.
        decoder_chunk: most prompts per decoder run (None: a batch runs whole, ``"runtime"``).

    ``InferenceSession.run`` is thread-safe, so one backend serves many predictors/threads.
    """

    name = "onnxruntime"

    def __init__(
        self,
        bundle_dir: str | os.PathLike[str] | Bundle,
        *,
        providers: Sequence[Provider] | None = None,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        session_options: Any = None,
        precision: str | None = None,
        check: bool | float = True,
        memory: str = "default",
    ) -> None:
        self.memory = check_memory_mode(memory)
        ort = import_runtime("onnxruntime", backend="onnxruntime", extra="onnxruntime")
        super().__init__(bundle_dir)
        asked = normalize_precision(precision)
        if asked not in (None, "fp32"):
            raise ValueError(
                f"the onnxruntime backend runs bundles in fp32 only, got precision={precision!r}; "
                "use backend='openvino' (bf16/fp16) or 'tensorrt' (fp16) for a lower float precision"
            )
        self.precision = self.effective_precision = "fp32"
        available = list(ort.get_available_providers())
        chosen: list[Provider] = default_providers(available) if providers is None else list(providers)
        names = [p if isinstance(p, str) else p[0] for p in chosen]
        unknown = [n for n in names if n not in available]
        if unknown or not names:
            raise ValueError(
                f"execution provider(s) {unknown or '[]'} not available in this onnxruntime "
                f"{ort.__version__}; available: {available}"
            )
        options = session_options if session_options is not None else ort.SessionOptions()
        for attr, value in (("intra_op_num_threads", intra_op_threads), ("inter_op_num_threads", inter_op_threads)):
            if value is not None:
                if int(value) < 0:
                    raise ValueError(f"{attr} must be >= 0 (0 = onnxruntime default), got {value}")
                setattr(options, attr, int(value))
        if self.memory != "runtime":  # no pre-planned block beside the arena: that doubles the footprint
            options.enable_mem_pattern = False
        if self.memory == "low":
            options.enable_cpu_mem_arena = False
        self._decoder = self._session(ort, "decoder", options, chosen)
        if self.memory == "low":
            # the encoder's activations in one pre-planned block, allocated and returned whole each run:
            # the same footprint between runs as tensor-by-tensor allocation, less time faulting pages in
            options.enable_mem_pattern = True
        self._encoder = self._session(ort, "encoder", options, chosen)
        self.providers: list[str] = list(self._encoder.get_providers())
        self.decoder_chunk: int | None = None if self.memory == "runtime" else DECODER_CHUNK

    def _session(self, ort: Any, role: str, options: Any, providers: list[Provider]) -> Any:
        path = self.bundle.path(role)
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        want_in, want_out = self.io_names(role)
        check_io_names(role, path, [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()],
                       want_in, want_out)  # fmt: skip
        return session

    def __repr__(self) -> str:
        return f"OnnxRuntimeBackend({str(self.bundle.root)!r}, providers={self.providers}, memory={self.memory!r})"

    def _run(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = list(self.io_names(role)[1])
        session = self._encoder if role == "encoder" else self._decoder
        out = dict(zip(names, session.run(names, feeds)))
        if role == "encoder" and self.memory == "low":
            trim_heap()
        return out
