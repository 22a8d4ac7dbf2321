"""``fp16_bundle``: fp32 bundle in, gated FP16-typed bundle out (TensorRT's FP16 route).

TensorRT 11 removed the FP16 builder flag; TensorRT 10 and 11 both build an FP16-typed ONNX
graph strongly typed. This step writes such a bundle from an fp32 one
(:func:`edgesam.export.fp16.convert_onnx_fp16`: LayerNorm, Softmax, the decomposed
LayerNorm2d pieces and the final mask logits stay float32; I/O stays float32), measures it
against the fp32 bundle with the same end-to-end gate as INT8
(:func:`~edgesam.quantization.accuracy.compare_predictors`, both on ONNX Runtime CPU) plus the
bundle's golden outputs, records the result under ``quantization.accuracy`` in
``edgesam.json`` (``precision: "fp16"``), and only then renames the folder into place.

On CPU, ONNX Runtime runs float16 ops it has no kernel for in float32 between float16 casts:
the gate sees float16 storage rounding everywhere, but float32 accumulation where TensorRT
may accumulate in float16. TensorRT's own numbers come from the backend's golden check when
the engine loads, or from :func:`edgesam.quantization.tensorrt_int8.fp16_gate` on a GPU.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from edgesam.bundle.format import METADATA_FILE, check_replaceable, load_bundle, publish_folder, write_metadata
from edgesam.export.fp16 import FP32_OPS, convert_onnx_fp16
from edgesam.quantization.accuracy import DEFAULT_MIN_IOU, AccuracyGateError, compare_predictors
from edgesam.quantization.calibration import CalibrationSet
from edgesam.quantization.quantize import AlreadyQuantizedError, QuantizeResult

__all__ = ["FP16_ROLES", "fp16_bundle"]

#: Graphs converted by default.
FP16_ROLES: tuple[str, ...] = ("encoder", "decoder")
GATE_RUNTIME = "onnxruntime CPUExecutionProvider (float16 tensors; ops without a CPU float16 kernel run in float32)"


def fp16_bundle(
    bundle_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    roles: Sequence[str] = FP16_ROLES,
    fp32_ops: Sequence[str] = FP32_OPS,
    min_mask_iou: float = DEFAULT_MIN_IOU,
    gate: bool = True,
    heldout_images: int = 4,
    prompts_per_image: int = 8,
    overwrite: bool = False,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> QuantizeResult:
    """Convert the fp32 bundle ``bundle_dir`` to an FP16-typed bundle in ``out_dir``, gated.

    Args:
        bundle_dir: an fp32 bundle (``edgesam export``).
        out_dir: the FP16 bundle folder to create.
        roles: graphs to convert (``"encoder"``, ``"decoder"``); others are copied as they are.
        fp32_ops: op types kept in float32 (see :data:`edgesam.export.fp16.FP32_OPS`).
        min_mask_iou: the gate's threshold on the mean mask IoU vs the fp32 bundle.
        gate: enforce the threshold (False: measure and record only).
        heldout_images: package sample images the gate runs on.
        prompts_per_image: point/box prompts sampled per image.
        overwrite: replace an existing bundle folder (or empty folder) at ``out_dir``; an existing
            ``out_dir`` is otherwise an error.
        seed: sample-image and prompt seed.
        log: receives progress lines.

    Returns:
        :class:`~edgesam.quantization.quantize.QuantizeResult` (path and accuracy report).

    Raises:
        AlreadyQuantizedError: the source bundle is not fp32.
        ValueError: an unknown role, or ``out_dir`` inside the source bundle.
        AccuracyGateError: the gate failed and ``gate`` is True (nothing is written).
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
        ValueError: ``overwrite`` is True but ``out_dir`` is neither a bundle folder nor an empty folder
            (nothing else is ever deleted).
    """
    from edgesam.runtimes.golden import check_golden
    from edgesam.runtimes.loader import load_backend

    say = log or (lambda _msg: None)
    source = load_bundle(bundle_dir)
    if source.precision != "fp32" or source.metadata.get("quantization"):
        raise AlreadyQuantizedError(f"bundle {source.root} is {source.precision}, not fp32; convert its fp32 original")
    unknown = [r for r in roles if r not in ("encoder", "decoder")]
    if unknown or not roles:
        raise ValueError(f"roles must be a non-empty subset of ('encoder', 'decoder'), got {list(roles)}")
    out = Path(out_dir).absolute()
    check_replaceable(out, overwrite=overwrite)
    if out == source.root or source.root in out.parents:
        raise ValueError(f"write the FP16 bundle outside the source bundle {source.root}")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        models = dict(source.metadata["models"])
        graphs: dict[str, Any] = {}
        for role, name in models.items():
            if not name:
                continue
            if role in roles:
                say(f"converting {name} to float16 (float32 kept for {', '.join(fp32_ops)} and the final logits)")
                graphs[role] = convert_onnx_fp16(source.path(role), stage / name, fp32_ops=fp32_ops)
            else:
                shutil.copy2(source.path(role), stage / name)
        meta = {k: v for k, v in source.metadata.items() if k not in ("format", "format_version", "files")}
        record: dict[str, Any] = {
            "backend": "tensorrt", "runs_on": ["tensorrt", "onnxruntime"],
            "recipe": {"name": "fp16", "description": "FP16-typed graph, fragile ops and mask logits in float32",
                       "fp32_ops": list(fp32_ops), "roles": list(roles)},
            "calibration": {"source": "package samples", "images": 0, "heldout": heldout_images,
                            "gate_runtime": GATE_RUNTIME},
            "graphs": graphs,
            "source": {"arch": source.arch, "encoder_sha256": source.sha256("encoder"),
                       "decoder_sha256": source.sha256("decoder")},
            "accuracy": None,
        }  # fmt: skip
        meta.update(precision="fp16", quantization=record)
        write_metadata(stage, meta)
        held = CalibrationSet.from_samples(heldout_images, seed=seed + 10_000, image_size=source.image_size,
                                           pixel_mean=source.pixel_mean, pixel_std=source.pixel_std)  # fmt: skip
        reference = load_backend(source.root, "onnxruntime")
        candidate = load_backend(stage, "onnxruntime")
        report = compare_predictors(reference, candidate, held, prompts_per_image=prompts_per_image,
                                    min_mask_iou=min_mask_iou, seed=seed + 1)  # fmt: skip
        golden = check_golden(candidate)
        say(f"gate: {report.summary()}; golden mask IoU {golden.mask_iou:.4f}")
        if gate and not report.passed:
            raise AccuracyGateError(
                f"the FP16 bundle fails the accuracy gate: {report.summary()}. Keep more op types in "
                "float32 (fp32_ops), convert only the decoder (roles), or lower the threshold (--min-iou)", report)
        record["accuracy"] = report.to_dict()
        record["golden"] = {"mask_iou": golden.mask_iou, "min_mask_iou": golden.min_mask_iou,
                            "embedding_rel_error": golden.embedding_rel_error,
                            "iou_pred_abs_error": golden.iou_pred_abs_error}  # fmt: skip
        del candidate
        (stage / METADATA_FILE).unlink()
        write_metadata(stage, meta)
        if out.exists() and not overwrite:
            raise FileExistsError(f"{out} appeared while converting; nothing was overwritten")
        publish_folder(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    say(f"wrote {out}")
    return QuantizeResult(out, report)
