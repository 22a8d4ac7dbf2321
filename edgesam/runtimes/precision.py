"""Faithful by default: the precision a backend runs a bundle at, and the check when it is lowered.

Every backend takes ``precision=`` with the same words: ``"fp32"``, ``"bf16"``, ``"fp16"``
(and TensorRT's ``"int8"`` for Q/DQ bundles). None means the bundle's own precision: f32 for
an fp32 bundle, and for the float parts of an INT8 bundle the precision its accuracy gate
measured them at (``float_precision`` in ``edgesam.json``, top level or under
``quantization``; f32 when not recorded). Anything lower is only used when asked for, and
then the backend runs the bundle's golden inputs when it loads and raises
:class:`PrecisionCheckError` (naming the measured IoU) below the bundle's tolerance; pass
``check=False`` to accept the lower precision unchecked, or a float to use another bound.
numpy only.
"""

from __future__ import annotations

import warnings
from typing import Any

from edgesam.bundle.format import Bundle
from edgesam.fidelity import GOLDEN_MASK_IOU
from edgesam.runtimes.bundle_backend import NonFiniteOutputError
from edgesam.runtimes.golden import GoldenMismatchError, GoldenResult, check_golden

__all__ = [
    "FLOAT_PRECISIONS",
    "PrecisionCheckError",
    "bundle_float_precision",
    "check_precision",
    "normalize_precision",
    "precision_tolerance",
]

#: The precision words every backend understands (TensorRT adds "int8").
FLOAT_PRECISIONS = ("fp32", "bf16", "fp16")
_ALIASES = {"f32": "fp32", "float32": "fp32", "f16": "fp16", "float16": "fp16", "half": "fp16",
            "bfloat16": "bf16"}  # fmt: skip
#: OpenVINO's spelling of each precision word.
OPENVINO_NAMES = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


class PrecisionCheckError(GoldenMismatchError):
    """A lowered precision does not reproduce the bundle's reference outputs closely enough."""


def normalize_precision(value: str | None, *, allowed: tuple[str, ...] = FLOAT_PRECISIONS,
                        name: str = "precision") -> str | None:  # fmt: skip
    """The precision word for ``value`` (``"f32"`` -> ``"fp32"``, ...); None stays None.

    Raises:
        ValueError: not one of ``allowed`` (the message names them).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string such as 'fp32', got {type(value).__name__}")
    word = _ALIASES.get(value.lower(), value.lower())
    if word not in allowed:
        raise ValueError(f"{name} must be one of {allowed} or None, got {value!r}")
    return word


def bundle_float_precision(bundle: Bundle) -> str:
    """The precision the bundle's float parts were verified at (``"fp32"`` unless recorded)."""
    meta = bundle.metadata
    recorded = meta.get("float_precision") or (meta.get("quantization") or {}).get("float_precision")
    try:
        return normalize_precision(recorded) or "fp32"
    except (TypeError, ValueError):
        warnings.warn(f"bundle {bundle.root} records an unknown float precision {recorded!r}; using fp32",
                      stacklevel=3)  # fmt: skip
        return "fp32"


def precision_tolerance(bundle: Bundle, precision: str) -> float:
    """Smallest mean golden mask IoU accepted when ``bundle`` runs at ``precision``.

    ``precision_check.min_mask_iou`` from the bundle metadata when recorded, else
    :data:`edgesam.fidelity.GOLDEN_MASK_IOU` for the precision (the ``"int8"`` bound for an
    INT8 bundle, whose reference is the fp32 torch model).
    """
    recorded = (bundle.metadata.get("precision_check") or {}).get("min_mask_iou")
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool):
        return float(recorded)
    key = "int8" if bundle.precision == "int8" else precision
    return float(GOLDEN_MASK_IOU.get(key, GOLDEN_MASK_IOU["fp32"]))


def _threshold(check: Any, bundle: Bundle, precision: str) -> float | None:
    if check is False or check is None:
        return None
    if check is True:
        return precision_tolerance(bundle, precision)
    if isinstance(check, (int, float)) and 0.0 <= float(check) <= 1.0:
        return float(check)
    raise ValueError(f"check must be True, False or a mask IoU bound in [0, 1], got {check!r}")


def check_precision(backend: Any, bundle: Bundle, precision: str, check: Any = True) -> GoldenResult | None:
    """Run the golden check when ``precision`` is below the bundle's own; None when not run.

    Args:
        backend: the loaded backend (anything :func:`~edgesam.runtimes.golden.check_golden` runs).
        bundle: its bundle.
        precision: the precision the backend runs at (a :data:`FLOAT_PRECISIONS` word).
        check: True (the bundle's tolerance), False (no check) or an IoU bound.

    Raises:
        PrecisionCheckError: the measured mean mask IoU is below the bound.
    """
    bound = _threshold(check, bundle, precision)
    if bound is None or precision in ("fp32", bundle_float_precision(bundle)):
        return None
    try:
        result = check_golden(backend, bundle)
    except NonFiniteOutputError as exc:
        raise PrecisionCheckError(f"golden check at {precision} (below the bundle's "
                                  f"{bundle_float_precision(bundle)}): {exc}; or pass check=False to accept it "
                                  "unchecked") from exc  # fmt: skip
    if not result.mask_iou >= bound:
        name = getattr(backend, "name", type(backend).__name__)
        raise PrecisionCheckError(
            f"{name} at {precision} does not reproduce bundle {bundle.root.name}'s reference outputs: "
            f"measured mean mask IoU {result.mask_iou:.4f} (min {result.min_mask_iou:.4f}, embedding relative "
            f"error {result.embedding_rel_error:.3g}) is below the tolerance {bound:.4f}. Run it at "
            f"{bundle_float_precision(bundle)} (precision=None), or accept the difference with check=False "
            f"(CLI: --no-precision-check)."
        )
    return result
