"""Quantization recipes: every choice of a quantization run in one frozen, serialisable record.

A recipe is stored verbatim in the quantized bundle's metadata (``quantization.recipe``), so
a bundle says exactly how it was made. Named recipes (:data:`RECIPES`) cover the three
backends; :func:`get_recipe` looks them up and :meth:`QuantRecipe.replace` derives variants.

Why the ONNX Runtime defaults look the way they do (measured on the TinyViT-5M encoder,
x86 with AVX-512 VNNI; see ``benchmarks/quantization.py``):

* ``uint8`` activations with ``int8`` weights: ORT's x86 kernels fuse every U8S8 QDQ
  convolution into ``QLinearConv``; with S8S8 the depthwise convolutions stay in float.
* only ``Conv`` and constant-weight ``MatMul`` are quantized, and the MatMul outputs stay
  float: quantizing Add/Mul/Softmax/the GELU pieces (ORT's default) surrounds every float op
  with Quantize/Dequantize pairs and breaks ORT's GELU fusion, which makes INT8 barely faster
  than FP32.
* the attention's activation x activation MatMuls stay float (no speed gain, more error).

OpenVINO: SmoothQuant alpha 0.5 by default. NNCF's transformer default (0.95) cost embedding
cosine on the TinyViT encoder at 256 px (0.91-0.99 vs 0.99-0.998 with 0.5) and was neutral at
1024 px; ``ov-int8-sq95`` keeps NNCF's value for models with strong activation outliers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "BACKENDS",
    "CALIBRATION_METHODS",
    "DEFAULT_RECIPES",
    "RECIPES",
    "SEARCH_RECIPES",
    "QuantRecipe",
    "default_recipe",
    "get_recipe",
]

BACKENDS = ("onnxruntime", "openvino", "tensorrt")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
_INT_TYPES = ("int8", "uint8")
_TUPLE_FIELDS = ("op_types", "quantize_outputs_of", "exclude_nodes", "exclude_patterns")


@dataclass(frozen=True)
class QuantRecipe:
    """How to quantize a bundle.

    Attributes:
        name: recipe name (recorded in the bundle).
        backend: runtime the result is for: ``"onnxruntime"``, ``"openvino"`` or ``"tensorrt"``.
        description: one line for ``edgesam quantize --help`` and the metadata.
        per_channel: one weight scale per output channel (True) or per tensor.
        activation_type: ``"uint8"`` or ``"int8"``.
        weight_type: ``"int8"`` or ``"uint8"``.
        activation_symmetric: zero point 0 for activations (TensorRT requires it).
        weight_symmetric: zero point 0 for weights.
        calibration_method: ``"minmax"``, ``"entropy"`` or ``"percentile"`` (ORT / TensorRT).
        percentile: the percentile for ``"percentile"`` calibration.
        op_types: ONNX op types whose inputs are quantized (ORT / TensorRT); ``("all",)``: every
            op type ONNX Runtime's quantizer supports.
        quantize_activation_matmuls: also quantize MatMuls of two activations (attention).
        quantize_outputs_of: op types whose outputs get Q/DQ as well (ORT needs it on Conv to
            fuse ``QLinearConv``; MatMul outputs stay float for ``MatMulIntegerToFloat``).
        quantize_bias: store Conv/Gemm biases as int32 (ORT); TensorRT takes float biases.
        exclude_nodes: node names kept in float (exact names).
        exclude_patterns: regular expressions; nodes whose name matches one stay in float.
        fuse_gelu: rewrite the exported erf-GELU pattern into one ``Gelu`` node first (ORT).
        lower_matmuls: turn Q/DQ MatMuls into ``MatMulIntegerToFloat`` with the bias folded in
            (ORT; ONNX Runtime's own fusion is pre-empted by its MatMul+Add->Gemm rewrite).
        model_type: NNCF model type (``"transformer"`` or None).
        smooth_quant_alpha: NNCF SmoothQuant alpha for MatMuls; negative disables it; None
            leaves NNCF's own default (0.95 for transformers).
        fast_bias_correction: NNCF bias correction.
        preset: NNCF preset, ``"performance"`` (symmetric), ``"mixed"`` or ``"default"``
            (NNCF's choice: mixed for transformers).
        quantize_decoder: quantize ``decoder.onnx`` too (default: only the encoder).
        calibration_images: images used for calibration (the rest of a folder is held out).
        heldout_images: images used by the accuracy gate.
        prompts_per_image: prompts sampled per image (decoder calibration and the gate).
        extra: free-form backend options (kept in the metadata).
    """

    name: str
    backend: str
    description: str = ""
    per_channel: bool = True
    activation_type: str = "uint8"
    weight_type: str = "int8"
    activation_symmetric: bool = False
    weight_symmetric: bool = True
    calibration_method: str = "minmax"
    percentile: float = 99.999
    op_types: tuple[str, ...] = ("Conv", "MatMul")
    quantize_activation_matmuls: bool = False
    quantize_outputs_of: tuple[str, ...] = ("Conv",)
    quantize_bias: bool = True
    exclude_nodes: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    fuse_gelu: bool = True
    lower_matmuls: bool = True
    model_type: str | None = "transformer"
    smooth_quant_alpha: float | None = 0.95
    fast_bias_correction: bool = True
    preset: str = "performance"
    quantize_decoder: bool = False
    calibration_images: int = 8
    heldout_images: int = 4
    prompts_per_image: int = 8
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        for key in ("activation_type", "weight_type"):
            if getattr(self, key) not in _INT_TYPES:
                problems.append(f"{key} must be one of {_INT_TYPES}, got {getattr(self, key)!r}")
        if self.calibration_method not in CALIBRATION_METHODS:
            problems.append(f"calibration_method must be one of {CALIBRATION_METHODS}, got {self.calibration_method!r}")
        if not 50.0 < self.percentile <= 100.0:
            problems.append(f"percentile must lie in (50, 100], got {self.percentile}")
        if self.model_type not in (None, "transformer"):
            problems.append(f"model_type must be 'transformer' or None, got {self.model_type!r}")
        if self.preset not in ("performance", "mixed", "default"):
            problems.append(f"preset must be 'performance', 'mixed' or 'default', got {self.preset!r}")
        for key in ("calibration_images", "heldout_images", "prompts_per_image"):
            if int(getattr(self, key)) < 1:
                problems.append(f"{key} must be >= 1, got {getattr(self, key)}")
        if not self.op_types:
            problems.append("op_types must name at least one op type")
        if self.backend == "tensorrt" and not self.activation_symmetric:
            problems.append("TensorRT needs symmetric activations (activation_symmetric=True, int8)")
        if problems:
            raise ValueError(f"invalid quantization recipe {self.name!r}: " + "; ".join(problems))
        # tuples and a plain dict keep the recipe hashable-by-value and JSON friendly
        for key in _TUPLE_FIELDS:
            object.__setattr__(self, key, tuple(getattr(self, key)))
        object.__setattr__(self, "extra", dict(self.extra))

    def replace(self, **changes: Any) -> QuantRecipe:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_excluded(self, nodes: tuple[str, ...] | list[str]) -> QuantRecipe:
        """A copy that also keeps ``nodes`` in float."""
        merged = tuple(dict.fromkeys((*self.exclude_nodes, *nodes)))
        return self.replace(exclude_nodes=merged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in the bundle metadata)."""
        out = dataclasses.asdict(self)
        for key in _TUPLE_FIELDS:
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantRecipe:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown quantization recipe field(s) {unknown}; known: {sorted(names)}")
        return cls(**dict(data))


RECIPES: dict[str, QuantRecipe] = {
    r.name: r
    for r in (
        QuantRecipe(
            "ort-int8",
            "onnxruntime",
            "ORT static QDQ: U8S8 per-channel Conv/MatMul, float outputs, fused GELU, MatMulIntegerToFloat",
        ),
        QuantRecipe(
            "ort-int8-entropy",
            "onnxruntime",
            "ort-int8 with entropy (KL) calibration of the activation ranges",
            calibration_method="entropy",
        ),
        QuantRecipe(
            "ort-int8-decoder",
            "onnxruntime",
            "ort-int8 applied to the encoder and the prompt/mask decoder",
            quantize_decoder=True,
        ),
        QuantRecipe(
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
        QuantRecipe(
            "ov-nncf-default",
            "openvino",
            "NNCF as the OpenVINO notebooks use it: transformer model type, every other setting NNCF's default",
            smooth_quant_alpha=None,
            preset="default",
        ),
        QuantRecipe(
            "ov-int8",
            "openvino",
            "NNCF post-training quantization, transformer model type, SmoothQuant alpha 0.5",
            smooth_quant_alpha=0.5,
        ),
        QuantRecipe(
            "ov-int8-sq95",
            "openvino",
            "ov-int8 with NNCF's default SmoothQuant alpha 0.95 (strong outlier migration)",
            smooth_quant_alpha=0.95,
        ),
        QuantRecipe(
            "ov-int8-mixed",
            "openvino",
            "ov-int8 with asymmetric activations (NNCF 'mixed' preset), no SmoothQuant",
            preset="mixed",
            smooth_quant_alpha=-1.0,
        ),
        QuantRecipe(
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
        raise ValueError(f"unknown backend {backend!r}; quantization supports {BACKENDS}")
    return RECIPES[DEFAULT_RECIPES[backend]]
