"""Argument types and model loading shared by the sub-commands."""

from __future__ import annotations

import argparse
from typing import Any


def parse_point(text: str) -> tuple[float, float, int]:
    """``"X,Y"`` or ``"X,Y,LABEL"`` -> (x, y, label); label defaults to 1 (foreground)."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1]), 1
        if len(parts) == 3:
            return float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected X,Y or X,Y,LABEL, got {text!r}")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"X0,Y0,X1,Y1"`` -> a box tuple."""
    parts = text.split(",")
    try:
        if len(parts) == 4:
            x0, y0, x1, y1 = (float(p) for p in parts)
            return x0, y0, x1, y1
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1, got {text!r}")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` (torch) or ``--bundle`` (+ ``--backend``) to choose what runs."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint file or model name (see `edgesam models`)")
    source.add_argument("--bundle", help="exported bundle folder")
    parser.add_argument("--backend", default=None, help="runtime for --bundle (default: the choice recorded by "
                        "`edgesam deploy`, else onnxruntime)")  # fmt: skip
    parser.add_argument("--precision", default=None, help="float precision for --bundle: fp32, bf16, fp16 "
                        "(default: the bundle's own; a lower one is checked against its golden outputs)")  # fmt: skip
    parser.add_argument("--no-precision-check", action="store_true",
                        help="accept a lowered --precision without the golden-output check")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="torch device for --checkpoint")


def load_predictor(args: argparse.Namespace, **backend_options: Any) -> Any:
    """A :class:`~edgesam.SamPredictor` for ``--checkpoint`` or ``--bundle``."""
    from edgesam.predictor import SamPredictor

    if args.bundle:
        if getattr(args, "precision", None):
            backend_options.setdefault("precision", args.precision)
        if getattr(args, "no_precision_check", False):
            backend_options.setdefault("check", False)
        return SamPredictor.from_bundle(args.bundle, backend=args.backend, **backend_options)
    from edgesam.hub import load_model

    return SamPredictor(load_model(args.checkpoint, device=args.device))
