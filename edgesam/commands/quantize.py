"""``edgesam quantize``: fp32 bundle -> INT8 bundle for one runtime, gated for accuracy and checked for speed."""

from __future__ import annotations

import argparse
import sys

from .common import check_bundle_out
from .grammar import Output, add_json, add_model, add_out, add_quiet


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from edgesam.quantization.recipes import DEFAULT_RECIPES, QUANT_BACKENDS, RECIPES, SEARCH_RECIPES

    names = ", ".join(f"{n} ({r.backend})" for n, r in RECIPES.items())
    searched = "; ".join(f"{b}: {', '.join(n)}" for b, n in SEARCH_RECIPES.items())
    defaults = ", ".join(f"{b}: {n}" for b, n in DEFAULT_RECIPES.items())
    p = subparsers.add_parser(
        "quantize",
        help="quantize an exported bundle to INT8 (ONNX Runtime, OpenVINO or TensorRT)",
        description="Quantize an fp32 bundle to INT8, compare it with the fp32 bundle on held-out images "
        "with generated point and box prompts, keep the fewest layers out of INT8 that pass, time it "
        "against the fp32 bundle on the same backend, and write a new bundle that records the recipe, "
        "the accuracy and speed reports. Exits with status 1 when the mean mask IoU stays below --min-iou, "
        "or when the result is not measurably faster than the fp32 bundle (unless --allow-slow).",
    )
    add_model(p, required=True, note="fp32 bundle folder (from `edgesam export`)", backend=False,
              runtime_options=False, legacy=())
    p.add_argument("--backend", required=True, choices=QUANT_BACKENDS, help="runtime the INT8 bundle is for")
    add_out(p, required=True, help="INT8 bundle folder to create")
    p.add_argument("--calib", metavar="DIR", help="folder of calibration images (jpg/png, any size): your own "
                   "images are best; default: public-domain photos from scikit-image plus synthetic scenes")  # fmt: skip
    p.add_argument("--recipe", metavar="NAME", default="auto",
                   help=f"quantization recipe: {names}; or 'auto' (default: try {searched}; keep the fastest "
                   f"that passes the gate). Single-recipe defaults: {defaults}")  # fmt: skip
    p.add_argument("--exclude", metavar="REGEX", action="append", default=[],
                   help="keep the layers whose ONNX node name matches REGEX out of INT8 (repeatable)")  # fmt: skip
    p.add_argument("--min-iou", type=float, default=None, metavar="X",
                   help="gate threshold on the mean mask IoU vs fp32 (default 0.97)")  # fmt: skip
    p.add_argument("--no-gate", action="store_true", help="measure and record accuracy, but never fail on it (and keep every layer the recipe quantizes: no layer search)")
    p.add_argument("--no-search", action="store_true",
                   help="do not search for layers to keep out of INT8 when the gate fails")  # fmt: skip
    p.add_argument("--allow-slow", action="store_true",
                   help="write the bundle even when it is not measurably faster than the fp32 bundle")  # fmt: skip
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing bundle folder (or an empty folder); nothing else is replaced")
    p.add_argument("--seed", type=int, default=0, help="sample-image and prompt seed (default 0)")
    add_quiet(p, help="print only the final report")
    add_json(p, help="print the result (bundle, gate, speed) as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import re

    from edgesam.quantization import DEFAULT_MIN_IOU, AccuracyGateError, NotFasterError, quantize_bundle

    check_bundle_out(args.out, overwrite=args.overwrite)
    min_iou = DEFAULT_MIN_IOU if args.min_iou is None else float(args.min_iou)
    if not 0.0 <= min_iou <= 1.0:
        raise ValueError(f"--min-iou must lie in [0, 1], got {min_iou}")
    for pattern in args.exclude:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"--exclude {pattern!r} is not a regular expression ({exc})") from None
    report = Output(args)
    try:
        with report.chatter():  # ONNX Runtime's calibration prints: never on stdout with --json
            result = quantize_bundle(
                args.model, args.out, backend=args.backend, calib_dir=args.calib, recipe=args.recipe,
                min_mask_iou=min_iou, gate=not args.no_gate, search=not (args.no_search or args.no_gate),
                overwrite=args.overwrite, seed=args.seed, log=None if args.quiet else report.info,
                require_faster=not args.allow_slow, exclude_patterns=tuple(args.exclude),
            )  # fmt: skip
    except AccuracyGateError as exc:
        print(f"edgesam quantize: {exc}", file=sys.stderr)
        print("no bundle was written", file=sys.stderr)
        return 1
    except NotFasterError as exc:
        print(f"edgesam quantize: {exc}", file=sys.stderr)
        print("no bundle was written (--allow-slow writes it anyway)", file=sys.stderr)
        return 1
    if not result.report.passed:
        print(f"warning: below the {min_iou} threshold; written anyway because of --no-gate", file=sys.stderr)
    if result.int8_ops[0] == 0 or (result.speed is not None and not result.speed.faster):
        what = "nothing is quantized" if result.int8_ops[0] == 0 else "not measurably faster than the fp32 bundle"
        print(f"warning: {what}; written anyway because of --allow-slow", file=sys.stderr)
    report.result(f"{result.summary()}\nbundle: {result.path}", {
        "bundle": str(result.path), "backend": args.backend, "recipe": result.recipe,
        "float_precision": result.float_precision, "int8_ops": list(result.int8_ops),
        "accuracy": result.report.to_dict(), "speed": None if result.speed is None else result.speed.to_dict()})
    return 0
