"""Per-backend quantization engines used by :func:`edgesam.quantization.quantize.quantize_bundle`.

An engine quantizes one graph of a bundle (``"encoder"`` or ``"decoder"``) into a folder,
ranks that graph's layers by quantization sensitivity, and opens a finished bundle for the
accuracy gate (reference fp32 and quantized candidate). ONNX Runtime and TensorRT share the
Q/DQ ONNX path; OpenVINO goes through NNCF and writes IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgesam.quantization.recipes import QuantRecipe
from edgesam.runtimes.base import BackendUnavailableError, import_runtime

__all__ = ["GraphJob", "QuantEngine", "make_engine"]

Feeds = Sequence[Mapping[str, np.ndarray]]


@dataclass
class GraphJob:
    """One graph to quantize: its role, float ONNX file, calibration feeds and scratch folder."""

    role: str
    source: Path
    feeds: list[dict[str, np.ndarray]]
    workdir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # the last quantized in-memory model, where the engine has one (OpenVINO)


class QuantEngine:
    """Base engine: Q/DQ ONNX through ONNX Runtime's quantizer (used for ``onnxruntime``)."""

    backend = "onnxruntime"
    runs_on: tuple[str, ...] = ("onnxruntime",)

    def __init__(self, recipe: QuantRecipe) -> None:
        self.recipe = recipe
        self.require()

    def require(self) -> None:
        """Raise :class:`BackendUnavailableError` unless the quantization toolchain imports."""
        import_runtime("onnx", backend=self.backend, extra="onnxruntime")
        import_runtime("onnxruntime", backend=self.backend, extra="onnxruntime")
        try:
            import onnxruntime.quantization  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError(f"onnxruntime.quantization could not be imported ({exc})") from exc

    def file_names(self, role: str) -> list[str]:
        """Bundle file names this engine writes for ``role`` (the first is the model file)."""
        return [f"{role}.onnx"]

    def quantize(self, job: GraphJob, folder: Path, keep_float: Sequence[str] = ()) -> None:
        """Write the quantized ``job`` graph into ``folder`` and fill ``job.summary``."""
        import onnx

        from edgesam.quantization.onnxruntime_int8 import quantize_onnx

        result = quantize_onnx(job.source, folder / self.file_names(job.role)[0], job.feeds, self.recipe,
                               workdir=job.workdir, keep_float=keep_float)  # fmt: skip
        prepared = onnx.load(str(job.workdir / "prepared.onnx"), load_external_data=False)
        compute = [n.name for n in prepared.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
        done = set(result.quantized_nodes)
        job.summary = {
            "int8_ops": sum(1 for n in compute if n in done),
            "compute_ops": len(compute),
            "quantized_nodes": len(result.quantized_nodes),
            "float_nodes": list(result.excluded_nodes),
            "lowered_matmuls": result.lowered_matmuls,
            "fused_gelu": result.fused_gelu,
        }
        self.check(folder / self.file_names(job.role)[0])

    def check(self, path: Path) -> None:
        """Backend-specific validation of a written model (none for ONNX Runtime)."""

    def float_precisions(self) -> tuple[str, ...]:
        """Precisions the float parts of a quantized bundle can run at here, preferred first."""
        return ("fp32",)

    def quantizable(self, job: GraphJob) -> list[str]:
        """Layers the search may keep in float."""
        import onnx

        from edgesam.quantization.ort_graph import quantizable_nodes

        model = onnx.load(str(job.workdir / "prepared.onnx"))
        ops = [t for t in self.recipe.quantization.op_types if t != "all"] or ["Conv", "MatMul", "Gemm"]
        return quantizable_nodes(model, ops, activation_matmuls_too=self.recipe.quantization.quantize_activation_matmuls)

    def rank(self, job: GraphJob, count: int = 2) -> list[tuple[str, float]]:
        """Layers of ``job`` by decreasing sensitivity (on the first ``count`` feeds)."""
        from edgesam.quantization.onnxruntime_int8 import quantize_onnx
        from edgesam.quantization.sensitivity import rank_onnx_layers

        qdq = job.workdir / "ranking-qdq.onnx"
        plain = self.recipe.replace(lower_matmuls=False)
        result = quantize_onnx(job.source, qdq, job.feeds, plain, workdir=job.workdir)
        return rank_onnx_layers(job.workdir / "prepared.onnx", qdq, job.feeds[:count], result.quantized_nodes)

    def reference(self, bundle_dir: Path) -> Any:
        """The fp32 bundle on this backend's runtime (the gate's reference)."""
        from edgesam.runtimes.loader import load_backend

        return load_backend(bundle_dir, "onnxruntime")

    def candidate(self, bundle_dir: Path, precision: str = "fp32") -> tuple[Any, str]:
        """The quantized bundle with its float parts at ``precision``, and a description of what runs it."""
        from edgesam.runtimes.loader import load_backend

        return load_backend(bundle_dir, "onnxruntime"), "onnxruntime CPUExecutionProvider"

    def reference_label(self) -> str:
        """What the fp32 reference runs on (for the speed report)."""
        return "onnxruntime CPU fp32"


class TensorRTEngine(QuantEngine):
    """Q/DQ ONNX for TensorRT explicit quantization; gated on TensorRT when available."""

    backend = "tensorrt"
    runs_on = ("tensorrt", "onnxruntime", "openvino")

    def check(self, path: Path) -> None:
        import onnx

        from edgesam.quantization.tensorrt_int8 import check_explicit_quantization

        check_explicit_quantization(onnx.load(str(path)))

    def candidate(self, bundle_dir: Path, precision: str = "fp32") -> tuple[Any, str]:
        from edgesam.quantization.tensorrt_int8 import tensorrt_available
        from edgesam.runtimes.loader import load_backend

        if tensorrt_available():
            backend = load_backend(bundle_dir, "tensorrt", precision="int8", cache_dir=None, golden_check=False)
            return backend, f"tensorrt {backend.trt_version} on {backend.gpu_name}"
        # The Q/DQ graph is standard ONNX: ONNX Runtime runs the same integer arithmetic.
        return load_backend(bundle_dir, "onnxruntime"), "onnxruntime (TensorRT not available here)"


class OpenVINOEngine(QuantEngine):
    """NNCF post-training quantization; writes OpenVINO IR."""

    backend = "openvino"
    runs_on = ("openvino",)

    def require(self) -> None:
        import_runtime("openvino", backend=self.backend, extra="openvino")
        import_runtime("nncf", backend=self.backend, extra="openvino")
        import_runtime("onnx", backend=self.backend, extra="openvino")

    def file_names(self, role: str) -> list[str]:
        return [f"{role}.xml", f"{role}.bin"]

    def quantize(self, job: GraphJob, folder: Path, keep_float: Sequence[str] = ()) -> None:
        from edgesam.quantization.openvino_int8 import quantize_openvino, save_ir

        from edgesam.quantization.openvino_int8 import int8_ops

        model = quantize_openvino(job.source, job.feeds, self.recipe, keep_float=keep_float)
        fq = sum(1 for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize")
        done, compute = int8_ops(model)  # counted before saving folds the weights' scales
        save_ir(model, folder, job.role)
        job.summary = {"int8_ops": done, "compute_ops": compute, "fake_quantize_ops": fq, "float_nodes": list(keep_float)}
        job.model = model

    def quantizable(self, job: GraphJob) -> list[str]:
        import onnx

        model = onnx.load(str(job.source))
        return [n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and n.name]

    def rank(self, job: GraphJob, count: int = 2) -> list[tuple[str, float]]:
        from edgesam.quantization.openvino_int8 import quantize_openvino, read_model
        from edgesam.quantization.sensitivity import rank_openvino_layers

        quantized = job.model if job.model is not None else quantize_openvino(job.source, job.feeds, self.recipe)
        return rank_openvino_layers(read_model(job.source), quantized, job.feeds[:count], self.quantizable(job))

    def reference(self, bundle_dir: Path) -> Any:
        from edgesam.runtimes.loader import load_backend

        return load_backend(bundle_dir, "openvino", precision="fp32", cache_dir=None)

    def float_precisions(self) -> tuple[str, ...]:
        import openvino as ov

        caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        return ("bf16", "fp32") if "BF16" in caps else ("fp32",)

    def reference_label(self) -> str:
        return "openvino CPU f32"

    def candidate(self, bundle_dir: Path, precision: str = "fp32") -> tuple[Any, str]:
        from edgesam.runtimes.loader import load_backend

        # unchecked: the quantization gate measures this bundle at this precision next
        backend = load_backend(bundle_dir, "openvino", cache_dir=None, precision=precision, check=False)
        return backend, f"openvino CPU, float parts in {backend.effective_precision}"


_ENGINES: dict[str, type[QuantEngine]] = {
    "onnxruntime": QuantEngine,
    "openvino": OpenVINOEngine,
    "tensorrt": TensorRTEngine,
}


def make_engine(backend: str, recipe: QuantRecipe) -> QuantEngine:
    """The engine for ``backend`` (its toolchain must be installed)."""
    if backend not in _ENGINES:
        raise ValueError(f"unknown quantization backend {backend!r}; choose from {sorted(_ENGINES)}")
    if recipe.backend != backend:
        raise ValueError(f"recipe {recipe.name!r} is for {recipe.backend!r}, not {backend!r}")
    return _ENGINES[backend](recipe)
