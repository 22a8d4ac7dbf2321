"""Mask quality and clean-up: stability score and removal of small regions (numpy + OpenCV)."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

__all__ = ["calculate_stability_score", "remove_small_regions", "stability_from_counts"]


def stability_from_counts(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """``high / low`` in float32 (``nan`` where both are 0, as a 0 / 0 division gives)."""
    high32 = np.asarray(high).astype(np.float32)
    low32 = np.asarray(low).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return high32 / low32


def calculate_stability_score(logits: np.ndarray, mask_threshold: float, threshold_offset: float) -> np.ndarray:
    """Stability score of mask logits ``[..., H, W]`` -> float32 ``[...]``.

    The IoU of the masks binarised at ``mask_threshold + offset`` and ``mask_threshold -
    offset``. For ``offset >= 0`` the first lies inside the second, so the IoU is the ratio of
    their pixel counts.
    """
    logits = np.asarray(logits)
    if logits.ndim < 2:
        raise ValueError(f"logits must be [..., H, W], got shape {logits.shape}")
    high = np.count_nonzero(logits > (mask_threshold + threshold_offset), axis=(-2, -1))
    low = np.count_nonzero(logits > (mask_threshold - threshold_offset), axis=(-2, -1))
    return stability_from_counts(high, low)


def remove_small_regions(
    mask: np.ndarray, area_thresh: float, mode: Literal["holes", "islands"]
) -> tuple[np.ndarray, bool]:
    """Fill small holes or drop small islands of a ``bool [H, W]`` mask (8-connectivity).

    ``"holes"``: every connected region of background with fewer than ``area_thresh`` pixels is
    set (including background regions touching the image border). ``"islands"``: every connected
    region of the mask with fewer than ``area_thresh`` pixels is cleared, except that the largest
    region is kept when all are small.

    Returns:
        ``(mask, changed)``: the new ``bool [H, W]`` mask (the input itself when unchanged) and
        whether anything changed.
    """
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    holes = mode == "holes"
    work = (mask != holes).astype(np.uint8)  # background for holes, the mask for islands
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(work, connectivity=8)
    sizes = stats[1:, cv2.CC_STAT_AREA]  # label 0 is what `work` does not cover
    small = sizes < area_thresh
    if not small.any():
        return mask, False
    keep = np.zeros(n_labels, dtype=bool)
    if holes:
        keep[0] = True  # the mask itself
        keep[1:] = small  # plus the small background regions
    else:
        keep[1:] = ~small
        if not keep.any():
            keep[int(np.argmax(sizes)) + 1] = True
    return keep[labels], True
