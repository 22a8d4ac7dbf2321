"""INT8 quantization of exported bundles: recipes, one calibration set, three backends, a built-in gate.

    from edgesam.quantization import quantize_bundle
    result = quantize_bundle("vit_t_bundle", "vit_t_int8", backend="onnxruntime")
    print(result.report.summary())

* :mod:`~edgesam.quantization.recipes`: :class:`QuantRecipe` and the named recipes.
* :mod:`~edgesam.quantization.calibration`: :class:`CalibrationSet` (images -> numpy feeds).
* :mod:`~edgesam.quantization.onnxruntime_int8`, :mod:`~edgesam.quantization.openvino_int8`,
  :mod:`~edgesam.quantization.tensorrt_int8`: the backends.
* :mod:`~edgesam.quantization.accuracy` and :mod:`~edgesam.quantization.sensitivity`: the gate
  and the search for layers to keep in float.

Importing this package needs numpy and OpenCV only; each backend's toolchain (onnxruntime,
openvino + nncf, tensorrt) is imported when used.
"""

from __future__ import annotations

from edgesam.quantization.accuracy import DEFAULT_MIN_IOU, AccuracyGateError, AccuracyReport, compare_predictors
from edgesam.quantization.calibration import CalibrationError, CalibrationSet
from edgesam.quantization.quantize import AlreadyQuantizedError, NotFasterError, QuantizeResult, quantize_bundle
from edgesam.quantization.recipes import RECIPES, QuantRecipe, default_recipe, get_recipe

__all__ = [
    "DEFAULT_MIN_IOU",
    "RECIPES",
    "AccuracyGateError",
    "AccuracyReport",
    "AlreadyQuantizedError",
    "CalibrationError",
    "CalibrationSet",
    "NotFasterError",
    "QuantRecipe",
    "QuantizeResult",
    "compare_predictors",
    "default_recipe",
    "get_recipe",
    "quantize_bundle",
]
