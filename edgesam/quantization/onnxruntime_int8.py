"""Static QDQ INT8 quantization of one ONNX graph with ONNX Runtime's quantizer.

Pipeline (:func:`quantize_onnx`): prepare the graph (:func:`edgesam.quantization.ort_graph.prepare_model`),
calibrate activation ranges one sample at a time (memory stays flat at 1024 px, and the
ranges are cached in a JSON file that the sensitivity search reuses), insert Q/DQ nodes as
the recipe says, then optionally lower the Q/DQ MatMuls to ``MatMulIntegerToFloat``.
The same function writes TensorRT's explicit-quantization graphs (symmetric int8, no
ORT-specific rewrites) when given a TensorRT recipe.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from edgesam.quantization.recipes import QuantRecipe

__all__ = ["OrtQuantResult", "calibrate", "excluded_nodes", "prepare", "quantize_onnx"]

_TYPES = {"int8": "QInt8", "uint8": "QUInt8"}
_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


@dataclass(frozen=True)
class OrtQuantResult:
    """What :func:`quantize_onnx` did.

    Attributes:
        path: the quantized ONNX file.
        quantized_nodes: names of the nodes whose inputs were quantized.
        excluded_nodes: quantizable nodes kept in float.
        lowered_matmuls: MatMuls rewritten to ``MatMulIntegerToFloat``.
        fused_gelu: GELU patterns fused before quantizing.
    """

    path: Path
    quantized_nodes: tuple[str, ...]
    excluded_nodes: tuple[str, ...]
    lowered_matmuls: int
    fused_gelu: int


class _Reader:
    """``CalibrationDataReader`` over a list of feeds, with the range protocol ORT's strided calibration uses."""

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> None:
        self._feeds = list(feeds)
        self._items: list[Mapping[str, np.ndarray]] = []
        self.set_range(0, len(self._feeds))

    def __len__(self) -> int:
        return len(self._feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._items = list(self._feeds[start_index:end_index])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return dict(self._items.pop(0)) if self._items else None


def _reader(feeds: Sequence[Mapping[str, np.ndarray]]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(_Reader, CalibrationDataReader):  # type: ignore[misc]
        pass

    return Reader(feeds)


def prepare(src: str | os.PathLike[str], workdir: Path, recipe: QuantRecipe) -> Path:
    """The graph the quantizer sees, written into ``workdir`` (``prepared.onnx``)."""
    from edgesam.quantization.ort_graph import prepare_model

    return prepare_model(src, workdir / "prepared.onnx", gelu=recipe.ort.fuse_gelu)


def excluded_nodes(model: Any, recipe: QuantRecipe, extra: Iterable[str] = ()) -> list[str]:
    """Quantizable nodes of ``model`` that ``recipe`` (plus ``extra`` names) keeps in float."""
    from edgesam.quantization.ort_graph import activation_matmuls, batched_weight_matmuls

    names = [n.name for n in model.graph.node]
    known = set(names)
    wanted = [*recipe.quantization.exclude_nodes, *extra]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"nodes to keep in float not found in the graph: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    out = list(dict.fromkeys(wanted))
    for pattern in recipe.quantization.exclude_patterns:
        rx = re.compile(pattern)
        out += [n for n in names if rx.search(n) and n not in out]
    if not recipe.quantization.quantize_activation_matmuls:
        out += [n for n in activation_matmuls(model) if n not in out]
    out += [n for n in batched_weight_matmuls(model) if n not in out]
    return out


def calibrate(
    prepared: Path, feeds: Sequence[Mapping[str, np.ndarray]], recipe: QuantRecipe, cache: Path
) -> Path | None:
    """Collect activation ranges of ``prepared`` over ``feeds`` into the JSON ``cache``.

    An existing cache is reused. Returns None on ONNX Runtime versions without calibration
    caches (< 1.23): :func:`quantize_onnx` then calibrates inside ``quantize_static``.
    """
    if cache.is_file():
        return cache
    if not feeds:
        raise ValueError("calibration needs at least one sample")
    try:
        from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    except ImportError:
        return None
    options: dict[str, Any] = {"symmetric": recipe.quantization.activation_symmetric}
    if recipe.calibration.method == "percentile":
        options["percentile"] = recipe.calibration.percentile
    ops = None if "all" in recipe.quantization.op_types else list(recipe.quantization.op_types)
    tmp = cache.parent / "calibration"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        calibrator = create_calibrator(prepared, ops, augmented_model_path=str(tmp / "augmented.onnx"),
                                       calibrate_method=_calibration_method(recipe), extra_options=options)  # fmt: skip
        reader = _reader(feeds)
        for start in range(len(reader)):  # one sample at a time: flat memory at 1024 px
            reader.set_range(start, start + 1)
            calibrator.collect_data(reader)
        ranges = calibrator.compute_data()
        del calibrator
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    save_tensors_data(ranges, cache)
    return cache


def quantize_onnx(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    feeds: Sequence[Mapping[str, np.ndarray]],
    recipe: QuantRecipe,
    *,
    workdir: str | os.PathLike[str],
    keep_float: Iterable[str] = (),
) -> OrtQuantResult:
    """Quantize the ONNX graph ``src`` into ``dst`` following ``recipe``.

    Args:
        src: float ONNX file (an exported encoder or decoder).
        dst: output ONNX file.
        feeds: calibration feeds (input name -> array), e.g. from
            :class:`edgesam.quantization.calibration.CalibrationSet`.
        recipe: quantization settings.
        workdir: scratch folder; ``prepared.onnx`` and the calibration cache
            ``ranges-<method>.json`` stay there so repeated calls (sensitivity search) skip
            preparation and calibration.
        keep_float: extra node names (of the prepared graph) to leave unquantized.
    """
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from edgesam.quantization.ort_graph import lower_matmuls, quantizable_nodes

    ort.set_default_logger_severity(3)  # the quantizer's sessions report expected unused initializers
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    prepared = work / "prepared.onnx"
    if not prepared.is_file():
        prepare(src, work, recipe)
    cache = calibrate(prepared, feeds, recipe, work / f"ranges-{recipe.calibration.method}.json")
    model = onnx.load(str(prepared))
    exclude = excluded_nodes(model, recipe, keep_float)
    all_ops = "all" in recipe.quantization.op_types
    candidates = [n.name for n in model.graph.node] if all_ops else quantizable_nodes(model, recipe.quantization.op_types,
                                                                                      activation_matmuls_too=True)  # fmt: skip
    outputs_of = set(recipe.quantization.quantize_outputs_of)
    op_types_seen = sorted({n.op_type for n in model.graph.node})
    no_output_q = [] if "all" in outputs_of else [t for t in op_types_seen if t not in outputs_of]
    extra: dict[str, Any] = {
        "ActivationSymmetric": recipe.quantization.activation_symmetric,
        "WeightSymmetric": recipe.quantization.weight_symmetric,
        "OpTypesToExcludeOutputQuantization": no_output_q,
        "QuantizeBias": recipe.quantization.quantize_bias,
        "CalibTensorRangeSymmetric": recipe.quantization.activation_symmetric,
        "CalibPercentile": recipe.calibration.percentile,
    }
    cache_args: dict[str, Any] = {"calibration_cache_path": str(cache)} if cache else {}
    reader = None if cache else _reader(feeds)
    if reader is not None:
        extra["CalibStridedMinMax"] = 1  # one sample per calibration step
    quantize_static(
        str(prepared), str(dst), reader, quant_format=QuantFormat.QDQ,
        op_types_to_quantize=None if all_ops else list(recipe.quantization.op_types), per_channel=recipe.quantization.per_channel,
        activation_type=getattr(QuantType, _TYPES[recipe.quantization.activation_type]),
        weight_type=getattr(QuantType, _TYPES[recipe.quantization.weight_type]), nodes_to_exclude=exclude,
        calibrate_method=_calibration_method(recipe), extra_options=extra, **cache_args,
    )  # fmt: skip
    lowered = 0
    if recipe.ort.lower_matmuls:
        quantized = onnx.load(str(dst))
        lowered = lower_matmuls(quantized)
        onnx.save(quantized, str(dst))
    fused = sum(1 for n in model.graph.node if n.op_type == "Gelu")
    excluded = set(exclude)
    return OrtQuantResult(
        path=Path(dst),
        quantized_nodes=tuple(n for n in candidates if n not in excluded),
        excluded_nodes=tuple(n for n in candidates if n in excluded),
        lowered_matmuls=lowered,
        fused_gelu=fused,
    )


def _calibration_method(recipe: QuantRecipe) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return getattr(CalibrationMethod, _METHODS[recipe.calibration.method])
