"""Prompts made from geometry: the one "click inside this mask", "box around this mask" and
"prompts sampled on an unannotated image" in edgesam.

The export verification, the benchmark workload, the tracker, the distillation evaluation and
``edgesam deploy`` place their synthetic clicks with :func:`click_inside`, so a click means
the same everywhere. :func:`sample_prompts` draws prompts from the image geometry alone (real
calibration folders come without annotations): single clicks, a click with a background
click, boxes of 10-80 % of the image side, and a box with a click inside; it feeds decoder
calibration and every fidelity comparison. Coordinates are original-image pixels, as users
pass them to :meth:`edgesam.predictor.SamPredictor.predict_batch`.

numpy + OpenCV only; imports nothing else of edgesam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PromptBatch", "click_inside", "mask_box", "sample_prompts"]


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


@dataclass(frozen=True)
class PromptBatch:
    """``B`` prompts of one kind (every prompt has the same number of clicks).

    Attributes:
        kind: ``"point"``, ``"points"``, ``"box"`` or ``"box+point"``.
        point_coords: float32 ``[B, N, 2]`` ``(x, y)`` original-image pixels, or None.
        point_labels: float32 ``[B, N]`` in {0, 1}, or None.
        boxes: float32 ``[B, 4]`` XYXY original-image pixels, or None.
    """

    kind: str
    point_coords: np.ndarray | None
    point_labels: np.ndarray | None
    boxes: np.ndarray | None

    @property
    def size(self) -> int:
        """Number of prompts ``B``."""
        ref = self.point_coords if self.point_coords is not None else self.boxes
        return 0 if ref is None else int(ref.shape[0])


def _points(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """``[n, 2]`` clicks away from the border (x in [0.05w, 0.95w), y likewise)."""
    return np.stack([rng.uniform(0.05 * w, 0.95 * w, n), rng.uniform(0.05 * h, 0.95 * h, n)], -1)


def _boxes(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """``[n, 4]`` XYXY boxes inside the image with sides 10-80 % of the image's."""
    bw = rng.uniform(0.1, 0.8, n) * (w - 1)
    bh = rng.uniform(0.1, 0.8, n) * (h - 1)
    x0 = rng.uniform(0, 1, n) * (w - 1 - bw)
    y0 = rng.uniform(0, 1, n) * (h - 1 - bh)
    return np.stack([x0, y0, x0 + bw, y0 + bh], -1)


def sample_prompts(image_hw: tuple[int, int], count: int, *, seed: int = 0) -> list[PromptBatch]:
    """About ``count`` prompts on an image of size ``(H, W)``, in up to four batches by kind.

    The kinds are filled round robin (point, box, points, box+point), so ``count = 1`` gives one
    click and ``count >= 4`` covers every kind. Deterministic in ``seed``.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    h, w = int(image_hw[0]), int(image_hw[1])
    if h < 2 or w < 2:
        raise ValueError(f"image too small for prompts: {h}x{w}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), h, w]))
    order = ("point", "box", "points", "box+point")
    per_kind = {k: len(range(i, count, len(order))) for i, k in enumerate(order)}
    batches: list[PromptBatch] = []
    f32 = np.float32
    if per_kind["point"]:
        n = per_kind["point"]
        batches.append(PromptBatch("point", _points(rng, n, h, w)[:, None].astype(f32), np.ones((n, 1), f32), None))
    if per_kind["box"]:
        batches.append(PromptBatch("box", None, None, _boxes(rng, per_kind["box"], h, w).astype(f32)))
    if per_kind["points"]:
        n = per_kind["points"]
        coords = np.stack([_points(rng, n, h, w), _points(rng, n, h, w)], 1).astype(f32)
        labels = np.tile(np.array([[1.0, 0.0]], f32), (n, 1))
        batches.append(PromptBatch("points", coords, labels, None))
    if per_kind["box+point"]:
        n = per_kind["box+point"]
        boxes = _boxes(rng, n, h, w)
        inside = boxes[:, :2] + rng.uniform(0.25, 0.75, (n, 2)) * (boxes[:, 2:] - boxes[:, :2])
        batches.append(PromptBatch("box+point", inside[:, None].astype(f32), np.ones((n, 1), f32), boxes.astype(f32)))
    return batches
