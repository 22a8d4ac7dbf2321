"""OpenVINO backend: runs a bundle on CPU / GPU / NPU / AUTO through OpenVINO Runtime.

openvino is imported when the backend is constructed (``pip install "edgesam[openvino]"``).

Precision: faithful by default. OpenVINO's CPU plugin silently runs bf16 on CPUs with
AMX/AVX-512-BF16 unless ``INFERENCE_PRECISION_HINT`` says otherwise, so the backend always sets
it: f32 for an fp32 bundle (and for the float parts of an INT8 bundle, unless the bundle
records another ``float_precision``). ``precision="bf16"`` / ``"fp16"`` asks for less, and is
then checked against the bundle's golden outputs (:mod:`edgesam.runtimes.precision`). What the
compiled models actually use is in :attr:`OpenVINOBackend.effective_precision`.

Caching: the ONNX files are converted to OpenVINO IR once and kept in ``cache_dir``
(default ``<bundle>/openvino_cache``, or a per-user cache folder when the bundle folder is
read-only), keyed by the ONNX file's sha256 and the OpenVINO version; the same folder is
OpenVINO's compiled-blob cache (``CACHE_DIR``), which makes later loads faster still.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgesam.bundle.format import Bundle
from edgesam.runtimes.base import import_runtime
from edgesam.runtimes.bundle_backend import BundleBackend, check_io_names
from edgesam.runtimes.cache import AUTO, resolve_cache_dir
from edgesam.runtimes.memory import DECODER_CHUNK, check_memory_mode, trim_heap
from edgesam.runtimes.precision import OPENVINO_NAMES, bundle_float_precision, check_precision, normalize_precision

__all__ = ["OpenVINOBackend", "PRECISION_HINTS"]

PRECISION_HINTS = ("f32", "bf16", "f16")


class OpenVINOBackend(BundleBackend):
    """Run a bundle with OpenVINO Runtime.

    Args:
        bundle_dir: bundle folder.
        device: OpenVINO device name: ``"CPU"``, ``"GPU"``, ``"NPU"``, ``"AUTO"``, ...
        performance_hint: ``"LATENCY"`` (default), ``"THROUGHPUT"`` or ``"CUMULATIVE_THROUGHPUT"``.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``; None (default): the bundle's own
            (``"fp32"`` for an fp32 bundle). A precision below the bundle's is checked against
            its golden outputs at load (see ``check``).
        check: for a lowered precision, True (default) raises
            :class:`~edgesam.runtimes.precision.PrecisionCheckError` when the golden mask IoU is
            below the bundle's tolerance; a float sets the bound; False skips the check.
        precision_hint: deprecated spelling of ``precision`` (``"f32"``, ``"bf16"``, ``"f16"``).
        cache_dir: ``"auto"`` (default; see :func:`edgesam.runtimes.cache.resolve_cache_dir`), a
            folder, or None (no cache).
        config: extra OpenVINO properties passed to ``compile_model``.
        memory: ``"default"`` (the encoder's intermediate buffers are released after each run,
            ``CompiledModel.release_memory``; the decoder runs a batch of prompts
            ``DECODER_CHUNK`` at a time), ``"low"`` (that, and the C heap trimmed after each
            encoder run) or ``"runtime"`` (OpenVINO keeps them between runs). See
            :mod:`edgesam.runtimes.memory`.

    Attributes:
        effective_precision: inference precision of the compiled encoder (``"f32"``, ``"bf16"``,
            ``"f16"``), read back from OpenVINO.
        effective_precisions: the same for ``{"encoder": ..., "decoder": ...}``.
        cache_dir: the cache folder in use, or None.
        precision: the precision asked for (``"fp32"``, ``"bf16"``, ``"fp16"``).
        golden: the :class:`~edgesam.runtimes.golden.GoldenResult` of the precision check, or None.
        memory: the memory mode.
        decoder_chunk: most prompts per decoder run (None: a batch runs whole, ``"runtime"``).

    Each thread gets its own InferRequest per model, so one backend serves many threads.
    """

    name = "openvino"

    def __init__(
        self,
        bundle_dir: str | os.PathLike[str] | Bundle,
        *,
        device: str = "CPU",
        performance_hint: str = "LATENCY",
        precision: str | None = None,
        check: bool | float = True,
        precision_hint: str | None = None,
        cache_dir: str | os.PathLike[str] | None = AUTO,
        config: Mapping[str, Any] | None = None,
        memory: str = "default",
    ) -> None:
        self.memory = check_memory_mode(memory)
        self.decoder_chunk: int | None = None if self.memory == "runtime" else DECODER_CHUNK
        ov = import_runtime("openvino", backend="openvino", extra="openvino")
        super().__init__(bundle_dir)
        if precision_hint is not None:
            if precision_hint not in PRECISION_HINTS:
                raise ValueError(f"precision_hint must be one of {PRECISION_HINTS} or None, got {precision_hint!r}")
            warnings.warn("precision_hint= is deprecated; use precision='fp32', 'bf16' or 'fp16'",
                          DeprecationWarning, stacklevel=2)  # fmt: skip
            if precision is not None and normalize_precision(precision) != normalize_precision(precision_hint):
                raise ValueError(f"precision={precision!r} and precision_hint={precision_hint!r} disagree")
            precision = precision or precision_hint
        from_config = dict(config or {}).get("INFERENCE_PRECISION_HINT")
        if precision is None and from_config is not None:
            precision = str(getattr(from_config, "get_type_name", lambda: from_config)())
        self.precision = normalize_precision(precision) or bundle_float_precision(self.bundle)
        self._ov = ov
        self._core = ov.Core()
        self.device = device
        self.cache_dir = resolve_cache_dir(self.bundle, cache_dir, "openvino")
        if self.cache_dir is not None:
            self._core.set_property({"CACHE_DIR": str(self.cache_dir / "compiled")})
        properties: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint, **(config or {})}
        # `precision` applies to the encoder, where nearly all the time goes. The decoder always runs
        # f32: it is a few ms per prompt, and OpenVINO 2026.4's CPU plugin crashes (segfault / double
        # free) running the factored decoder graph in bf16 on some prompt batches.
        per_role = {"encoder": OPENVINO_NAMES[self.precision], "decoder": OPENVINO_NAMES["fp32"]}
        self._compiled = {role: self._compile(role, {**properties, "INFERENCE_PRECISION_HINT": per_role[role]})
                          for role in ("encoder", "decoder")}  # fmt: skip
        self.effective_precisions = {role: self._precision(c) for role, c in self._compiled.items()}
        self.effective_precision = self.effective_precisions["encoder"]
        self._local = threading.local()
        self._in_flight, self._flight_lock = 0, threading.Lock()  # encoder runs under way
        self.golden = check_precision(self, self.bundle, self.precision, check)
        if self.memory != "runtime":
            trim_heap()  # conversion and compilation leave freed blocks behind on the heap

    def _read(self, role: str) -> Any:
        """The model for ``role``: cached IR if present, else the ONNX file (then cached as IR)."""
        onnx_path = self.bundle.path(role)
        if onnx_path.suffix == ".xml":  # OpenVINO IR stored in the bundle (edgesam quantize --backend openvino)
            return self._core.read_model(str(onnx_path))
        if self.cache_dir is None:
            return self._core.read_model(str(onnx_path))
        version = self._ov.get_version().split("-")[0]
        stem = f"{role}-{self.bundle.sha256(role)[:16]}-ov{version}"
        xml, weights = self.cache_dir / f"{stem}.xml", self.cache_dir / f"{stem}.bin"
        if xml.is_file() and weights.is_file():
            try:
                return self._core.read_model(str(xml), str(weights))
            except RuntimeError:
                pass  # damaged cache entry: convert again
        model = self._core.read_model(str(onnx_path))
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".ir-", dir=self.cache_dir))
            self._ov.save_model(model, str(tmp / "m.xml"), compress_to_fp16=False)
            os.replace(tmp / "m.bin", weights)
            os.replace(tmp / "m.xml", xml)  # the .xml appears last: its presence means complete
            os.rmdir(tmp)
        except (OSError, RuntimeError) as exc:
            warnings.warn(f"could not cache OpenVINO IR in {self.cache_dir}: {exc}", stacklevel=4)
        return model

    def _compile(self, role: str, properties: dict[str, Any]) -> Any:
        model = self._read(role)
        want_in, want_out = self.io_names(role)
        names_in = [p.get_any_name() for p in model.inputs]
        names_out = [p.get_any_name() for p in model.outputs]
        check_io_names(role, self.bundle.path(role), names_in, names_out, want_in, want_out)
        return self._core.compile_model(model, self.device, properties)

    @staticmethod
    def _precision(compiled: Any) -> str:
        try:
            value = compiled.get_property("INFERENCE_PRECISION_HINT")
        except RuntimeError:  # devices that do not report it (e.g. some AUTO configurations)
            return "unknown"
        return value.get_type_name() if hasattr(value, "get_type_name") else str(value)

    def __repr__(self) -> str:
        return (
            f"OpenVINOBackend({str(self.bundle.root)!r}, device={self.device!r}, "
            f"effective_precision={self.effective_precisions})"
        )

    def _request(self, role: str) -> Any:
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {}
        if role not in requests:
            requests[role] = self._compiled[role].create_infer_request()
        return requests[role]

    def _run(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.io_names(role)[1]
        if role != "encoder" or self.memory == "runtime":
            result = self._request(role).infer(feeds)  # copies: the request's buffers are reused
            return {name: np.array(result[name], dtype=np.float32, copy=True) for name in names}
        with self._flight_lock:
            self._in_flight += 1
        try:
            result = self._request(role).infer(feeds)
            out = {name: np.array(result[name], dtype=np.float32, copy=True) for name in names}
            del result
        finally:
            with self._flight_lock:  # release only when no other thread's encoder run is under way
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._compiled[role].release_memory()
                    if self.memory == "low":
                        trim_heap()
        return out
