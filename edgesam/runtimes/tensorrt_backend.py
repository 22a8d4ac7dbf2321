"""TensorRT backend: builds engines from a bundle's ONNX files and runs them (TensorRT 10.x / 11.x).

Needs an NVIDIA GPU, TensorRT and a cuda-python whose CUDA major matches the driver: desktops
``pip install "edgesam[tensorrt]"`` (TensorRT 11, cuda-python 13); Jetson (JetPack 6) uses
JetPack's own TensorRT 10.3 and ``pip install "edgesam[jetson]"`` (cuda-python 12.x: 13.x
needs a CUDA 13 driver and fails on JetPack 6 with ``cudaErrorInsufficientDriver``).
Device memory and streams go through the CUDA runtime bindings of cuda-python
(``cuda.bindings.runtime``, or ``cuda.cudart`` on releases before 12.6): the smallest
dependency that gives numpy in / numpy out with no torch and no pycuda context management.
Engines are built strongly typed (see :mod:`edgesam.runtimes.tensorrt_engine`): the bundle's
graph decides the precision, the same on TensorRT 10 and 11.

Engines are built on first use and cached (see :func:`edgesam.runtimes.cache.resolve_cache_dir`)
under names made of the ONNX sha256, GPU name, TensorRT version, precision and decoder profile
(:func:`edgesam.runtimes.tensorrt_engine.engine_cache_name`). After loading, the backend runs
the bundle's golden inputs and refuses engines whose masks drift from torch (TensorRT FP16 is
known to break TinyViT encoders).

Thread safety: every thread gets its own execution contexts, CUDA stream and device buffers.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgesam.bundle.format import Bundle
from edgesam.runtimes.base import BackendUnavailableError, import_runtime
from edgesam.runtimes.bundle_backend import BundleBackend, check_io_names
from edgesam.runtimes.cache import AUTO, resolve_cache_dir
from edgesam.runtimes.golden import check_golden
from edgesam.runtimes.precision import normalize_precision
from edgesam.runtimes.tensorrt_engine import (
    TRT_PRECISIONS,
    DecoderProfile,
    build_engine,
    decoder_profile_shapes,
    engine_cache_name,
)

__all__ = ["GOLDEN_MASK_IOU", "CudaError", "TensorRTBackend", "default_precision", "stream_handle"]

#: Minimum mean mask IoU vs the bundle's torch reference, per encoder precision.
GOLDEN_MASK_IOU = {"fp32": 0.99, "fp16": 0.95, "int8": 0.90}


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6 (and 13.x)
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[no-redef]  # older cuda-python
        except ImportError as exc:
            raise BackendUnavailableError(
                f"The 'tensorrt' backend needs cuda-python for device memory ({exc}). "
                "Install it with: pip install 'edgesam[tensorrt]'"
            ) from exc
    return cudart


class CudaError(RuntimeError):
    """A CUDA runtime call failed; ``name`` is the ``cudaError_t`` member name."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def _bindings_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("cuda-bindings", "cuda-python"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return "cuda-python (version unknown)"


class _Cuda:
    """The few CUDA runtime calls the backend needs, with errors turned into :class:`CudaError`."""

    def __init__(self, cudart: Any) -> None:
        self.rt = cudart

    def __call__(self, result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            _, text = self.rt.cudaGetErrorString(err)
            text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
            name = str(getattr(err, "name", err))
            hint = ""
            if name == "cudaErrorInsufficientDriver":
                hint = (f" (no NVIDIA driver, or one older than the CUDA runtime in {_bindings_version()}; "
                        "cuda-python 13.x needs a CUDA 13 driver: on JetPack 6 / CUDA 12 drivers install "
                        "'cuda-python>=12.6,<13', e.g. pip install 'edgesam[jetson]')")  # fmt: skip
            raise CudaError(f"CUDA error {name}: {text}{hint}", name)
        return rest[0] if len(rest) == 1 else tuple(rest)

    def gpu_name(self, device: int) -> str:
        props = self(self.rt.cudaGetDeviceProperties(device))
        name = props.name
        return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).rstrip("\x00").strip()


def stream_handle(stream: Any) -> int:
    """The integer address of a ``cudaStream_t``, for ``execute_async_v3``.

    cuda-bindings 12.9.1+ and 13.x deprecate ``int(cuda_object)`` in favour of
    ``cuda.bindings.utils.get_cuda_native_handle``; older releases only have ``int()``.
    """
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int(stream)
    return int(get_cuda_native_handle(stream))


class _Worker:
    """One thread's execution contexts, stream and growable device buffers.

    A failure part-way through construction releases what was already made (the stream);
    :meth:`close` is idempotent and ``__del__`` is safe on a half-built worker.
    """

    def __init__(self, cuda: _Cuda, device: int, engines: Mapping[str, Any]) -> None:
        self.cuda = cuda
        self.stream: Any = None
        self.contexts: dict[str, Any] = {}
        self.buffers: dict[tuple[str, str], tuple[int, int]] = {}  # -> (pointer, capacity)
        cuda(cuda.rt.cudaSetDevice(device))
        self.stream = cuda(cuda.rt.cudaStreamCreate())
        try:
            for role, engine in engines.items():
                context = engine.create_execution_context()
                if context is None:
                    raise RuntimeError(f"TensorRT could not create an execution context for the {role} engine")
                self.contexts[role] = context
        except BaseException:
            self.close()
            raise

    def buffer(self, role: str, name: str, nbytes: int) -> int:
        ptr, capacity = self.buffers.get((role, name), (0, 0))
        if nbytes > capacity:
            if ptr:
                del self.buffers[(role, name)]
                self.cuda(self.cuda.rt.cudaFree(ptr))
            ptr = int(self.cuda(self.cuda.rt.cudaMalloc(max(nbytes, 256))))
            self.buffers[(role, name)] = (ptr, max(nbytes, 256))
        return ptr

    def close(self) -> None:
        """Drop the contexts, free the buffers, destroy the stream (each once); CUDA errors are ignored."""
        rt = self.cuda.rt
        self.contexts = {}
        buffers, self.buffers = self.buffers, {}
        stream, self.stream = self.stream, None
        for ptr, _ in buffers.values():
            rt.cudaFree(ptr)
        if stream is not None:
            rt.cudaStreamDestroy(stream)

    def __del__(self) -> None:  # best effort: the process may be shutting down
        try:
            if getattr(self, "cuda", None) is not None and hasattr(self, "buffers"):
                self.close()
        except Exception:  # noqa: BLE001
            pass


def default_precision(metadata: Mapping[str, Any], role: str = "encoder") -> str:
    """The engine precision a bundle's ``role`` graph has (strongly typed builds take it from the graph).

    ``"int8"`` for the Q/DQ graphs of a bundle quantized for TensorRT (the decoder only when
    the recipe quantized it), ``"fp16"`` for the graphs of an FP16 bundle
    (``edgesam export --precision fp16``) that were converted, ``"fp32"`` otherwise.
    """
    quant = metadata.get("quantization") or {}
    graphs = quant.get("graphs") or {}
    if metadata.get("precision") == "int8" and "tensorrt" in (quant.get("runs_on") or ()):
        return "int8" if role == "encoder" or role in graphs else "fp32"
    if metadata.get("precision") == "fp16":
        return "fp16" if role in graphs else "fp32"
    return "fp32"


class TensorRTBackend(BundleBackend):
    """Run a bundle with TensorRT engines built from its ONNX files.

    Args:
        bundle_dir: bundle folder.
        precision: encoder precision, ``"fp32"``, ``"fp16"`` or ``"int8"``. Engines are built
            strongly typed, so it must be the graph's own: ``"int8"`` needs a Q/DQ bundle
            (``edgesam quantize --backend tensorrt``), ``"fp16"`` an FP16 bundle
            (``edgesam export --precision fp16``); anything else raises ``ValueError``.
            Default: the bundle's own (:func:`default_precision`).
        decoder_precision: decoder precision; default: the bundle's decoder graph's own
            (``"fp32"`` unless the recipe quantized or converted the decoder).
        decoder_profile: range of prompts ``B`` and points ``N`` the decoder engine accepts.
        device: CUDA device index.
        cache_dir: ``"auto"``, a folder or None (see :func:`edgesam.runtimes.cache.resolve_cache_dir`).
        workspace_bytes: builder workspace limit.
        golden_check: compare with the bundle's torch reference after loading and raise
            :class:`~edgesam.runtimes.golden.GoldenMismatchError` below :data:`GOLDEN_MASK_IOU`.
        check: the same switch under the name every backend uses (wins over ``golden_check``).

    Attributes:
        gpu_name, trt_version: what the engines were built for.
        golden: the :class:`~edgesam.runtimes.golden.GoldenResult` (None if not checked).
    """

    name = "tensorrt"

    def __init__(
        self,
        bundle_dir: str | os.PathLike[str] | Bundle,
        *,
        precision: str | None = None,
        decoder_precision: str | None = None,
        decoder_profile: DecoderProfile | None = None,
        device: int = 0,
        cache_dir: str | os.PathLike[str] | None = AUTO,
        workspace_bytes: int = 1 << 30,
        golden_check: bool = True,
        check: bool | None = None,
    ) -> None:
        trt = import_runtime("tensorrt", backend="tensorrt", extra="tensorrt")
        golden_check = golden_check if check is None else bool(check)  # check=: the word every backend takes
        precision = normalize_precision(precision, allowed=TRT_PRECISIONS) if precision else precision
        cuda = _Cuda(_import_cudart())
        super().__init__(bundle_dir)
        precision = precision or default_precision(self.bundle.metadata, "encoder")
        dec_precision = decoder_precision or default_precision(self.bundle.metadata, "decoder")
        for value in (precision, dec_precision):
            if value not in TRT_PRECISIONS:
                raise ValueError(f"precision must be one of {TRT_PRECISIONS}, got {value!r}")
        try:
            count = cuda(cuda.rt.cudaGetDeviceCount())
        except RuntimeError as exc:
            raise BackendUnavailableError(f"The 'tensorrt' backend needs a CUDA GPU: {exc}") from exc
        if not 0 <= device < count:
            raise BackendUnavailableError(f"CUDA device {device} not found ({count} GPU(s) visible)")
        cuda(cuda.rt.cudaSetDevice(device))
        self._trt, self._cuda, self.device = trt, cuda, device
        self.gpu_name, self.trt_version = cuda.gpu_name(device), str(trt.__version__)
        self.precision, self.decoder_precision = precision, dec_precision
        self.decoder_profile = decoder_profile or DecoderProfile()
        self.cache_dir = resolve_cache_dir(self.bundle, cache_dir, "tensorrt")
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        h, w = self.embedding_shape[2:]
        self._engines = {
            "encoder": self._engine("encoder", precision, None, None, workspace_bytes),
            "decoder": self._engine("decoder", dec_precision, self.decoder_profile,
                                    decoder_profile_shapes((h, w), self.decoder_profile), workspace_bytes),
        }  # fmt: skip
        self._io = {role: self._io_table(role, engine) for role, engine in self._engines.items()}
        self._local = threading.local()
        self.golden = check_golden(self, min_mask_iou=GOLDEN_MASK_IOU[precision]) if golden_check else None

    # ------------------------------------------------------------------ engines
    def _engine(self, role: str, precision: str, profile: DecoderProfile | None, shapes: Any, workspace: int) -> Any:
        name = engine_cache_name(role, self.bundle.sha256(role), gpu_name=self.gpu_name,
                                 trt_version=self.trt_version, precision=precision, profile=profile)  # fmt: skip
        cached = self.cache_dir / name if self.cache_dir is not None else None
        if cached is not None and cached.is_file():
            engine = self._runtime.deserialize_cuda_engine(cached.read_bytes())
            if engine is not None:
                return engine  # else: stale or damaged, rebuild below
        blob = build_engine(self._trt, self._logger, self.bundle.path(role), precision=precision,
                            profile_shapes=shapes, workspace_bytes=workspace)  # fmt: skip
        if cached is not None:
            _write_atomic(cached, blob)
        engine = self._runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise RuntimeError(f"TensorRT could not deserialize the engine it just built for {role}")
        return engine

    def _io_table(self, role: str, engine: Any) -> dict[str, tuple[bool, Any]]:
        """``{tensor name: (is_input, numpy dtype)}``; checks the names against the bundle contract."""
        trt = self._trt
        table = {}
        for i in range(engine.num_io_tensors):
            tname = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT
            table[tname] = (is_input, np.dtype(trt.nptype(engine.get_tensor_dtype(tname))))
        want_in, want_out = self.io_names(role)
        check_io_names(role, self.bundle.path(role), [n for n, v in table.items() if v[0]],
                       [n for n, v in table.items() if not v[0]], want_in, want_out)  # fmt: skip
        return table

    def _worker(self) -> _Worker:
        worker = getattr(self._local, "worker", None)
        if worker is None:
            worker = self._local.worker = _Worker(self._cuda, self.device, self._engines)
        return worker

    def _run(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rt, cuda, worker = self._cuda.rt, self._cuda, self._worker()
        context = worker.contexts[role]
        keep = []  # host arrays must outlive the asynchronous copies
        for tname, (is_input, dtype) in self._io[role].items():
            if not is_input:
                continue
            host = np.ascontiguousarray(feeds[tname], dtype=dtype)  # int32 where the engine wants it
            keep.append(host)
            if not context.set_input_shape(tname, host.shape):
                raise ValueError(f"TensorRT {role} rejects {tname} of shape {host.shape}")
            ptr = worker.buffer(role, tname, host.nbytes)
            cuda(rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes,
                                    rt.cudaMemcpyKind.cudaMemcpyHostToDevice, worker.stream))  # fmt: skip
            context.set_tensor_address(tname, ptr)
        outputs = {}
        for tname, (is_input, dtype) in self._io[role].items():
            if not is_input:
                outputs[tname] = np.empty(tuple(context.get_tensor_shape(tname)), dtype=dtype)
                context.set_tensor_address(tname, worker.buffer(role, tname, outputs[tname].nbytes))
        if not context.execute_async_v3(stream_handle(worker.stream)):
            raise RuntimeError(f"TensorRT failed to run the {role} engine")
        for tname, host in outputs.items():
            ptr = worker.buffer(role, tname, host.nbytes)
            cuda(rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes,
                                    rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, worker.stream))  # fmt: skip
        cuda(rt.cudaStreamSynchronize(worker.stream))
        del keep
        return {k: v.astype(np.float32, copy=False) for k, v in outputs.items()}

    # ------------------------------------------------------------------ Backend
    def __repr__(self) -> str:
        return (
            f"TensorRTBackend({str(self.bundle.root)!r}, gpu={self.gpu_name!r}, trt={self.trt_version}, "
            f"precision={self.precision!r}, decoder_precision={self.decoder_precision!r})"
        )

    def _decoder_feeds(self, *arrays: Any) -> dict[str, np.ndarray]:
        """The shared checks, plus: ``B`` and ``N`` must fit :attr:`decoder_profile`."""
        feeds = super()._decoder_feeds(*arrays)
        b, n, _ = feeds["point_coords"].shape
        if not self.decoder_profile.accepts(b, n):
            raise ValueError(
                f"{b} prompts x {n} points is outside the decoder engine's profile {self.decoder_profile}; "
                f"construct the backend with a larger decoder_profile=DecoderProfile(...)"
            )
        return feeds


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        warnings.warn(f"could not cache the TensorRT engine at {path}: {exc}", stacklevel=3)
