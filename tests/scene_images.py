"""A small hand-drawn test image (no generator, no randomness)."""

from __future__ import annotations

import numpy as np


def make_scene_image() -> np.ndarray:
    """A 240x320 RGB uint8 image: a bright disc and a dark rectangle on a gradient."""
    h, w = 240, 320
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    img[(yy - 120) ** 2 + (xx - 90) ** 2 < 40**2] = (240, 230, 40)
    img[60:200, 190:290] = (20, 30, 160)
    return img
