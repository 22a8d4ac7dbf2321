"""Argument types shared by the sub-commands (the flag grammar and model loading: :mod:`.grammar`)."""

from __future__ import annotations

import argparse


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
