"""TensorRT: INT8 by explicit quantization (Q/DQ ONNX), FP16 with an accuracy gate (TensorRT 10 API).

INT8: TensorRT 10.1 deprecated the implicit-quantization calibrators and TensorRT 11 removed
them, so the INT8 bundle carries a Q/DQ ONNX graph (written by
:func:`edgesam.quantization.onnxruntime_int8.quantize_onnx` with a ``tensorrt`` recipe:
symmetric int8 activations and weights, per-channel weights, Q/DQ on the inputs of Conv /
MatMul / Gemm only, no ONNX Runtime contrib ops). TensorRT reads the scales from the graph;
:func:`check_explicit_quantization` verifies the graph satisfies TensorRT's rules before it
leaves this machine. The engine itself is built on the target by
:class:`edgesam.runtimes.tensorrt_backend.TensorRTBackend` (``precision="int8"``).

FP16: TinyViT encoders are known to produce wrong masks in TensorRT FP16.
:func:`build_fp16_engine` builds FP16 with chosen layer types (normalisations, reductions,
softmax by default) pinned to FP32, and :func:`fp16_gate` measures an FP16 bundle against
fp32 ONNX Runtime with the same end-to-end gate as INT8.

Nothing here imports tensorrt at module import; functions that need it raise
:class:`~edgesam.runtimes.base.BackendUnavailableError` when it (or a GPU) is missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from edgesam.quantization.accuracy import DEFAULT_MIN_IOU, AccuracyReport, compare_predictors
from edgesam.quantization.calibration import CalibrationSet

__all__ = [
    "FP32_LAYER_TYPES",
    "build_fp16_engine",
    "check_explicit_quantization",
    "fp16_gate",
    "tensorrt_available",
]

#: TensorRT layer types pinned to FP32 by default in FP16 builds (LayerNorm, ReduceMean, Softmax).
FP32_LAYER_TYPES = ("NORMALIZATION", "REDUCE", "SOFTMAX")
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def tensorrt_available() -> bool:
    """Whether ``tensorrt`` imports and a CUDA GPU is visible (through cuda-python)."""
    try:
        import tensorrt  # noqa: F401
        from edgesam.runtimes.tensorrt_backend import _import_cudart

        cudart = _import_cudart()
        err, count = cudart.cudaGetDeviceCount()
        return err == cudart.cudaError_t.cudaSuccess and count > 0
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False


def check_explicit_quantization(model: Any) -> int:
    """Check that an ONNX model is a valid TensorRT explicit-quantization graph.

    TensorRT accepts only int8 Q/DQ with zero points equal to 0 (symmetric), scales > 0,
    per-channel axes on weights, standard ONNX ops (no ``com.microsoft`` domain) and
    opset >= 13 for per-channel Q/DQ.

    Returns:
        The number of Q/DQ nodes.

    Raises:
        ValueError: naming every violation (first few of each kind).
    """
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    problems: list[str] = []
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        problems.append(f"opset {opset} < 13 (per-channel Q/DQ)")
    contrib = sorted({n.op_type for n in graph.node if n.domain not in ("", "ai.onnx")})
    if contrib:
        problems.append(f"non-standard ops TensorRT cannot parse: {contrib}")
    count = 0
    for node in graph.node:
        if node.op_type not in _QDQ:
            continue
        count += 1
        scale = inits.get(node.input[1])
        if scale is None or not np.all(scale > 0):
            problems.append(f"{node.name}: scale must be a positive constant")
        zero = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero is not None and (zero.dtype != np.int8 or np.any(zero != 0)):
            problems.append(f"{node.name}: zero point must be int8 0 (symmetric), got {zero.dtype} {zero.ravel()[:3]}")
    if count == 0:
        problems.append("the graph has no QuantizeLinear/DequantizeLinear nodes")
    if problems:
        shown = problems[:8] + ([f"... {len(problems) - 8} more"] if len(problems) > 8 else [])
        raise ValueError("not a TensorRT explicit-quantization graph: " + "; ".join(shown))
    return count


def _tensorrt() -> Any:
    from edgesam.runtimes.base import import_runtime

    return import_runtime("tensorrt", backend="tensorrt", extra="tensorrt")


def build_fp16_engine(
    onnx_path: str | os.PathLike[str],
    *,
    fp32_layer_types: Sequence[str] = FP32_LAYER_TYPES,
    fp32_layer_patterns: Iterable[str] = (),
    workspace_bytes: int = 1 << 30,
    profile_shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] | None = None,
) -> tuple[bytes, list[str]]:
    """Build an FP16 engine with some layers pinned to FP32 (TensorRT 10, weakly typed networks).

    Args:
        onnx_path: float ONNX graph.
        fp32_layer_types: ``trt.LayerType`` member names to keep in FP32.
        fp32_layer_patterns: regexes on TensorRT layer names (ONNX node names) to keep in FP32.
        workspace_bytes: builder workspace limit.
        profile_shapes: ``{input: (min, opt, max)}`` for dynamic inputs (the decoder).

    Returns:
        ``(serialized engine, names of the layers pinned to FP32)``.

    Raises:
        BackendUnavailableError: tensorrt is not installed.
        RuntimeError: parse or build failure (parser errors listed).
    """
    trt = _tensorrt()
    if not hasattr(trt.BuilderFlag, "FP16"):
        raise RuntimeError("this TensorRT has no FP16 builder flag (TensorRT 11 networks are strongly typed)")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    config.set_flag(trt.BuilderFlag.FP16)
    if profile_shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile_shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    types = {getattr(trt.LayerType, t) for t in fp32_layer_types}
    patterns = [re.compile(p) for p in fp32_layer_patterns]
    floats = (trt.float32, trt.float16)
    pinned: list[str] = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type not in types and not any(p.search(layer.name) for p in patterns):
            continue
        outputs = [j for j in range(layer.num_outputs) if layer.get_output(j).dtype in floats]
        if not outputs:
            continue  # shape / index computations: no precision to pin
        layer.precision = trt.float32
        for j in outputs:
            layer.set_output_type(j, trt.float32)
        pinned.append(layer.name)
    if pinned:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise RuntimeError(f"TensorRT failed to build an FP16 engine from {onnx_path} (see the log above)")
    return bytes(blob), pinned


def fp16_gate(
    bundle_dir: str | os.PathLike[str],
    images: CalibrationSet,
    *,
    min_mask_iou: float = DEFAULT_MIN_IOU,
    prompts_per_image: int = 8,
    device: int = 0,
) -> AccuracyReport:
    """Measure TensorRT FP16 against fp32 ONNX Runtime on ``images`` (same gate as INT8).

    The TensorRT backend's own golden check is switched off here: this gate is the stricter,
    end-to-end one. Returns the report; check ``report.passed``. If it fails, build with
    :func:`build_fp16_engine` (FP32 normalisations) or run the encoder in FP32 / INT8.
    """
    from edgesam.runtimes.loader import load_backend

    reference = load_backend(Path(bundle_dir), "onnxruntime")
    candidate = load_backend(Path(bundle_dir), "tensorrt", precision="fp16", device=device, golden_check=False)
    return compare_predictors(reference, candidate, images, prompts_per_image=prompts_per_image,
                              min_mask_iou=min_mask_iou)  # fmt: skip
