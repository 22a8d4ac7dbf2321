"""Segment-everything on huge images with a working set that does not grow with the image area.

The default path (:meth:`SamAutomaticMaskGenerator._measure_at_once`) upscales each candidate
mask's rectangle at once: about 10 bytes per pixel of the rectangle, which for a noise-like
mask on an 8000x6000 image is ~0.5 GB per candidate. Here each candidate is upscaled in column
strips of at most :data:`STRIP_PIXELS` output pixels (:meth:`MaskUpscaler.roi_strips`, same
values), and its stability counts, box and run-length encoding are accumulated strip by strip,
so the binary mask is never materialised. Candidate RLE counts are kept as int64 arrays
(8 bytes per run, not a Python list's ~36).

Working set per candidate: ``4 * S * w`` bytes for the horizontal pass (``S``: model input side,
``w``: the rectangle's width) + ~12 bytes x :data:`STRIP_PIXELS` for one strip, i.e. about
``4 * S * W + 12 MiB``, plus 8 bytes per run of the RLEs kept. Results equal the default path's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesam.everything.masks import stability_from_counts
from edgesam.everything.upscale import MaskUpscaler

__all__ = ["STRIP_PIXELS", "measure_in_strips"]

#: Output pixels upscaled at once per strip (1 Mpx: ~12 MB of temporaries).
STRIP_PIXELS = 1 << 20


def _strip_transitions(binary: np.ndarray, x0: int, y0: int, height: int) -> np.ndarray:
    """Column-major flat indices (in a ``height``-row image) where a block placed at (x0, y0),
    zero elsewhere, changes value (as in :func:`edgesam.everything.rle.roi_to_rle`)."""
    h, w = binary.shape
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = binary.T
    col, row = np.nonzero(padded[:, 1:] != padded[:, :-1])
    return (x0 + col).astype(np.int64) * height + (y0 + row)


def measure_in_strips(
    low_res: np.ndarray,
    upscaler: MaskUpscaler,
    *,
    threshold: float,
    offset: float,
    stability_thresh: float,
    origin: tuple[int, int],
    image_size: tuple[int, int],
    max_pixels: int = STRIP_PIXELS,
) -> tuple[np.float32, np.ndarray, dict[str, Any]] | None:
    """Stability score, box and RLE of one candidate, computed strip by strip.

    Args:
        low_res: ``[S/4, S/4]`` logits of the candidate.
        upscaler: the crop's upscaler.
        threshold, offset: mask threshold and stability offset.
        stability_thresh: reject when the score is below it (when > 0).
        origin: ``(x0, y0)`` of the crop in the image.
        image_size: ``(H, W)`` of the image the RLE is for.

    Returns:
        ``(score, box int64 [4] XYXY inclusive in the crop frame, RLE with int64 counts in the
        image frame)``, or None when rejected by the stability filter.
    """
    t, off = threshold, offset
    hi = lo = 0
    parts: list[np.ndarray] = []
    x_first = x_last = y_first = y_last = -1
    height, width = image_size
    for strip in upscaler.roi_strips(low_res, min(t - off, t + off, t), max_pixels):
        logits = strip.logits
        hi += int(np.count_nonzero(logits > t + off))
        lo += int(np.count_nonzero(logits > t - off))
        binary = logits > t
        cols = np.flatnonzero(binary.any(axis=0))
        if cols.size:
            rows = np.flatnonzero(binary.any(axis=1))
            if x_first < 0:
                x_first = strip.x0 + int(cols[0])
            x_last = strip.x0 + int(cols[-1])
            y_first = strip.y0 + int(rows[0]) if y_first < 0 else min(y_first, strip.y0 + int(rows[0]))
            y_last = max(y_last, strip.y0 + int(rows[-1]))
            parts.append(_strip_transitions(binary, origin[0] + strip.x0, origin[1] + strip.y0, height))
    score = stability_from_counts(hi, lo)
    if stability_thresh > 0.0 and not score >= stability_thresh:
        return None
    box = np.array([x_first, y_first, x_last, y_last] if x_first >= 0 else [0, 0, 0, 0], dtype=np.int64)
    flat = np.concatenate(parts) if parts else np.zeros((0,), np.int64)
    if flat.size > 1:  # runs crossing a column (or strip) boundary: the 1->0 and 0->1 cancel
        dup = np.flatnonzero(flat[1:] == flat[:-1])
        if dup.size:
            flat = np.delete(flat, np.concatenate((dup, dup + 1)))
    total = height * width
    if flat.size and flat[-1] == total:
        flat = flat[:-1]
    counts = np.diff(np.concatenate(([0], flat, [total])))
    return score, box, {"size": [int(height), int(width)], "counts": counts}
