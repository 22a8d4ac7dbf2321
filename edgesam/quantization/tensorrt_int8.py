"""TensorRT: INT8 by explicit quantization (Q/DQ ONNX), and the FP16 bundle's TensorRT gate.

INT8: TensorRT 10.1 deprecated the implicit-quantization calibrators and TensorRT 11 removed
them (and the INT8/FP16 builder flags), so the INT8 bundle carries a Q/DQ ONNX graph (written
by :func:`edgesam.quantization.onnxruntime_int8.quantize_onnx` with a ``tensorrt`` recipe:
symmetric int8 activations and weights, per-channel weights, Q/DQ on the inputs of Conv /
MatMul / Gemm only, no ONNX Runtime contrib ops). TensorRT reads the scales from the graph and
builds it strongly typed (:mod:`edgesam.runtimes.tensorrt_engine`): layers outside the Q/DQ
pairs stay float32 on TensorRT 10 and 11 alike. :func:`check_explicit_quantization` verifies
the graph satisfies TensorRT's rules before it leaves this machine; the engine itself is
built on the target by :class:`edgesam.runtimes.tensorrt_backend.TensorRTBackend`.

FP16: TensorRT 11 has no FP16 builder flag; FP16 comes from an FP16-typed ONNX bundle
(``edgesam export --precision fp16``, :mod:`edgesam.quantization.fp16`), built strongly typed
on 10 and 11. :func:`fp16_gate` measures that bundle on TensorRT against its fp32 original.

Nothing here imports tensorrt at module import; functions that need it raise
:class:`~edgesam.runtimes.base.BackendUnavailableError` when it (or a GPU) is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgesam.quantization.accuracy import DEFAULT_MIN_IOU, AccuracyReport, compare_predictors
from edgesam.quantization.calibration import CalibrationSet

__all__ = [
    "check_explicit_quantization",
    "fp16_gate",
    "tensorrt_available",
]

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


def _constants(graph: Any) -> dict[str, np.ndarray]:
    """Every constant tensor of ``graph``: initializers and ``Constant`` node outputs."""
    from onnx import helper, numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
            continue
        for attr in node.attribute:
            if attr.name == "value":
                values[node.output[0]] = numpy_helper.to_array(attr.t)
            elif attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
                values[node.output[0]] = np.asarray(helper.get_attribute_value(attr))
    return values


def _weight_axis(consumer: Any, rank: int) -> int | None:
    """The output-channel axis TensorRT wants per-channel scales on, for ``consumer``'s weight."""
    if consumer.op_type == "Conv":
        return 0  # [K, C, kh, kw]
    if consumer.op_type == "ConvTranspose":
        return 1  # [C, K, kh, kw]
    if consumer.op_type == "MatMul":
        return rank - 1  # [..., K_in, N_out]
    if consumer.op_type == "Gemm":
        trans_b = next((a.i for a in consumer.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return None  # other consumers: any in-range axis


def _check_per_channel(node: Any, data: np.ndarray, scale: np.ndarray, consumers: list[Any]) -> list[str]:
    """Problems of one per-channel (1-D scale) Q/DQ node on the constant ``data``."""
    rank = data.ndim
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)  # ONNX default: 1
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        return [f"{node.name}: per-channel axis {axis} is outside the rank-{rank} weight"]
    problems = []
    if scale.shape[0] != data.shape[axis]:
        problems.append(f"{node.name}: {scale.shape[0]} scales for {data.shape[axis]} channels on axis {axis}")
    for consumer in consumers:
        want = _weight_axis(consumer, rank)
        if want is not None and want != axis:
            problems.append(f"{node.name}: per-channel axis {axis}, but TensorRT needs the output-channel "
                            f"axis {want} for {consumer.op_type} weights")  # fmt: skip
    return problems


def check_explicit_quantization(model: Any) -> int:
    """Check that an ONNX model is a valid TensorRT explicit-quantization graph.

    TensorRT accepts int8 Q/DQ with zero points equal to 0 (symmetric) and scales > 0, held
    in initializers or ``Constant`` nodes; per-tensor (scalar) scales on activations;
    per-channel (1-D) scales only on constant weights, one scale per channel along the
    weight's output-channel axis (0 for Conv, 1 for ConvTranspose, the last axis for MatMul,
    0 or 1 for Gemm by ``transB``); standard ONNX ops only (no ``com.microsoft`` domain);
    opset >= 13 (per-channel Q/DQ).

    Returns:
        The number of Q/DQ nodes.

    Raises:
        ValueError: naming every violation (first few of each kind).
    """
    graph = model.graph
    consts = _constants(graph)
    consumers: dict[str, list[Any]] = {}
    quantized_weights = {n.output[0]: consts[n.input[0]] for n in graph.node
                         if n.op_type == "QuantizeLinear" and n.input[0] in consts}  # weight -> Q -> DQ
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
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
        scale = consts.get(node.input[1])
        if scale is None or scale.size == 0 or not np.all(scale > 0):
            problems.append(f"{node.name}: scale must be a positive constant (initializer or Constant node)")
            continue
        zero = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero is not None and (zero.dtype != np.int8 or np.any(zero != 0) or zero.shape != scale.shape):
            problems.append(f"{node.name}: zero point must be int8 0 (symmetric) shaped like the scale, got "
                            f"{zero.dtype}{list(zero.shape)} {zero.ravel()[:3]}")  # fmt: skip
        if scale.ndim == 0 or scale.size == 1 and scale.ndim <= 1:
            continue  # per-tensor
        if scale.ndim != 1:
            problems.append(f"{node.name}: scale must be a scalar or 1-D (per-channel), got shape {list(scale.shape)}")
            continue
        data = consts.get(node.input[0], quantized_weights.get(node.input[0]))
        if data is None:
            problems.append(f"{node.name}: per-channel scales on an activation ({node.input[0]}); TensorRT "
                            "quantizes activations per tensor")  # fmt: skip
            continue
        users = consumers.get(node.output[0], [])
        if node.op_type == "QuantizeLinear":  # weight -> Q -> DQ -> Conv: look through the DQ
            users = [u for dq in users if dq.op_type == "DequantizeLinear" for u in consumers.get(dq.output[0], [])]
        problems += _check_per_channel(node, data, scale, users)
    if count == 0:
        problems.append("the graph has no QuantizeLinear/DequantizeLinear nodes")
    if problems:
        shown = problems[:8] + ([f"... {len(problems) - 8} more"] if len(problems) > 8 else [])
        raise ValueError("not a TensorRT explicit-quantization graph: " + "; ".join(shown))
    return count


def fp16_gate(
    fp16_bundle: str | os.PathLike[str],
    fp32_bundle: str | os.PathLike[str],
    images: CalibrationSet,
    *,
    min_mask_iou: float = DEFAULT_MIN_IOU,
    prompts_per_image: int = 8,
    device: int = 0,
) -> AccuracyReport:
    """Measure an FP16 bundle on TensorRT against its fp32 original on ONNX Runtime (same gate as INT8).

    The TensorRT backend's own golden check is switched off here: this gate is the stricter,
    end-to-end one. Returns the report; check ``report.passed``.

    Raises:
        BackendUnavailableError: tensorrt, cuda-python or a GPU is missing.
    """
    from edgesam.runtimes.loader import load_backend

    reference = load_backend(Path(fp32_bundle), "onnxruntime")
    candidate = load_backend(Path(fp16_bundle), "tensorrt", precision="fp16", device=device, golden_check=False)
    return compare_predictors(reference, candidate, images, prompts_per_image=prompts_per_image,
                              min_mask_iou=min_mask_iou)  # fmt: skip
