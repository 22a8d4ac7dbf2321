"""``edgesam demo``: the main job end to end, offline, in one command.

    edgesam demo [MODEL] [-o DIR] [--quick]

1. export the model (default: the embedded ``edgesam-demo``) to a verified fp32 bundle;
2. INT8-quantize it for every installed runtime that has an INT8 path;
3. benchmark every available backend x precision on this machine (torch fp32 baseline);
4. segment a sample image (a synthetic scene rendered now, or ``--image``) from one click,
   with the INT8 bundle that runs most of its encoder in INT8 (else the fp32 bundle);
5. write ``overlay.png``, ``mask.png`` and the benchmark report (markdown + plots) to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .common import parse_point, results_folder
from .grammar import DEFAULT_MODEL, add_model, add_out, add_quiet, add_threads

__all__ = ["add_parser", "run"]

_DEMO_NOTE = (
    "edgesam-demo is a small model (TinyViT-style encoder, 128-px input, a few MB) that edgesam "
    "distilled on its own synthetic scenes: textured shapes on textured backgrounds. It segments "
    "synthetic-like scenes; it is NOT a general-purpose SAM and will not segment real photos well. "
    "For real images run the same command with an official checkpoint, e.g. "
    "`edgesam demo mobile_sam` (downloaded once; see `edgesam models`)."
)
_SAMPLE_SEED = 3


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="export, INT8-quantize, benchmark and segment a sample, in one command",
        description="Runs edgesam's main job end to end on this machine and writes the overlay "
                    "and the benchmark report into -o/--out. " + _DEMO_NOTE)
    add_model(p, required=False, default=DEFAULT_MODEL, note="model name or checkpoint file", legacy=("--checkpoint",),
              backend=False, runtime_options=False)  # fmt: skip
    add_out(p, required=False, default="edgesam-demo-out", metavar="DIR",
            help="output folder (default ./edgesam-demo-out)")
    p.add_argument("--quick", action="store_true",
                   help="smallest benchmark budget (2 timed runs, 4x4 segment-everything grid): "
                        "a smoke test; without it the benchmark uses edgesam bench's --quick budget")
    p.add_argument("--image", help="segment this image instead of the synthetic sample")
    p.add_argument("--point", type=parse_point, metavar="X,Y", help="click for --image (default: centre)")
    add_threads(p)
    add_quiet(p, help="no progress bar", legacy=("--no-progress",))
    p.set_defaults(func=run)


def sample_scene(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The package's sample: a synthetic scene rendered now, and a click on its largest object.

    Returns ``(image uint8 [H, W, 3], point float32 [1, 2])``; 3:4 frames, at least 384 px high.
    The click is the interior point farthest from the border of the largest visible object.
    """
    from edgesam.bench.workload import scene_config, visible_point
    from edgesam.scenes import generate_scene

    height = max(384, int(image_size) * 3 // 4)
    scene = generate_scene(_SAMPLE_SEED, scene_config(height, height * 4 // 3))
    largest = scene.masks[int(np.argmax(scene.masks.sum(axis=(1, 2))))]
    return scene.image, np.array([visible_point(largest)], dtype=np.float32)


def _sample(args: argparse.Namespace, image_size: int) -> tuple[np.ndarray, np.ndarray, str]:
    if args.image is None:
        if args.point is not None:
            raise ValueError("--point needs --image")
        image, point = sample_scene(image_size)
        return image, point, f"synthetic sample scene (seed {_SAMPLE_SEED})"
    from edgesam.io import read_image

    image = read_image(args.image)
    if args.point is None:
        point = np.array([[image.shape[1] / 2, image.shape[0] / 2]], dtype=np.float32)
    else:
        point = np.array([args.point[:2]], dtype=np.float32)
    return image, point, str(args.image)


def _segment(predictor: Any, image: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, float]:
    """The single-mask output (token 0) for one click: what edgesam-demo was distilled on."""
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(point_coords=point, point_labels=np.ones(1, np.int64),
                                         multimask_output=False)
    return masks[0], float(scores[0])


def render_result(image: np.ndarray, mask: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Side by side: the image with the click, and the mask overlay outlined in white.

    Args:
        image: uint8 ``[H, W, 3]`` RGB; mask: bool ``[H, W]``; point: ``[1, 2]`` (x, y).

    Returns:
        uint8 ``[H, 2W + 8, 3]`` RGB.
    """
    import cv2

    from edgesam.viz import overlay

    ones = np.ones(len(point))
    left = overlay(image, np.zeros_like(mask), points=point, labels=ones)
    right = overlay(image, mask, points=point, labels=ones)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(right, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([left, gap, right], axis=1)


def _deployed(bundles: dict[str, Path]) -> tuple[str, str] | None:
    """``(label, backend)`` of the bundle to segment with: the INT8 bundle with the most
    encoder ops really in INT8, else an fp32 bundle (None when no bundle ran)."""
    from edgesam.bench.sources import quantized_ops

    int8 = [(quantized_ops(path).get("encoder_int8_ops", 0.0), label) for label, path in bundles.items()
            if label.endswith(" int8")]
    int8 = [(ops, label) for ops, label in int8 if ops > 0]
    if int8:
        label = max(int8, key=lambda x: (x[0], x[1].startswith("onnxruntime")))[1]
        return label, label.split()[0]
    for label in ("onnxruntime fp32", "openvino fp32"):
        if label in bundles:
            return label, label.split()[0]
    return None


def _segment_sample(args: argparse.Namespace, source: Any, result: Any, out: Path) -> list[str]:
    """Segment the sample with the deployed bundle; write overlay + mask; return report lines."""
    from edgesam.io import write_image
    from edgesam.loading import load_predictor
    from edgesam.metrics import mask_iou

    image, point, what = _sample(args, source.image_size)
    chosen = _deployed(result.bundles)
    reference = None
    if source.checkpoint is not None:
        reference = load_predictor(str(source.checkpoint), backend="torch", threads=args.threads)
    if chosen is None:
        if reference is None:
            raise RuntimeError("no backend could run the model, so nothing was segmented")
        chosen, predictor = ("torch fp32", "torch"), reference
    else:
        predictor = load_predictor(str(result.bundles[chosen[0]]), backend=chosen[1], threads=args.threads)
    mask, score = _segment(predictor, image, point)
    write_image(out / "sample.png", image)
    write_image(out / "mask.png", mask)
    from edgesam.viz import caption, describe_model

    made_by = describe_model(predictor.backend, args.model)
    write_image(out / "overlay.png", caption(render_result(image, mask, point), f"score {score:.3f} · {made_by}"))
    lines = [f"segmented {what} ({image.shape[1]}x{image.shape[0]}) from a click at "
             f"({point[0, 0]:.0f}, {point[0, 1]:.0f}) with {chosen[0]} (single-mask output): "
             f"predicted IoU {score:.3f}, {int(mask.sum())} px"]
    if reference is not None and chosen[1] != "torch":
        ref_mask, _ = _segment(reference, image, point)
        iou = float(mask_iou(mask[None], ref_mask[None])[0])
        lines.append(f"mask IoU of {chosen[0]} vs torch fp32 on this image: {iou:.4f}")
    return lines


def _quantize_all(source: Any, out: Path, log: Any) -> list[str]:
    """Make the INT8 bundle of every installed runtime that has one; report lines.

    Uses ``quantize_bundle``'s defaults (accuracy gate, and the search for layers to keep in
    float when it fails), as ``edgesam quantize`` does; the benchmark then reuses these bundles
    (or these failures) instead of quantizing again.
    """
    from edgesam.bench.sources import gate_options, int8_bundle, quantized_ops
    from edgesam.runtimes import available_backends

    lines = []
    for backend, state in available_backends().items():
        if backend == "torch":
            continue
        if state is not True:
            lines.append(f"INT8 {backend}: skipped ({state})")
            continue
        try:
            path = int8_bundle(source.bundle, backend, work_dir=out / "bundles", log=log,
                               **gate_options(source))
        except Exception as exc:  # noqa: BLE001 - reported; the benchmark records it too
            lines.append(f"INT8 {backend}: FAILED ({type(exc).__name__}: {exc})")
        else:
            ops = quantized_ops(path)
            share = ""
            if "encoder_float_ops" in ops:
                total = ops["encoder_int8_ops"] + ops["encoder_float_ops"]
                share = (f" ({ops['encoder_int8_ops']:.0f} of {total:.0f} quantizable encoder ops "
                         "in INT8; the rest kept in float to pass the accuracy gate or by the recipe)")
            lines.append(f"INT8 {backend}: {path}{share}")
    return lines


def run(args: argparse.Namespace) -> int:
    """``edgesam demo``."""
    from edgesam.torch_hint import torch_installed, torch_missing_error

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder; -o names the demo's output folder "
                         "(default ./edgesam-demo-out)")
    if not torch_installed():  # step 1 exports with torch: say so before printing anything
        raise torch_missing_error("edgesam demo (it exports the model with torch)")
    with results_folder(out / "results"):
        return _run(args, out, log_prefix="[demo] ")


def _run(args: argparse.Namespace, out: Path, *, log_prefix: str) -> int:
    """The demo's five steps (see the module doc)."""
    from edgesam.bench.cases import QUICK_BUDGET, SMOKE_BUDGET
    from edgesam.bench.report import write_report
    from edgesam.bench.sources import prepare_source
    from edgesam.bench.suite import SuiteOptions, run_suite
    from edgesam.bench.variants import DEFAULT_PRECISIONS

    from .bench import print_summary

    def log(msg: str) -> None:
        print(f"{log_prefix}{msg}", flush=True)

    if args.model == DEFAULT_MODEL:
        log("model: " + _DEMO_NOTE)
    log(f"1/5 export {args.model} to an fp32 bundle")
    source = prepare_source(checkpoint=args.model, work_dir=out / "bundles", log=log)
    log(f"    {source.arch}, {source.image_size} px input -> {source.bundle}")
    log("2/5 INT8 quantization")
    for line in _quantize_all(source, out, log):
        log("    " + line)
    log("3/5 benchmark every available backend x precision (torch fp32 is the baseline)")
    budget = SMOKE_BUDGET if args.quick else QUICK_BUDGET
    options = SuiteOptions(precisions=DEFAULT_PRECISIONS, threads=args.threads, quick=True,
                           budget=budget, show_progress=not args.quiet,
                           work_dir=out / "bundles")
    result = run_suite(source, options, results_dir=out / "results", log=log)
    print_summary(result)
    log("4/5 segment the sample image from a point prompt")
    for line in _segment_sample(args, source, result, out):
        log("    " + line)
    log("5/5 report")
    paths = write_report(out / "results", out / "report")
    log(f"    overlay -> {out / 'overlay.png'}")
    log(f"    mask    -> {out / 'mask.png'}")
    log(f"    report  -> {paths[0]}" + (f" (+ {len(paths) - 1} plots)" if len(paths) > 1 else ""))
    if args.model == DEFAULT_MODEL:
        log("reminder: edgesam-demo only knows synthetic scenes; numbers above are this "
            "machine's speed for a small model, not MobileSAM/EdgeSAM speed.")
    return 1 if result.failed else 0
