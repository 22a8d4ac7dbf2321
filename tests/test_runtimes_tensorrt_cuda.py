"""TensorRT backend's CUDA runtime layer: error path, stream handles, worker cleanup.

cuda-python installs anywhere (``edgesam[dev]``), so the CUDA error paths run the real bindings
(on a machine without a GPU every call fails, which is the path under test). Only the
stream-cleanup order, which needs a stream to exist, uses a recording CUDA runtime stand-in:
without a GPU every real CUDA call fails before a stream exists.
"""

from __future__ import annotations

import enum
import gc
import sys
from types import SimpleNamespace
from typing import Any

import pytest


def _cudart() -> Any:
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed (pip install cuda-python)")
    from edgesam.runtimes.tensorrt_backend import _import_cudart

    return _import_cudart()


def test_cuda_errors_become_exceptions_that_name_the_error() -> None:
    from edgesam.runtimes.tensorrt_backend import CudaError, _Cuda

    cuda = _Cuda(_cudart())
    err, count = cuda.rt.cudaGetDeviceCount()
    if err == cuda.rt.cudaError_t.cudaSuccess and count > 0:
        pytest.skip("a CUDA GPU is visible: the error path is not reachable this way")
    with pytest.raises(CudaError, match=r"^CUDA error cudaError\w+: \w") as info:
        cuda(cuda.rt.cudaGetDeviceCount())
    assert info.value.name == str(err.name)
    if info.value.name == "cudaErrorInsufficientDriver":
        assert "cuda-python>=12.6,<13" in str(info.value)  # the JetPack hint
    assert cuda(cuda.rt.cudaGetErrorString(err)) == cuda.rt.cudaGetErrorString(err)[1]  # success unwraps


def test_worker_that_fails_to_start_releases_everything_and_deletes_quietly() -> None:
    from edgesam.runtimes.tensorrt_backend import CudaError, _Cuda, _Worker

    cuda = _Cuda(_cudart())
    if cuda.rt.cudaGetDeviceCount()[0] == cuda.rt.cudaError_t.cudaSuccess:
        pytest.skip("a CUDA GPU is visible: the worker would start")
    caught: list[Any] = []
    old, sys.unraisablehook = sys.unraisablehook, caught.append
    try:
        with pytest.raises(CudaError):
            _Worker(cuda, 0, {})
        gc.collect()
    finally:
        sys.unraisablehook = old
    assert caught == [], [str(c.exc_value) for c in caught]


def test_stream_handle_uses_the_native_handle_helper() -> None:
    import warnings

    from edgesam.runtimes.tensorrt_backend import stream_handle

    rt = _cudart()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # int(cuda_object) is deprecated in cuda-bindings 12.9.1+ / 13
        assert stream_handle(rt.cudaStream_t(0x1234)) == 0x1234
        assert stream_handle(rt.cudaStream_t()) == 0


class _RecordingRuntime:
    """CUDA runtime stand-in (see the module docstring) that hands out streams and buffers."""

    class cudaError_t(enum.IntEnum):  # noqa: N801 - mirrors cuda.bindings.runtime
        cudaSuccess = 0

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def cudaSetDevice(self, device: int) -> Any:  # noqa: N802
        return (self.cudaError_t.cudaSuccess,)

    def cudaStreamCreate(self) -> Any:  # noqa: N802
        self.calls.append(("create", "stream-1"))
        return self.cudaError_t.cudaSuccess, "stream-1"

    def cudaStreamDestroy(self, stream: Any) -> Any:  # noqa: N802
        self.calls.append(("destroy", stream))
        return (self.cudaError_t.cudaSuccess,)

    def cudaMalloc(self, nbytes: int) -> Any:  # noqa: N802
        self.calls.append(("malloc", nbytes))
        return self.cudaError_t.cudaSuccess, 4096 + len(self.calls)

    def cudaFree(self, ptr: int) -> Any:  # noqa: N802
        self.calls.append(("free", ptr))
        return (self.cudaError_t.cudaSuccess,)


def test_worker_destroys_its_stream_when_a_context_cannot_be_made() -> None:
    from edgesam.runtimes.tensorrt_backend import _Cuda, _Worker

    rt = _RecordingRuntime()
    good = SimpleNamespace(create_execution_context=lambda: "context")
    bad = SimpleNamespace(create_execution_context=lambda: None)  # TensorRT returns None when out of memory
    with pytest.raises(RuntimeError, match="execution context for the decoder engine"):
        _Worker(_Cuda(rt), 0, {"encoder": good, "decoder": bad})
    assert rt.calls == [("create", "stream-1"), ("destroy", "stream-1")]

    worker = _Worker(_Cuda(rt), 0, {"encoder": good})
    small = worker.buffer("encoder", "image", 100)
    assert worker.buffer("encoder", "image", 200) == small  # fits the 256-byte minimum
    big = worker.buffer("encoder", "image", 1000)
    assert ("free", small) in rt.calls and big != small
    worker.close()
    worker.close()  # idempotent
    del worker
    gc.collect()
    assert rt.calls.count(("destroy", "stream-1")) == 2  # once for each worker
    assert [c for c in rt.calls if c[0] == "free"] == [("free", small), ("free", big)]
