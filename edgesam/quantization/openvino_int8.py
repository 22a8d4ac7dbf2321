"""OpenVINO INT8 through NNCF post-training quantization; the result is saved as OpenVINO IR.

NNCF inserts FakeQuantize operations that OpenVINO's CPU plugin fuses into int8 kernels
together with the surrounding element-wise work (GELU, bias, residual adds), which is why
OpenVINO INT8 gains far more over FP32 than ONNX Runtime's QDQ graphs do. The recipe picks
the model type (``transformer``: keeps LayerNorm/Softmax/GELU in float, quantizes MatMul
inputs), SmoothQuant (migrates activation outliers into the weights), the preset and the
layers to leave in float (``ignored_scope``, matched by ONNX node name).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from edgesam.quantization.recipes import QuantRecipe

__all__ = ["compact", "ignored_scope_patterns", "int8_ops", "quantize_openvino", "quiet_nncf", "read_model", "save_ir"]


def read_model(path: str | os.PathLike[str]) -> Any:
    """``openvino.Model`` of an ONNX file or IR (``.xml``)."""
    import openvino as ov

    return ov.Core().read_model(str(path))


def ignored_scope_patterns(names: Iterable[str]) -> list[str]:
    """Regular expressions matching ONNX node names in OpenVINO (convolutions with a bias gain ``/WithoutBiases``)."""
    return [f"^{re.escape(n)}(/WithoutBiases)?$" for n in names]


def quantize_openvino(
    src: str | os.PathLike[str] | Any,
    feeds: Sequence[Mapping[str, np.ndarray]],
    recipe: QuantRecipe,
    *,
    keep_float: Iterable[str] = (),
) -> Any:
    """Quantize an ONNX file (or ``openvino.Model``) with NNCF; returns the quantized ``openvino.Model``.

    Args:
        src: float model.
        feeds: calibration feeds (input name -> array); all of them are used.
        recipe: an OpenVINO recipe (model type, SmoothQuant alpha, preset, bias correction,
            ``exclude_nodes``/``exclude_patterns`` as ONNX node names / regexes).
        keep_float: more ONNX node names to leave in float (from the sensitivity search).
    """
    import nncf

    model = src if not isinstance(src, (str, os.PathLike)) else read_model(src)
    if not feeds:
        raise ValueError("calibration needs at least one sample")
    items = [dict(f) for f in feeds]
    patterns = ignored_scope_patterns([*recipe.quantization.exclude_nodes, *keep_float]) + list(recipe.quantization.exclude_patterns)
    kwargs: dict[str, Any] = {"subset_size": len(items), "fast_bias_correction": recipe.nncf.fast_bias_correction}
    if recipe.nncf.preset != "default":
        kwargs["preset"] = nncf.QuantizationPreset.MIXED if recipe.nncf.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    if recipe.nncf.model_type == "transformer":
        kwargs["model_type"] = nncf.ModelType.TRANSFORMER
        if recipe.nncf.smooth_quant_alpha is not None:
            kwargs["advanced_parameters"] = nncf.AdvancedQuantizationParameters(
                smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=float(recipe.nncf.smooth_quant_alpha))
            )
    if patterns:
        kwargs["ignored_scope"] = nncf.IgnoredScope(patterns=patterns, validate=False)
    with quiet_nncf():
        return nncf.quantize(model, nncf.Dataset(items), **kwargs)


@contextlib.contextmanager
def quiet_nncf() -> Iterator[None]:
    """Silence NNCF while it runs: its INFO log lines and the progress bars it draws on stdout.

    NNCF's bars (``rich``) write to whatever ``sys.stdout`` is when they draw, so both standard
    streams are captured for the duration; what was captured is written to stderr if NNCF
    raises, so a failure still explains itself. The caller shows its own progress line.
    """
    import logging

    import nncf

    nncf.set_log_level(logging.WARNING)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise


def _quantized_input(node: Any) -> bool:
    """True when ``node`` is a FakeQuantize (behind layout-only ops) or an int8-compressed weight."""
    for _ in range(6):
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant":
            return str(node.get_element_type()) in ("<Type: 'int8_t'>", "<Type: 'uint8_t'>", "i8", "u8")
        if kind not in ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Convert", "Subtract", "Multiply"):
            return False
        if kind in ("Subtract", "Multiply") and node.input_value(1).get_node().get_type_name() != "Constant":
            return False  # arithmetic on activations, not a weight's dequantization
        node = node.input_value(0).get_node()
    return False


def int8_ops(model: Any) -> tuple[int, int]:
    """``(INT8, total)`` counts of the convolutions and matrix products of an NNCF ``openvino.Model``.

    An op counts as INT8 when each of its inputs is quantized: an activation behind a
    FakeQuantize (through layout-only ops) or a weight stored as int8. The attention's
    ``softmax @ V`` products, which NNCF leaves in float, count as float.
    """
    total = quantized = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution", "MatMul"):
            continue
        total += 1
        quantized += all(_quantized_input(op.input_value(i).get_node()) for i in range(op.get_input_size()))
    return quantized, total


def compact(model: Any) -> Any:
    """Fold constants and shape subgraphs of ``model`` in place (OpenVINO's MOC pipeline).

    NNCF returns the graph it was given plus FakeQuantize nodes; the ``ShapeOf`` chains of the
    ONNX export and the per-layer range constants survive it. Folding them changes no value
    (the outputs are bit-identical) and makes the vit_t INT8 IR about 0.7 MB smaller. The
    pipeline lives in a private OpenVINO module (its own converter uses it); where an OpenVINO
    release lacks it, the model is returned as it is, with a warning.
    """
    try:
        from openvino._offline_transformations import apply_moc_transformations
    except ImportError as err:
        warnings.warn(f"OpenVINO's constant folding is unavailable ({err}); the IR is saved without it and is "
                      "larger, with the same outputs", RuntimeWarning, stacklevel=2)  # fmt: skip
        return model
    apply_moc_transformations(model, cf=True)
    return model


def save_ir(model: Any, folder: str | os.PathLike[str], stem: str) -> tuple[Path, Path]:
    """Write ``model`` compacted as ``<stem>.xml`` + ``<stem>.bin`` into ``folder`` (weights kept as they are)."""
    import openvino as ov

    xml = Path(folder) / f"{stem}.xml"
    ov.save_model(compact(model), str(xml), compress_to_fp16=False)
    return xml, xml.with_suffix(".bin")
