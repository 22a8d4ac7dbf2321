"""``edgesam segment [MODEL] IMAGE``: point/box prompts -> mask PNG (+ overlay)."""

from __future__ import annotations

import argparse

import numpy as np

from .common import MASK_FORMATS, check_image_out, parse_box, parse_point
from .grammar import DEFAULT_MODEL, Output, add_json, add_model, add_out, add_quiet, add_threads, predictor_for


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("segment", help="segment an image from point / box prompts",
                              description="MODEL (default edgesam-demo) comes before IMAGE: "
                                          "`edgesam segment [MODEL] IMAGE --point X,Y -o mask.png`.")
    add_model(p, required=False, default=DEFAULT_MODEL)
    p.add_argument("image", help="input image (any format OpenCV reads)")
    p.add_argument("--point", type=parse_point, action="append", default=[], metavar="X,Y[,LABEL]",
                   help="prompt point in image pixels; LABEL 1 = object (default), 0 = background")
    p.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1", help="prompt box in image pixels")
    p.add_argument("--single", action="store_true", help="ask for one mask instead of the best of three")
    add_out(p, required=True, help=f"mask image (0/255), lossless: {', '.join(MASK_FORMATS)}")
    p.add_argument("--overlay", help="also write the image with the mask and prompts drawn on it (.png, .jpg, ...)")
    add_threads(p)
    add_quiet(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesam.io import read_image, write_image
    from edgesam.viz import caption, describe_model, overlay

    if not args.point and args.box is None:
        raise ValueError("give at least one --point or a --box")
    check_image_out(args.out, "-o", mask=True)
    if args.overlay:
        check_image_out(args.overlay, "--overlay", example="overlay.png")
    out = Output(args)
    image = read_image(args.image)
    predictor = predictor_for(args)
    predictor.set_image(image)
    coords = np.array([p[:2] for p in args.point], dtype=np.float32) if args.point else None
    labels = np.array([p[2] for p in args.point], dtype=np.int64) if args.point else None
    box = np.array(args.box, dtype=np.float32) if args.box is not None else None
    masks, scores, _ = predictor.predict(
        point_coords=coords, point_labels=labels, box=box, multimask_output=not args.single
    )
    best = int(np.argmax(scores))
    write_image(args.out, masks[best])
    if args.overlay:
        drawn = overlay(image, masks[best], points=coords, labels=labels, boxes=box)
        made_by = describe_model(predictor.backend, args.model)
        label = f"mask {best + 1} of {len(scores)}, score {scores[best]:.3f} · {made_by}"
        write_image(args.overlay, caption(drawn, label))
    text = f"mask {best + 1} of {len(scores)}: score {scores[best]:.3f}, area {int(masks[best].sum())} px -> {args.out}"
    if args.overlay:
        text += f"\noverlay -> {args.overlay}"
    out.result(text, {"model": args.model, "backend": getattr(predictor.backend, "name", None),
                      "mask": args.out, "overlay": args.overlay, "mask_index": best, "masks": len(scores),
                      "score": float(scores[best]), "area": int(masks[best].sum()),
                      "scores": [float(s) for s in scores]})  # fmt: skip
    return 0
