"""``edgesam everything [MODEL] IMAGE``: every object in an image -> JSON mask records (+ overlay)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import check_image_out
from .grammar import DEFAULT_MODEL, Output, add_json, add_model, add_out, add_quiet, add_threads, predictor_for


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("everything", help="segment everything in an image (automatic mask generation)",
                              description="MODEL (default edgesam-demo) comes before IMAGE: "
                                          "`edgesam everything [MODEL] IMAGE -o masks.json`.")
    add_model(p, required=False, default=DEFAULT_MODEL)
    p.add_argument("image", help="input image (any format OpenCV reads)")
    add_out(p, required=True, help="JSON with one record per mask")
    p.add_argument("--overlay", help="also write the image with every mask drawn on it (PNG/JPEG)")
    p.add_argument("--points-per-side", type=int, default=32, metavar="N", help="grid of N x N point prompts (32)")
    p.add_argument("--points-per-batch", type=int, default=64, metavar="B", help="prompts per decoder call (64)")
    p.add_argument("--pred-iou-thresh", type=float, default=None,
                   help="minimum predicted IoU (default: the model's: SAM's 0.88; 0.6 for edgesam-demo)")
    p.add_argument("--stability-score-thresh", type=float, default=None,
                   help="minimum stability score (default: the model's: SAM's 0.95; 0.8 for edgesam-demo)")
    p.add_argument("--crop-n-layers", type=int, default=0, help="extra layers of image crops (0)")
    p.add_argument("--min-mask-region-area", type=int, default=0, help="remove holes/islands smaller than this")
    p.add_argument("--coarse-to-fine", action="store_true",
                   help="decode a sparse grid first and skip points already covered (faster, may miss nested masks)")
    p.add_argument("--output-mode", choices=("coco_rle", "uncompressed_rle"), default="coco_rle",
                   help="segmentation encoding in the JSON (coco_rle: pycocotools-compatible)")
    add_threads(p)
    add_quiet(p, help="no progress lines on stderr; print only the result", legacy=("--no-progress",))
    add_json(p, help="print the summary (mask count, time, files) as JSON on stdout")
    p.set_defaults(func=run)


def draw_records(image: np.ndarray, records: list[dict[str, Any]], chunk: int | None = None) -> np.ndarray:
    """The image with every record's mask drawn, largest first (small masks stay visible).

    Args:
        image: ``uint8 [H, W, 3]`` RGB.
        records: generator records whose ``segmentation`` is an RLE dict (COCO or uncompressed).
        chunk: masks decoded at once (bounds memory to ``chunk * H * W`` bytes); default: up
            to 32, fewer on large images so that a chunk stays under 64 MB.

    Returns:
        ``uint8 [H, W, 3]`` RGB.
    """
    from edgesam.everything import coco_rle_to_mask, rle_to_mask
    from edgesam.viz import distinct_colors, overlay

    if chunk is None:
        chunk = max(1, min(32, (64 << 20) // max(1, image.shape[0] * image.shape[1])))
    order = sorted(range(len(records)), key=lambda i: -int(records[i]["area"]))
    colors = distinct_colors(len(records))
    out = image
    for start in range(0, len(order), chunk):
        idx = order[start : start + chunk]
        masks = []
        for i in idx:
            seg = records[i]["segmentation"]
            masks.append(coco_rle_to_mask(seg) if isinstance(seg["counts"], str) else rle_to_mask(seg))
        out = overlay(out, np.stack(masks), colors=colors[start : start + len(idx)], alpha=0.4)
    return out


def _progress_printer(enabled: bool) -> Any:
    """``progress(done, total)`` printing a line on stderr at every further 10%."""
    state = {"next": 10}
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        pct = 100 * done // max(1, total)
        if enabled and (pct >= state["next"] or done == total):
            state["next"] = pct // 10 * 10 + 10
            print(f"everything: {done}/{total} prompts decoded ({pct}%, {time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)

    return progress


def write_records_json(path: Path, header: dict[str, Any], masks: Any, output_mode: str) -> int:
    """Write ``header`` plus ``"masks": [...]`` to ``path``, encoding one mask at a time.

    Only one mask's segmentation text is in memory at once; the file is written under a
    temporary name and renamed when complete. Returns the number of records.
    """
    from edgesam.everything import coco_encode_rle
    from edgesam.io import json_safe

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(json_safe(header))[:-1] + ', "masks": [')
            for i, rle in enumerate(masks.rles):
                seg = (coco_encode_rle(rle) if output_mode == "coco_rle"
                       else {"size": rle["size"], "counts": [int(c) for c in rle["counts"]]})
                record = masks.take([i]).records([seg])[0]
                fh.write(("\n" if i == 0 else ",\n") + json.dumps(json_safe(record)))
            fh.write("]}\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return len(masks)


def run(args: argparse.Namespace) -> int:
    from edgesam.everything import SamAutomaticMaskGenerator
    from edgesam.io import read_image, write_image

    report = Output(args)
    if Path(args.out).is_dir():
        raise ValueError(f"-o {args.out} is a folder; give a file path")
    if args.overlay is not None:
        check_image_out(args.overlay, "--overlay", example="overlay.png")
    image = read_image(args.image)
    predictor = predictor_for(args)
    generator = SamAutomaticMaskGenerator(
        predictor,
        points_per_side=args.points_per_side,
        points_per_batch=args.points_per_batch,
        pred_iou_thresh=args.pred_iou_thresh,
        stability_score_thresh=args.stability_score_thresh,
        crop_n_layers=args.crop_n_layers,
        min_mask_region_area=args.min_mask_region_area,
        coarse_to_fine=args.coarse_to_fine,
        output_mode=args.output_mode,
    )
    generator.progress = _progress_printer(not args.quiet)
    start = time.perf_counter()
    masks = generator.generate_mask_set(image)  # RLEs; segmentations are encoded while writing
    seconds = time.perf_counter() - start
    header = {
        "image": str(args.image),
        "image_size": [int(image.shape[0]), int(image.shape[1])],
        "model": args.model,
        "backend": getattr(predictor.backend, "name", None),
        "settings": {
            "points_per_side": args.points_per_side,
            "pred_iou_thresh": generator.pred_iou_thresh,
            "stability_score_thresh": generator.stability_score_thresh,
            "crop_n_layers": args.crop_n_layers,
            "min_mask_region_area": args.min_mask_region_area,
            "coarse_to_fine": bool(args.coarse_to_fine),
            "output_mode": args.output_mode,
        },
        "seconds": round(seconds, 4),
    }
    out = Path(args.out)
    count = write_records_json(out, header, masks, args.output_mode)
    lines = [f"{count} masks in {seconds:.2f} s -> {out}"]
    if generator.thresholds_source != "given":
        lines.append(f"thresholds: pred_iou {generator.pred_iou_thresh:g}, stability {generator.stability_score_thresh:g}: "
                     f"{generator.thresholds_source}")
    stats = getattr(generator, "last_stats", None)
    why = None
    if stats is not None and not count:
        why = stats.explain()
        lines.append(f"no masks: {why} (lower --pred-iou-thresh / --stability-score-thresh to see more)")
    if args.overlay:
        from edgesam.everything import area_from_rle
        from edgesam.viz import caption, describe_model

        records = [{"segmentation": rle, "area": area_from_rle(rle)} for rle in masks.rles]
        made_by = describe_model(predictor.backend, args.model)
        write_image(args.overlay, caption(draw_records(image, records), f"{count} masks · {made_by}"))
        lines.append(f"overlay -> {args.overlay}")
    report.result("\n".join(lines), {"masks": count, "seconds": round(seconds, 4), "out": str(out),
                                     "overlay": args.overlay, "model": args.model, "backend": header["backend"],
                                     "no_masks_because": why,
                                     "thresholds": generator.thresholds()})  # fmt: skip
    return 0
