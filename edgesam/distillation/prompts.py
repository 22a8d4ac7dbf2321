"""Prompt sampling for training and evaluation: boxes, points, and refinement points.

Coordinates follow the model's convention: ``(x, y)`` pixel coordinates in the padded
``S x S`` input frame, where integer ``j`` is the centre of pixel ``j``. Labels: -1 padding,
0 negative point, 1 positive point, 2 box top-left, 3 box bottom-right.
"""

from __future__ import annotations

import numpy as np
import torch

from edgesam.prompt_geometry import click_inside

__all__ = [
    "masks_to_boxes",
    "box_prompts",
    "random_points_in_masks",
    "refinement_points",
    "grid_to_input_coords",
    "append_padding_point",
    "mask_center_point",
]


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """XYXY boxes (inclusive max) of ``[N, H, W]`` bool masks; empty masks give ``[0,0,0,0]``."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros(0, 4, device=masks.device)
    rows = masks.any(2)
    cols = masks.any(1)
    ar_h = torch.arange(h, device=masks.device).expand(n, h)
    ar_w = torch.arange(w, device=masks.device).expand(n, w)
    y0 = torch.where(rows, ar_h, h).min(1).values
    y1 = torch.where(rows, ar_h, -1).max(1).values
    x0 = torch.where(cols, ar_w, w).min(1).values
    x1 = torch.where(cols, ar_w, -1).max(1).values
    boxes = torch.stack([x0, y0, x1, y1], 1).float()
    empty = ~rows.any(1)
    return torch.where(empty[:, None], torch.zeros_like(boxes), boxes)


def box_prompts(
    boxes: torch.Tensor,
    *,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
    bounds: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Box prompts as corner points.

    Args:
        boxes: ``[N, 4]`` XYXY in input-frame pixels.
        jitter: each coordinate moves by up to ``jitter * side`` (uniform), as SAM's training noise.
        bounds: optional ``(h, w)`` to clamp the jittered corners into.

    Returns:
        coords ``[N, 2, 2]`` and labels ``[N, 2]`` (2, 3).
    """
    b = boxes.float().clone()
    if jitter > 0 and len(b):
        side = torch.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1).repeat(1, 2).clamp_min(1.0)
        noise = torch.rand(b.shape, generator=generator, device="cpu").to(b.device) * 2 - 1
        b = b + noise * jitter * side
        if bounds is not None:
            h, w = bounds
            b[:, 0::2] = b[:, 0::2].clamp(0, w - 1)
            b[:, 1::2] = b[:, 1::2].clamp(0, h - 1)
        b = torch.cat([torch.minimum(b[:, :2], b[:, 2:]), torch.maximum(b[:, :2], b[:, 2:])], 1)
    coords = b.view(-1, 2, 2)
    labels = torch.tensor([2.0, 3.0], device=b.device).expand(len(b), 2).clone()
    return coords, labels


def _uniform_pick(region: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one pixel uniformly inside each ``[N, H, W]`` bool region.

    Returns ``(xy [N, 2] float, found [N] bool)``; rows with an empty region give (0, 0), False.
    """
    n, h, w = region.shape
    scores = torch.rand((n, h * w), generator=generator, device="cpu").to(region.device)
    scores = scores * region.flatten(1) + region.flatten(1).float()  # region pixels in (1, 2)
    idx = scores.argmax(1)
    found = region.flatten(1).any(1)
    xy = torch.stack([idx % w, idx // w], 1).float()
    return xy * found[:, None], found


def random_points_in_masks(
    masks: torch.Tensor, num_points: int = 1, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_points`` positive points uniformly inside each mask.

    Args:
        masks: ``[N, H, W]`` bool, in the input frame.

    Returns:
        coords ``[N, num_points, 2]`` (x, y) and labels ``[N, num_points]`` (1, or -1 for an
        empty mask, so that an empty mask contributes only padding points).
    """
    pts, labs = [], []
    for _ in range(num_points):
        xy, found = _uniform_pick(masks.bool(), generator)
        pts.append(xy)
        labs.append(torch.where(found, 1.0, -1.0))
    return torch.stack(pts, 1), torch.stack(labs, 1)


def grid_to_input_coords(xy: torch.Tensor, grid_hw: tuple[int, int], image_size: int) -> torch.Tensor:
    """Map pixel indices of a ``grid_hw`` grid covering the ``S x S`` input to input coords.

    Pixel ``i`` of a grid ``k`` times coarser covers input pixels ``[k*i, k*i + k)``, whose
    centre is ``k * (i + 0.5) - 0.5``.
    """
    gh, gw = grid_hw
    out = xy.clone().float()
    out[..., 0] = (out[..., 0] + 0.5) * (image_size / gw) - 0.5
    out[..., 1] = (out[..., 1] + 0.5) * (image_size / gh) - 0.5
    return out


def refinement_points(
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    image_size: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective point per prompt where the student and teacher masks disagree.

    A pixel the teacher marks as object but the student misses becomes a positive point (1);
    a pixel the student marks but the teacher does not becomes a negative point (0). The point
    is uniform over the whole disagreement region; with no disagreement it is a padding point.

    Args:
        student, teacher: ``[N, H, W]`` bool masks on the same grid (e.g. low-res 4h x 4w).
        valid: optional ``[N, H, W]`` bool, the un-padded area; points are drawn only there.
        image_size: if given, coordinates are mapped from the grid to the ``S x S`` input frame.

    Returns:
        coords ``[N, 1, 2]`` and labels ``[N, 1]`` in {-1, 0, 1}.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ")
    s, t = student.bool(), teacher.bool()
    wrong = s ^ t
    if valid is not None:
        wrong = wrong & valid.bool()
    xy, found = _uniform_pick(wrong, generator)
    n, h, w = wrong.shape
    lin = (xy[:, 1] * w + xy[:, 0]).long()
    is_fn = t.flatten(1).gather(1, lin[:, None])[:, 0]  # teacher says object -> positive
    labels = torch.where(found, is_fn.float(), torch.full_like(is_fn, -1.0, dtype=torch.float32))
    if image_size is not None:
        xy = grid_to_input_coords(xy, (h, w), image_size) * found[:, None]
    return xy[:, None, :], labels[:, None]


def append_padding_point(coords: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append the ``(0, 0)`` label ``-1`` point SAM adds to point-only prompts."""
    pad_c = torch.zeros(coords.shape[0], 1, 2, device=coords.device, dtype=coords.dtype)
    pad_l = -torch.ones(labels.shape[0], 1, device=labels.device, dtype=labels.dtype)
    return torch.cat([coords, pad_c], 1), torch.cat([labels, pad_l], 1)


def mask_center_point(mask: np.ndarray) -> tuple[float, float]:
    """The "single centre point" prompt of the evaluation, ``(x, y)``: :func:`edgesam.prompt_geometry.click_inside`.

    Unlike the centroid it is always inside the mask, also for rings and concave shapes.
    """
    if mask.ndim != 2 or not mask.any():
        raise ValueError("mask_center_point needs a non-empty 2-D mask")
    return click_inside(mask)
