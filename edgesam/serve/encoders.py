"""Mask encodings of the API's answers: PNG, COCO RLE and polygons.

RLE uses :mod:`edgesam.everything.rle` (COCO's compressed form, readable by pycocotools).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from edgesam.everything.rle import coco_encode_rle, mask_to_rle

__all__ = ["encode_mask", "mask_png", "mask_polygons", "mask_rle"]


def mask_png(mask: np.ndarray) -> bytes:
    """PNG file of a ``bool [H, W]`` mask: one 8-bit channel, 255 inside, 0 outside."""
    import cv2

    ok, data = cv2.imencode(".png", np.asarray(mask, dtype=np.uint8) * 255)
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return data.tobytes()


def mask_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE ``{"size": [H, W], "counts": str}`` of a ``bool [H, W]`` mask."""
    return coco_encode_rle(mask_to_rle(np.asarray(mask, dtype=bool)))


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer boundaries of a ``bool [H, W]`` mask as COCO polygons ``[[x0, y0, x1, y1, ...], ...]``.

    One polygon per connected region (holes are not represented, as in COCO polygons);
    regions thinner than 3 points are dropped.
    """
    import cv2

    contours, _ = cv2.findContours(np.asarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def encode_mask(mask: np.ndarray, fmt: str) -> Any:
    """``mask`` in the API format ``fmt`` (``png`` -> base64 string, ``rle`` -> dict, ``polygon`` -> list)."""
    if fmt == "png":
        return base64.b64encode(mask_png(mask)).decode("ascii")
    if fmt == "rle":
        return mask_rle(mask)
    if fmt == "polygon":
        return mask_polygons(mask)
    raise ValueError(f"unknown mask format {fmt!r}; expected png, rle or polygon")
