"""Prompts from masks: the one "click inside this mask" and "box around this mask" in edgesam.

The export verification, the benchmark workload, the tracker, the distillation evaluation and
``edgesam deploy`` all place their synthetic clicks with :func:`click_inside`, so a click means
the same everywhere. numpy + OpenCV only; imports nothing else of edgesam.
"""

from __future__ import annotations

import numpy as np

__all__ = ["click_inside", "mask_box"]


def click_inside(mask: np.ndarray) -> tuple[float, float]:
    """A click well inside ``mask``, as a person would place it: ``(x, y)`` pixels.

    Among the pixels at least 90% as far from the mask border as the farthest one, the one
    nearest the mask's centroid: always a mask pixel, even for rings and L shapes.

    Args:
        mask: bool ``[H, W]`` with at least one pixel set.
    """
    import cv2

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"click_inside needs a non-empty [H, W] mask, got shape {mask.shape}")
    padded = np.pad(mask.astype(np.uint8), 1)  # the image border counts as boundary
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    ys, xs = np.nonzero(dist >= 0.9 * dist.max())
    my, mx = np.argwhere(mask).mean(axis=0)
    best = int(np.argmin((ys - my) ** 2 + (xs - mx) ** 2))
    return float(xs[best]), float(ys[best])


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """Inclusive XYXY box ``float32 [4]`` of a ``bool [H, W]`` mask, None when it is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float32)
