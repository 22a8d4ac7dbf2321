"""Building and caching TensorRT engines from a bundle's ONNX files (TensorRT 10.x and 11.x).

The parts that need no GPU -- optimisation-profile shapes, engine cache names, the network
creation flags, the precision check -- are separate functions so they can be tested anywhere;
:func:`build_engine` itself needs ``tensorrt`` and a GPU.

Every network is built **strongly typed** with no precision builder flags: the ONNX graph
says which precision each tensor has, and TensorRT 10.x (``NetworkDefinitionCreationFlag.
STRONGLY_TYPED``, present since 10.0; JetPack 6 ships 10.3) and 11.x (strong typing always on,
the flag kept but ignored; ``BuilderFlag.FP16``/``INT8`` removed) build the same engine types
from the same file, so both give the same numbers. TF32 is switched off where the flag exists,
so float32 layers run in true float32 on both.

Precisions (what the graph must be; a mismatch is an error, never a silent change):

* ``"fp32"``: a float32 graph (the exported bundle).
* ``"fp16"``: an FP16-typed graph (``edgesam export --precision fp16``, see
  :mod:`edgesam.export.fp16`): LayerNorm, Softmax and the final mask logits stay float32 in
  the graph itself; I/O stays float32.
* ``"int8"``: explicit quantization: QuantizeLinear / DequantizeLinear nodes (a bundle from
  ``edgesam quantize --backend tensorrt``); layers outside the Q/DQ pairs run at the type the
  graph gives them (float32). Implicit calibration (``IInt8Calibrator``) is deprecated since
  TensorRT 10.1, removed in 11, and is not used.
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
    "check_graph_precision",
    "decoder_profile_shapes",
    "engine_cache_name",
    "has_weak_typing_flags",
    "network_creation_flags",
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


def has_weak_typing_flags(trt: Any) -> bool:
    """Whether this TensorRT still has the precision builder flags (``BuilderFlag.FP16``/``INT8``).

    True on TensorRT 10.x, False on 11.x. The builder never sets them either way; the answer
    only words error messages and tells which API generation is installed.
    """
    flags = getattr(trt, "BuilderFlag", None)
    return flags is not None and hasattr(flags, "FP16") and hasattr(flags, "INT8")


def network_creation_flags(trt: Any) -> int:
    """The ``create_network`` flag word for a strongly typed network on this TensorRT.

    TensorRT 10.x: ``1 << STRONGLY_TYPED`` (without it the network is weakly typed and the
    builder chooses layer precisions itself). TensorRT 11.x: the same bit, which 11 accepts
    and ignores (strong typing is always on). A release that dropped the member while keeping
    the precision flags would build weakly typed, so that is refused; one that dropped both is
    strongly typed by construction (0).

    Raises:
        EngineBuildError: this TensorRT cannot build strongly typed networks (older than 10).
    """
    member = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED", None)
    if member is not None:
        return 1 << int(member)
    if has_weak_typing_flags(trt):
        raise EngineBuildError(
            f"TensorRT {getattr(trt, '__version__', '?')} cannot build strongly typed networks; "
            "edgesam needs TensorRT 10.0 or newer (JetPack 6 ships 10.3)"
        )
    return 0


def check_graph_precision(precision: str, *, has_qdq: bool, has_fp16: bool, source: str = "this graph") -> None:
    """Check that a strongly typed build of a graph gives ``precision``.

    Strongly typed networks take every type from the graph, so the requested precision must
    be the graph's own: ``"int8"`` needs Q/DQ nodes, ``"fp16"`` an FP16-typed graph without
    Q/DQ, ``"fp32"`` a graph with neither.

    Args:
        precision: one of :data:`TRT_PRECISIONS`.
        has_qdq: the parsed network holds Quantize/Dequantize layers.
        has_fp16: some layer of the parsed network produces float16 tensors.
        source: the file named in messages.

    Raises:
        ValueError: unknown precision, or a graph of another precision (never silently built).
    """
    if precision not in TRT_PRECISIONS:
        raise ValueError(f"precision must be one of {TRT_PRECISIONS}, got {precision!r}")
    actual = "int8" if has_qdq else "fp16" if has_fp16 else "fp32"
    if actual == precision:
        return
    how = {
        "int8": "quantize the fp32 bundle for TensorRT first (edgesam quantize BUNDLE --backend tensorrt)",
        "fp16": "write an FP16 bundle first (edgesam export MODEL --precision fp16)",
        "fp32": "use the fp32 bundle (edgesam export MODEL)",
    }[precision]
    raise ValueError(
        f"precision {precision!r} asked for, but {source} is a {actual} graph (TensorRT builds every "
        f"network strongly typed: the graph decides the precision); {how}, or ask for {actual!r}"
    )


def _network_precision(trt: Any, network: Any) -> tuple[bool, bool]:
    """``(has Q/DQ layers, has float16 layer outputs)`` of a parsed network."""
    qdq_types = (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
    has_qdq = has_fp16 = False
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        has_qdq = has_qdq or layer.type in qdq_types
        has_fp16 = has_fp16 or any(layer.get_output(j).dtype == trt.float16 for j in range(layer.num_outputs))
    return has_qdq, has_fp16


def build_engine(
    trt: Any,
    logger: Any,
    onnx_path: Path,
    *,
    precision: str,
    profile_shapes: dict[str, tuple[Shape, Shape, Shape]] | None = None,
    workspace_bytes: int = 1 << 30,
) -> bytes:
    """Parse ``onnx_path`` into a strongly typed network and build a serialized engine.

    Args:
        trt: the imported ``tensorrt`` module (10.x or 11.x).
        logger: a ``trt.ILogger``.
        onnx_path: ONNX file (external data is resolved relative to it).
        precision: one of :data:`TRT_PRECISIONS`; must be the graph's own
            (see :func:`check_graph_precision`).
        profile_shapes: min/opt/max shapes of the dynamic inputs (see :func:`decoder_profile_shapes`).
        workspace_bytes: builder workspace memory pool limit.

    Raises:
        EngineBuildError: parse errors (listed), a TensorRT older than 10, or a failed build.
        ValueError: the graph is not of ``precision``.
    """
    builder = trt.Builder(logger)
    network = builder.create_network(network_creation_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: {errors}")
    has_qdq, has_fp16 = _network_precision(trt, network)
    check_graph_precision(precision, has_qdq=has_qdq, has_fp16=has_fp16, source=str(onnx_path))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # float32 layers in float32 on every version
    if profile_shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile_shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} ({precision}); see its log")
    return bytes(serialized)
