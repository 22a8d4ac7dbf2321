"""Building and caching TensorRT engines from a bundle's ONNX files (TensorRT 10 Python API).

The parts that need no GPU -- optimisation-profile shapes, engine cache names, the builder
configuration in plain data -- are separate functions so they can be tested anywhere;
:func:`build_engine` itself needs ``tensorrt`` and a GPU.

Precisions:

* ``"fp32"``: TF32 disabled, so results match float32 ONNX Runtime closely.
* ``"fp16"``: ``BuilderFlag.FP16`` (TensorRT 10); I/O stays float32. Some encoders (TinyViT)
  lose accuracy in FP16 -- the backend's golden-output gate catches that. TensorRT 11 removed
  the precision flags (networks are strongly typed): there FP16 needs an FP16 ONNX graph, and
  asking for ``"fp16"`` with a float32 bundle is an error, never a silent FP32 build.
* ``"int8"``: explicit quantization only: the ONNX graph must contain QuantizeLinear /
  DequantizeLinear nodes (a quantized bundle); TensorRT takes the scales from them.
  Implicit calibration (``IInt8Calibrator``) is deprecated since TensorRT 10.1, removed in 11,
  and is not used. On TensorRT 10, layers outside Q/DQ pairs may run in FP16.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "TRT_PRECISIONS",
    "DecoderProfile",
    "EngineBuildError",
    "build_engine",
    "builder_flags",
    "decoder_profile_shapes",
    "engine_cache_name",
]

TRT_PRECISIONS = ("fp32", "fp16", "int8")
Shape = tuple[int, ...]


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the ONNX file or build an engine from it."""


@dataclass(frozen=True)
class DecoderProfile:
    """Optimisation-profile range of the decoder's dynamic axes.

    ``B`` (prompts per call, >= 1) and ``N`` (points per prompt, including the padding point or
    the two box corners; may be 0) must satisfy ``min <= opt <= max``; TensorRT tunes kernels for ``opt``
    and rejects calls outside ``[min, max]``.
    """

    min_prompts: int = 1
    opt_prompts: int = 1
    max_prompts: int = 32
    min_points: int = 0  # N = 0: no clicks and no box (TensorRT supports empty tensors)
    opt_points: int = 2
    max_points: int = 16

    def __post_init__(self) -> None:
        for axis, floor in (("prompts", 1), ("points", 0)):
            lo, opt, hi = (getattr(self, f"{k}_{axis}") for k in ("min", "opt", "max"))
            if not floor <= lo <= opt <= hi:
                raise ValueError(f"need {floor} <= min_{axis} <= opt_{axis} <= max_{axis}, got {lo}, {opt}, {hi}")

    def accepts(self, prompts: int, points: int) -> bool:
        """Whether a call with ``B = prompts`` and ``N = points`` fits the profile."""
        return self.min_prompts <= prompts <= self.max_prompts and self.min_points <= points <= self.max_points


def decoder_profile_shapes(
    embedding_hw: tuple[int, int], profile: DecoderProfile
) -> dict[str, tuple[Shape, Shape, Shape]]:
    """``{input name: (min shape, opt shape, max shape)}`` for the decoder's dynamic inputs.

    ``image_embeddings`` is static (``[1, 256, h, w]``) and has no entry.
    """
    h, w = embedding_hw

    def shapes(b: int, n: int) -> dict[str, Shape]:
        return {
            "point_coords": (b, n, 2),
            "point_labels": (b, n),
            "mask_input": (b, 1, 4 * h, 4 * w),
            "has_mask_input": (b,),
        }

    lo = shapes(profile.min_prompts, profile.min_points)
    opt = shapes(profile.opt_prompts, profile.opt_points)
    hi = shapes(profile.max_prompts, profile.max_points)
    return {name: (lo[name], opt[name], hi[name]) for name in lo}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "unknown"


def engine_cache_name(
    role: str,
    onnx_sha256: str,
    *,
    gpu_name: str,
    trt_version: str,
    precision: str,
    profile: DecoderProfile | None = None,
) -> str:
    """File name of a cached engine, unique per ONNX file, GPU model, TensorRT version,
    precision and (decoder) profile. Engines are not portable across any of these."""
    if precision not in TRT_PRECISIONS:
        raise ValueError(f"precision must be one of {TRT_PRECISIONS}, got {precision!r}")
    parts = [role, onnx_sha256[:16], _slug(gpu_name), f"trt{_slug(trt_version)}", precision]
    if profile is not None:
        parts.append("p" + hashlib.sha256(repr(astuple(profile)).encode()).hexdigest()[:8])
    return "-".join(parts) + ".engine"


def builder_flags(precision: str, *, has_qdq: bool, weakly_typed: bool = True) -> tuple[str, ...]:
    """Names of the ``trt.BuilderFlag`` members to set for ``precision``.

    Args:
        precision: one of :data:`TRT_PRECISIONS`.
        has_qdq: whether the parsed network holds Quantize/Dequantize layers.
        weakly_typed: TensorRT 10 (precision flags exist); False for TensorRT 11, whose
            strongly typed networks take every precision from the ONNX graph.

    Raises:
        ValueError: unknown precision; ``"int8"`` for a graph without Q/DQ nodes (INT8 is never
            produced by implicit calibration here, and never silently dropped); ``"fp16"``
            on TensorRT 11 (needs an FP16 ONNX graph).
    """
    if precision not in TRT_PRECISIONS:
        raise ValueError(f"precision must be one of {TRT_PRECISIONS}, got {precision!r}")
    if precision == "int8" and not has_qdq:
        raise ValueError(
            "precision 'int8' needs an ONNX graph with QuantizeLinear/DequantizeLinear nodes (explicit "
            "quantization); this graph has none. Quantize the bundle first (edgesam quantize) or use 'fp16'."
        )
    if precision == "fp16" and not weakly_typed:
        raise ValueError(
            "TensorRT 11 removed the FP16 builder flag (strongly typed networks): build 'fp16' with "
            "TensorRT 10, or convert the ONNX graph to FP16 first; use 'fp32' or an INT8 (Q/DQ) bundle here."
        )
    if not weakly_typed or precision == "fp32":
        return ()
    return ("FP16",) if precision == "fp16" else ("INT8", "FP16")


def build_engine(
    trt: Any,
    logger: Any,
    onnx_path: Path,
    *,
    precision: str,
    profile_shapes: dict[str, tuple[Shape, Shape, Shape]] | None = None,
    workspace_bytes: int = 1 << 30,
) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine.

    Args:
        trt: the imported ``tensorrt`` module.
        logger: a ``trt.ILogger``.
        onnx_path: ONNX file (external data is resolved relative to it).
        precision: one of :data:`TRT_PRECISIONS`.
        profile_shapes: min/opt/max shapes of the dynamic inputs (see :func:`decoder_profile_shapes`).
        workspace_bytes: builder workspace memory pool limit.

    Raises:
        EngineBuildError: parse errors (listed) or a failed build.
        ValueError: ``int8`` requested for a graph without Q/DQ nodes.
    """
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: {errors}")
    qdq_types = (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
    has_qdq = any(network.get_layer(i).type in qdq_types for i in range(network.num_layers))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    weakly_typed = hasattr(trt.BuilderFlag, "FP16")  # removed in TensorRT 11
    for flag in builder_flags(precision, has_qdq=has_qdq, weakly_typed=weakly_typed):
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if profile_shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile_shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} ({precision}); see its log")
    return bytes(serialized)
