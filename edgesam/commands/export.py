"""``edgesam export CHECKPOINT_OR_NAME -o BUNDLE_DIR``: a verified ONNX bundle."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to a verified ONNX bundle folder")
    p.add_argument("checkpoint", help="checkpoint file or model name (see `edgesam models`)")
    p.add_argument("-o", "--output", required=True, help="bundle folder to create")
    p.add_argument("--arch", help="expected architecture (detected from the checkpoint by default)")
    p.add_argument("--image-size", type=int, help="input side S when the checkpoint is not 1024 px")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--sam-decoder", action="store_true",
                   help="also write decoder_sam.onnx with segment_anything's ONNX interface")
    p.add_argument("--sam-all-masks", action="store_true",
                   help="decoder_sam.onnx returns all 4 masks instead of the best one")
    p.add_argument("--external-data", action="store_true", help="store weights in .onnx.data files")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from edgesam.export import export_bundle, load_bundle

    out = export_bundle(
        args.checkpoint,
        args.output,
        arch=args.arch,
        image_size=args.image_size,
        opset=args.opset,
        sam_decoder=args.sam_decoder,
        sam_single_mask=not args.sam_all_masks,
        external_data=True if args.external_data else None,
        overwrite=args.overwrite,
    )
    meta = load_bundle(out).metadata
    print(f"bundle: {out} ({meta['arch']}, {meta['image_size']} px, opset {meta['opset']})")
    print("verified against torch:", json.dumps(meta["verification"]["measured"], sort_keys=True))
    return 0
