"""Quantization recipes: every choice of a quantization run in one frozen, serialisable record.

A recipe is a name and a backend plus one section per concern (:mod:`edgesam.quantization.settings`):
``quantization`` (what is quantized and how), ``calibration`` (how ranges are found),
``accuracy`` (what the gate measures on), ``ort`` (ONNX Runtime graph rewrites) and ``nncf``
(OpenVINO's NNCF parameters). It is stored in the quantized bundle's metadata
(``quantization.recipe``), so a bundle says exactly how it was made; recipes written before the
sections existed (one flat object) are still read. Named recipes (:data:`RECIPES`) cover the
three backends; :func:`get_recipe` looks them up and :meth:`QuantRecipe.replace` derives variants.

Why the ONNX Runtime defaults look the way they do (x86 with AVX-512 VNNI; the INT8 vs FP32
comparison that measures it is ``edgesam bench --preset int8``, figures in the README's
quantization section):

* ``uint8`` activations with ``int8`` weights: ORT's x86 kernels fuse every U8S8 QDQ
  convolution into ``QLinearConv``; with S8S8 the depthwise convolutions stay in float.
* only ``Conv`` and constant-weight ``MatMul`` are quantized, and the MatMul outputs stay
  float: quantizing Add/Mul/Softmax/the GELU pieces (ORT's default, recipe ``ort-qdq-default``)
  surrounds every float op with Quantize/Dequantize pairs and breaks ORT's GELU fusion.
* the attention's activation x activation MatMuls stay float (no speed gain, more error).

OpenVINO: SmoothQuant alpha 0.5 by default; NNCF's transformer default (0.95) cost embedding
cosine on the TinyViT encoder at 256 px in that comparison (rows ``ov-int8`` vs
``ov-nncf-plain``); ``ov-int8-sq95`` keeps NNCF's value for models with strong activation outliers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from edgesam.quantization.settings import (
    CALIBRATION_METHODS,
    AccuracyConfig,
    CalibrationConfig,
    NncfConfig,
    OrtGraphConfig,
    QuantizationConfig,
    section_from_dict,
    section_to_dict,
)

__all__ = [
    "CALIBRATION_METHODS",
    "DEFAULT_RECIPES",
    "QUANT_BACKENDS",
    "RECIPES",
    "SEARCH_RECIPES",
    "AccuracyConfig",
    "CalibrationConfig",
    "NncfConfig",
    "OrtGraphConfig",
    "QuantRecipe",
    "QuantizationConfig",
    "default_recipe",
    "get_recipe",
]

#: Backends quantization can target (a tuple of names; the runtime registry
#: :data:`edgesam.runtimes.BACKENDS` is a dict of every backend, torch included).
QUANT_BACKENDS = ("onnxruntime", "openvino", "tensorrt")
BACKENDS = QUANT_BACKENDS  # the old name, kept for imports written before the rename

_SECTIONS: dict[str, type] = {
    "quantization": QuantizationConfig,
    "calibration": CalibrationConfig,
    "accuracy": AccuracyConfig,
    "ort": OrtGraphConfig,
    "nncf": NncfConfig,
}
# The flat field names of recipes written before the sections: name -> [(section, field), ...]
_FLAT: dict[str, list[tuple[str, str]]] = {
    **{f.name: [("quantization", f.name)] for f in dataclasses.fields(QuantizationConfig)},
    "calibration_method": [("calibration", "method")],
    "percentile": [("calibration", "percentile")],
    "calibration_images": [("calibration", "images")],
    "prompts_per_image": [("calibration", "prompts_per_image"), ("accuracy", "prompts_per_image")],
    "heldout_images": [("accuracy", "heldout_images")],
    **{f.name: [("ort", f.name)] for f in dataclasses.fields(OrtGraphConfig)},
    **{f.name: [("nncf", f.name)] for f in dataclasses.fields(NncfConfig)},
}


def _split(settings: Mapping[str, Any], own: set[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(recipe fields, {section: {field: value}})`` of recipe fields mixed with flat setting names."""
    unknown = sorted(set(settings) - own - set(_FLAT))
    if unknown:
        raise ValueError(f"unknown quantization recipe field(s) {unknown}; known: {sorted(own | set(_FLAT))}")
    top = {k: v for k, v in settings.items() if k in own}
    per_section: dict[str, dict[str, Any]] = {}
    for key, value in settings.items():
        for section, name in [] if key in own else _FLAT[key]:
            per_section.setdefault(section, {})[name] = value
    return top, per_section


@dataclass(frozen=True)
class QuantRecipe:
    """How to quantize a bundle.

    Attributes:
        name: recipe name (recorded in the bundle).
        backend: runtime the result is for: ``"onnxruntime"``, ``"openvino"`` or ``"tensorrt"``.
        description: one line for ``edgesam quantize --help`` and the metadata.
        quantization: what is quantized and how.
        calibration: how activation ranges are found.
        accuracy: what the accuracy gate measures on.
        ort: ONNX Runtime graph rewrites (``onnxruntime`` and ``tensorrt`` recipes).
        nncf: NNCF parameters (``openvino`` recipes).
        extra: free-form backend options (kept in the metadata).
    """

    name: str
    backend: str
    description: str = ""
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    accuracy: AccuracyConfig = field(default_factory=AccuracyConfig)
    ort: OrtGraphConfig = field(default_factory=OrtGraphConfig)
    nncf: NncfConfig = field(default_factory=NncfConfig)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.backend not in QUANT_BACKENDS:
            problems.append(f"backend must be one of {QUANT_BACKENDS}, got {self.backend!r}")
        for key, cls in _SECTIONS.items():
            if not isinstance(getattr(self, key), cls):
                problems.append(f"{key} must be a {cls.__name__}, got {type(getattr(self, key)).__name__}")
        if self.backend == "tensorrt" and not self.quantization.activation_symmetric:
            problems.append("TensorRT needs symmetric activations (quantization.activation_symmetric=True, int8)")
        if problems:
            raise ValueError(f"invalid quantization recipe {self.name!r}: " + "; ".join(problems))
        object.__setattr__(self, "extra", dict(self.extra))  # a plain dict keeps it JSON friendly

    @classmethod
    def make(cls, name: str, backend: str, description: str = "", **settings: Any) -> QuantRecipe:
        """A recipe from flat setting names (``calibration_method="entropy"``, ``per_channel=False``,
        ...; see :meth:`replace`) on top of the section defaults."""
        own = {f.name for f in dataclasses.fields(cls)}
        top, per_section = _split(settings, own)
        try:
            sections = {key: _SECTIONS[key](**values) for key, values in per_section.items()}
        except ValueError as exc:
            raise ValueError(f"invalid quantization recipe {name!r}: {exc}") from exc
        return cls(name, backend, description, **top, **sections)

    def replace(self, **changes: Any) -> QuantRecipe:
        """A copy with ``changes`` applied (validated again).

        Keys are the recipe's own fields (``name``, ``calibration=CalibrationConfig(...)``, ...)
        or the flat setting names of the sections: ``per_channel``, ``exclude_patterns``, ...
        (:class:`QuantizationConfig`), ``calibration_method``, ``percentile``,
        ``calibration_images`` (calibration), ``heldout_images`` (accuracy),
        ``prompts_per_image`` (both), ``fuse_gelu``, ``lower_matmuls`` (ort),
        ``model_type``, ``smooth_quant_alpha``, ``fast_bias_correction``, ``preset`` (nncf).
        """
        top, per_section = _split(changes, {f.name for f in dataclasses.fields(self)})
        try:
            for section, values in per_section.items():
                top[section] = dataclasses.replace(top.get(section, getattr(self, section)), **values)
        except ValueError as exc:
            raise ValueError(f"invalid quantization recipe {self.name!r}: {exc}") from exc
        return dataclasses.replace(self, **top)

    def with_excluded(self, nodes: tuple[str, ...] | list[str]) -> QuantRecipe:
        """A copy that also keeps ``nodes`` in float."""
        merged = tuple(dict.fromkeys((*self.quantization.exclude_nodes, *nodes)))
        return self.replace(exclude_nodes=merged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in the bundle metadata), one object per section."""
        return {
            "name": self.name, "backend": self.backend, "description": self.description,
            **{key: section_to_dict(getattr(self, key)) for key in _SECTIONS}, "extra": dict(self.extra),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantRecipe:
        """Inverse of :meth:`to_dict`; also reads the flat form of older bundles. Unknown keys are an error."""
        data = dict(data)
        head = {k: data.pop(k) for k in ("name", "backend", "description", "extra") if k in data}
        if "name" not in head or "backend" not in head:
            raise ValueError("a quantization recipe needs 'name' and 'backend'")
        nested = {k: data.pop(k) for k in _SECTIONS if k in data and isinstance(data[k], Mapping)}
        _, per_section = _split(data, set())  # the flat (older) form; refuses unknown keys
        sections = {}
        for key in {*nested, *per_section}:
            values = {**section_to_dict(section_from_dict(_SECTIONS[key], nested.get(key, {}), key)),
                      **per_section.get(key, {})}  # fmt: skip
            sections[key] = section_from_dict(_SECTIONS[key], values, key)
        return cls(head["name"], head["backend"], head.get("description", ""), extra=head.get("extra") or {},
                   **sections)  # fmt: skip


RECIPES: dict[str, QuantRecipe] = {
    r.name: r
    for r in (
        QuantRecipe.make(
            "ort-int8",
            "onnxruntime",
            "ORT static QDQ: U8S8 per-channel Conv/MatMul, float outputs, fused GELU, MatMulIntegerToFloat",
        ),
        QuantRecipe.make(
            "ort-int8-entropy",
            "onnxruntime",
            "ort-int8 with entropy (KL) calibration of the activation ranges",
            calibration_method="entropy",
        ),
        QuantRecipe.make(
            "ort-int8-decoder",
            "onnxruntime",
            "ort-int8 applied to the encoder and the prompt/mask decoder",
            quantize_decoder=True,
        ),
        QuantRecipe.make(
            "ort-qdq-default",
            "onnxruntime",
            "ONNX Runtime's default static QDQ (every supported op, per-tensor S8S8); for comparison",
            per_channel=False,
            activation_type="int8",
            op_types=("all",),
            quantize_activation_matmuls=True,
            quantize_outputs_of=("all",),
            fuse_gelu=False,
            lower_matmuls=False,
        ),
        QuantRecipe.make(
            "ov-nncf-default",
            "openvino",
            "NNCF as the OpenVINO notebooks use it: transformer model type, every other setting NNCF's default",
            smooth_quant_alpha=None,
            preset="default",
        ),
        QuantRecipe.make(
            "ov-int8",
            "openvino",
            "NNCF post-training quantization, transformer model type, SmoothQuant alpha 0.5",
            smooth_quant_alpha=0.5,
        ),
        QuantRecipe.make(
            "ov-int8-sq95",
            "openvino",
            "ov-int8 with NNCF's default SmoothQuant alpha 0.95 (strong outlier migration)",
            smooth_quant_alpha=0.95,
        ),
        QuantRecipe.make(
            "ov-int8-mixed",
            "openvino",
            "ov-int8 with asymmetric activations (NNCF 'mixed' preset), no SmoothQuant",
            preset="mixed",
            smooth_quant_alpha=-1.0,
        ),
        QuantRecipe.make(
            "trt-int8",
            "tensorrt",
            "TensorRT explicit quantization: symmetric S8S8 Q/DQ on Conv/MatMul/Gemm inputs",
            activation_type="int8",
            activation_symmetric=True,
            op_types=("Conv", "MatMul", "Gemm"),
            quantize_outputs_of=(),
            quantize_bias=False,
            fuse_gelu=False,
            lower_matmuls=False,
        ),
    )
}

DEFAULT_RECIPES = {"onnxruntime": "ort-int8", "openvino": "ov-int8", "tensorrt": "trt-int8"}

# ``recipe="auto"``: the recipes tried in this order; the gate picks, then the measured speed
SEARCH_RECIPES = {
    "onnxruntime": ("ort-int8", "ort-int8-entropy"),
    "openvino": ("ov-nncf-default", "ov-int8", "ov-int8-mixed"),
    "tensorrt": ("trt-int8",),
}


def get_recipe(name: str) -> QuantRecipe:
    """The named recipe; unknown names raise ``ValueError`` listing the known ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown quantization recipe {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]


def default_recipe(backend: str) -> QuantRecipe:
    """The recommended recipe for ``backend``."""
    if backend not in DEFAULT_RECIPES:
        raise ValueError(f"unknown backend {backend!r}; quantization supports {QUANT_BACKENDS}")
    return RECIPES[DEFAULT_RECIPES[backend]]
