"""``edgesam export MODEL -o BUNDLE_DIR``: a verified ONNX bundle."""

from __future__ import annotations

import argparse

from .common import check_bundle_out
from .grammar import Output, add_json, add_model, add_out, add_quiet, add_threads


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to a verified ONNX bundle folder")
    add_model(p, required=True, note="model name (see `edgesam models`) or checkpoint file", backend=False,
              runtime_options=False, legacy=())
    add_out(p, required=True, help="bundle folder to create", legacy=("--output",))
    p.add_argument("--arch", help="expected architecture (detected from the checkpoint by default)")
    p.add_argument("--image-size", type=int, help="input side S when the checkpoint is not 1024 px")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--sam-decoder", action="store_true",
                   help="also write decoder_sam.onnx with segment_anything's ONNX interface")
    p.add_argument("--sam-all-masks", action="store_true",
                   help="decoder_sam.onnx returns all 4 masks instead of the best one")
    p.add_argument("--external-data", action="store_true", help="store weights in .onnx.data files")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing bundle folder (or an empty folder); nothing else is replaced")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                   help="fp16: an FP16-typed bundle for TensorRT (10 and 11, strongly typed), LayerNorm/Softmax/"
                        "mask logits kept in float32, gated against fp32 with ONNX Runtime (default fp32)")
    p.add_argument("--min-iou", type=float, default=None,
                   help="fp16 gate: minimum mean mask IoU against the fp32 bundle (default 0.97)")
    add_threads(p)
    add_quiet(p, help="print only the result")
    add_json(p, help="print the bundle's path and metadata as JSON on stdout")
    p.set_defaults(func=run)


def _threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


def run(args: argparse.Namespace) -> int:
    import json

    from edgesam.export import export_bundle, load_bundle

    check_bundle_out(args.out, overwrite=args.overwrite)
    if args.precision == "fp16":
        return _run_fp16(args)
    if args.min_iou is not None:
        raise ValueError("--min-iou applies to --precision fp16 only")
    _threads(args)
    out = export_bundle(
        args.model,
        args.out,
        arch=args.arch,
        image_size=args.image_size,
        opset=args.opset,
        sam_decoder=args.sam_decoder,
        sam_single_mask=not args.sam_all_masks,
        external_data=True if args.external_data else None,
        overwrite=args.overwrite,
    )
    meta = load_bundle(out).metadata
    Output(args).result(
        f"bundle: {out} ({meta['arch']}, {meta['image_size']} px, opset {meta['opset']})\n"
        f"verified against torch: {json.dumps(meta['verification']['measured'], sort_keys=True)}",
        {"bundle": str(out), "arch": meta["arch"], "image_size": meta["image_size"], "opset": meta["opset"],
         "precision": meta.get("precision"), "verification": meta["verification"]})  # fmt: skip
    return 0


def _run_fp16(args: argparse.Namespace) -> int:
    """Export fp32 into a temporary folder, convert it to FP16 (gated), write only the FP16 bundle."""
    import shutil
    import tempfile
    from pathlib import Path

    from edgesam.export import export_bundle
    from edgesam.quantization.accuracy import DEFAULT_MIN_IOU
    from edgesam.quantization.fp16 import fp16_bundle

    out = Path(args.out).absolute()
    min_iou = DEFAULT_MIN_IOU if args.min_iou is None else args.min_iou
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"--min-iou must be in (0, 1], got {min_iou}")
    out.parent.mkdir(parents=True, exist_ok=True)
    _threads(args)
    report = Output(args)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.fp32-", dir=out.parent))
    try:
        fp32 = export_bundle(args.model, work / "fp32", arch=args.arch, image_size=args.image_size,
                             opset=args.opset, sam_decoder=args.sam_decoder, sam_single_mask=not args.sam_all_masks,
                             external_data=True if args.external_data else None)  # fmt: skip
        result = fp16_bundle(fp32, out, min_mask_iou=min_iou, overwrite=args.overwrite, log=report.info)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.result(f"bundle: {result.path} (fp16 for TensorRT; runs on tensorrt, onnxruntime)\n"
                  f"fp16 vs fp32 (onnxruntime CPU): {result.report.summary()}",
                  {"bundle": str(result.path), "precision": "fp16", "fp16_vs_fp32": result.report.summary()})
    return 0
