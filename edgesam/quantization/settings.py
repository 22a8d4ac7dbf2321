"""The sections of a quantization recipe, one concern each (as optimum separates them).

* :class:`QuantizationConfig`: what is quantized and how (types, symmetry, granularity, which
  ops and nodes, the decoder too or not). Read by every backend.
* :class:`CalibrationConfig`: how activation ranges are found (method, images, prompts).
* :class:`AccuracyConfig`: what the accuracy gate measures on (held-out images, prompts).
* :class:`OrtGraphConfig`: ONNX Runtime graph rewrites around the QDQ model.
* :class:`NncfConfig`: NNCF (OpenVINO) post-training quantization parameters.

Each section validates itself and round-trips through a plain dict (:func:`section_to_dict`,
:func:`section_from_dict`). :class:`edgesam.quantization.recipes.QuantRecipe` holds one of each.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

__all__ = [
    "CALIBRATION_METHODS",
    "AccuracyConfig",
    "CalibrationConfig",
    "NncfConfig",
    "OrtGraphConfig",
    "QuantizationConfig",
    "section_from_dict",
    "section_to_dict",
]

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
_INT_TYPES = ("int8", "uint8")


def _refuse(section: str, problems: list[str]) -> None:
    if problems:
        raise ValueError(f"invalid {section} settings: " + "; ".join(problems))


@dataclass(frozen=True)
class QuantizationConfig:
    """What is quantized and how.

    Attributes:
        per_channel: one weight scale per output channel (True) or per tensor.
        activation_type: ``"uint8"`` or ``"int8"``.
        weight_type: ``"int8"`` or ``"uint8"``.
        activation_symmetric: zero point 0 for activations (TensorRT requires it).
        weight_symmetric: zero point 0 for weights.
        op_types: ONNX op types whose inputs are quantized (ORT / TensorRT); ``("all",)``: every
            op type ONNX Runtime's quantizer supports.
        quantize_activation_matmuls: also quantize MatMuls of two activations (attention).
        quantize_outputs_of: op types whose outputs get Q/DQ as well (ORT needs it on Conv to
            fuse ``QLinearConv``; MatMul outputs stay float for ``MatMulIntegerToFloat``).
        quantize_bias: store Conv/Gemm biases as int32 (ORT); TensorRT takes float biases.
        exclude_nodes: node names kept in float (exact names).
        exclude_patterns: regular expressions; nodes whose name matches one stay in float.
        quantize_decoder: quantize ``decoder.onnx`` too (default: only the encoder).
    """

    per_channel: bool = True
    activation_type: str = "uint8"
    weight_type: str = "int8"
    activation_symmetric: bool = False
    weight_symmetric: bool = True
    op_types: tuple[str, ...] = ("Conv", "MatMul")
    quantize_activation_matmuls: bool = False
    quantize_outputs_of: tuple[str, ...] = ("Conv",)
    quantize_bias: bool = True
    exclude_nodes: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    quantize_decoder: bool = False

    def __post_init__(self) -> None:
        for key in ("op_types", "quantize_outputs_of", "exclude_nodes", "exclude_patterns"):
            value = getattr(self, key)
            object.__setattr__(self, key, (value,) if isinstance(value, str) else tuple(value))
        problems = [f"{key} must be one of {_INT_TYPES}, got {getattr(self, key)!r}"
                    for key in ("activation_type", "weight_type") if getattr(self, key) not in _INT_TYPES]  # fmt: skip
        if not self.op_types:
            problems.append("op_types must name at least one op type")
        _refuse("quantization", problems)


@dataclass(frozen=True)
class CalibrationConfig:
    """How activation ranges are found.

    Attributes:
        method: ``"minmax"``, ``"entropy"`` or ``"percentile"`` (ORT / TensorRT; NNCF has its own).
        percentile: the percentile for ``"percentile"`` calibration.
        images: images used for calibration (the rest of a folder is held out for the gate).
        prompts_per_image: prompts sampled per image for the decoder's calibration feeds.
    """

    method: str = "minmax"
    percentile: float = 99.999
    images: int = 8
    prompts_per_image: int = 8

    def __post_init__(self) -> None:
        problems = []
        if self.method not in CALIBRATION_METHODS:
            problems.append(f"calibration method must be one of {CALIBRATION_METHODS}, got {self.method!r}")
        if not 50.0 < self.percentile <= 100.0:
            problems.append(f"calibration percentile must lie in (50, 100], got {self.percentile}")
        problems += [f"calibration {key} must be >= 1, got {getattr(self, key)}"
                     for key in ("images", "prompts_per_image") if int(getattr(self, key)) < 1]  # fmt: skip
        _refuse("calibration", problems)


@dataclass(frozen=True)
class AccuracyConfig:
    """What the accuracy gate compares on (its threshold is an argument: ``min_mask_iou``).

    Attributes:
        heldout_images: images the gate runs on (never used for calibration when a folder allows).
        prompts_per_image: prompts sampled per held-out image.
    """

    heldout_images: int = 4
    prompts_per_image: int = 8

    def __post_init__(self) -> None:
        _refuse("accuracy", [f"accuracy {key} must be >= 1, got {getattr(self, key)}"
                             for key in ("heldout_images", "prompts_per_image") if int(getattr(self, key)) < 1])  # fmt: skip


@dataclass(frozen=True)
class OrtGraphConfig:
    """ONNX Runtime graph rewrites.

    Attributes:
        fuse_gelu: rewrite the exported erf-GELU pattern into one ``Gelu`` node first.
        lower_matmuls: turn Q/DQ MatMuls into ``MatMulIntegerToFloat`` with the bias folded in
            (ONNX Runtime's own fusion is pre-empted by its MatMul+Add->Gemm rewrite).
    """

    fuse_gelu: bool = True
    lower_matmuls: bool = True


@dataclass(frozen=True)
class NncfConfig:
    """NNCF post-training quantization (OpenVINO).

    Attributes:
        model_type: ``"transformer"`` or None.
        smooth_quant_alpha: SmoothQuant alpha for MatMuls; negative disables it; None leaves
            NNCF's own default.
        fast_bias_correction: NNCF's fast bias correction.
        preset: ``"performance"`` (symmetric), ``"mixed"`` or ``"default"`` (NNCF's choice:
            mixed for transformers).
    """

    model_type: str | None = "transformer"
    smooth_quant_alpha: float | None = 0.95
    fast_bias_correction: bool = True
    preset: str = "performance"

    def __post_init__(self) -> None:
        problems = []
        if self.model_type not in (None, "transformer"):
            problems.append(f"model_type must be 'transformer' or None, got {self.model_type!r}")
        if self.preset not in ("performance", "mixed", "default"):
            problems.append(f"preset must be 'performance', 'mixed' or 'default', got {self.preset!r}")
        _refuse("nncf", problems)


Section = TypeVar("Section", QuantizationConfig, CalibrationConfig, AccuracyConfig, OrtGraphConfig, NncfConfig)


def section_to_dict(section: Any) -> dict[str, Any]:
    """JSON-ready dict of a section (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(section).items()}


def section_from_dict(cls: type[Section], data: Mapping[str, Any], where: str) -> Section:
    """Inverse of :func:`section_to_dict`; unknown keys are a ``ValueError`` naming ``where``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"quantization recipe section {where!r} must be an object, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown quantization recipe field(s) {unknown} in {where!r}; known: {sorted(names)}")
    return cls(**dict(data))
