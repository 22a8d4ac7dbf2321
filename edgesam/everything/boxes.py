"""Point grids, crop boxes and box geometry for automatic mask generation (numpy only).

Boxes are XYXY with *inclusive* right/bottom pixel indices when they come from masks (a
one-pixel mask at ``(x, y)`` has the box ``[x, y, x, y]``), as in segment_anything; crop boxes
are XYXY with exclusive ``x1, y1`` (slice bounds).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import product

import numpy as np

__all__ = [
    "batch_iterator",
    "batched_mask_to_box",
    "box_area",
    "box_xyxy_to_xywh",
    "build_all_layer_point_grids",
    "build_point_grid",
    "generate_crop_boxes",
    "is_box_near_crop_edge",
    "nms",
    "uncrop_boxes_xyxy",
    "uncrop_masks",
    "uncrop_points",
]


def build_point_grid(n_per_side: int) -> np.ndarray:
    """``float64 [n*n, 2]`` (x, y) points, evenly spaced cell centres of the unit square.

    Row-major: point ``i * n + j`` is in row ``i`` (y) and column ``j`` (x).
    """
    if n_per_side < 1:
        raise ValueError(f"n_per_side must be >= 1, got {n_per_side}")
    offset = 1.0 / (2 * n_per_side)
    side = np.linspace(offset, 1.0 - offset, n_per_side)
    xs, ys = np.meshgrid(side, side)
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def build_all_layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[np.ndarray]:
    """One normalised grid per crop layer; layer ``i`` has ``int(n / scale**i)`` points a side."""
    return [build_point_grid(int(n_per_side / (scale_per_layer**i))) for i in range(n_layers + 1)]


def generate_crop_boxes(
    im_size: tuple[int, int], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """Crop boxes (XYXY, exclusive ends) of every crop layer, and the layer of each.

    Layer 0 is the whole image; layer ``i >= 1`` tiles the image with ``2**i x 2**i`` crops
    that overlap by ``int(overlap_ratio * short_side * 2 / 2**i)`` pixels.

    Args:
        im_size: ``(H, W)`` of the image.
        n_layers: number of crop layers beside the whole image.
        overlap_ratio: overlap of the first layer's crops as a fraction of the short side.
    """
    im_h, im_w = int(im_size[0]), int(im_size[1])
    short_side = min(im_h, im_w)
    boxes: list[list[int]] = [[0, 0, im_w, im_h]]
    layers: list[int] = [0]
    for i_layer in range(n_layers):
        n_side = 2 ** (i_layer + 1)
        overlap = int(overlap_ratio * short_side * (2 / n_side))
        crop_w = int(math.ceil((overlap * (n_side - 1) + im_w) / n_side))
        crop_h = int(math.ceil((overlap * (n_side - 1) + im_h) / n_side))
        xs = [int((crop_w - overlap) * i) for i in range(n_side)]
        ys = [int((crop_h - overlap) * i) for i in range(n_side)]
        for x0, y0 in product(xs, ys):
            boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
            layers.append(i_layer + 1)
    return boxes, layers


def batch_iterator(batch_size: int, *arrays: Sequence) -> Iterator[list]:
    """Yield aligned slices of length ``batch_size`` (the last may be shorter)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not arrays or any(len(a) != len(arrays[0]) for a in arrays):
        raise ValueError("batch_iterator needs one or more sequences of the same length")
    n = len(arrays[0])
    for start in range(0, n, batch_size):
        yield [a[start : start + batch_size] for a in arrays]


def batched_mask_to_box(masks: np.ndarray) -> np.ndarray:
    """Tight XYXY boxes (inclusive ends) of masks ``bool [..., H, W]`` -> ``int64 [..., 4]``.

    An empty mask gives ``[0, 0, 0, 0]``.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim < 2:
        raise ValueError(f"masks must be [..., H, W], got shape {masks.shape}")
    lead = masks.shape[:-2]
    h, w = masks.shape[-2:]
    if h == 0 or w == 0:
        return np.zeros((*lead, 4), dtype=np.int64)
    rows = masks.any(axis=-1)  # [..., H]
    cols = masks.any(axis=-2)  # [..., W]
    top = rows.argmax(axis=-1)
    bottom = h - 1 - rows[..., ::-1].argmax(axis=-1)
    left = cols.argmax(axis=-1)
    right = w - 1 - cols[..., ::-1].argmax(axis=-1)
    out = np.stack([left, top, right, bottom], axis=-1).astype(np.int64)
    out[~rows.any(axis=-1)] = 0
    return out


def box_xyxy_to_xywh(box: np.ndarray | Sequence[float]) -> np.ndarray:
    """XYXY ``[..., 4]`` -> XYWH ``[..., 4]`` (width = x1 - x0, as segment_anything reports)."""
    out = np.array(box, copy=True)
    out[..., 2] = out[..., 2] - out[..., 0]
    out[..., 3] = out[..., 3] - out[..., 1]
    return out


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(x1 - x0) * (y1 - y0)`` of XYXY boxes ``[N, 4]`` -> ``[N]``."""
    boxes = np.asarray(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, by decreasing score.

    Same result as ``torchvision.ops.batched_nms`` with one category (and ``ops.nms``): boxes
    are visited by decreasing score (ties in input order), a box is dropped when its IoU with an
    already kept box is ``> iou_threshold``. IoU is computed in float32 with areas
    ``(x1 - x0) * (y1 - y0)``; degenerate pairs (0 / 0) never suppress.

    Args:
        boxes: ``[N, 4]`` XYXY.
        scores: ``[N]``.
        iou_threshold: suppression threshold.

    Returns:
        ``int64 [K]``.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"{boxes.shape[0]} boxes but {scores.shape[0]} scores")
    n = boxes.shape[0]
    if n == 0:
        return np.zeros((0,), dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x1 - x0) * (y1 - y0)
    thr = float(iou_threshold)  # float32 IoU compared in double precision, as in C++
    suppressed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(n):
            if suppressed[i]:
                continue
            keep.append(i)
            rest = slice(i + 1, n)
            iw = np.maximum(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), np.float32(0))
            ih = np.maximum(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), np.float32(0))
            inter = iw * ih
            iou = inter / (areas[i] + areas[rest] - inter)
            suppressed[rest] |= iou.astype(np.float64) > thr
    return order[np.asarray(keep, dtype=np.int64)]


def is_box_near_crop_edge(
    boxes: np.ndarray, crop_box: Sequence[int], orig_box: Sequence[int], atol: float = 20.0
) -> np.ndarray:
    """``bool [N]``: a box (crop frame) is within ``atol`` of a crop edge that is not an image edge.

    Args:
        boxes: ``[N, 4]`` XYXY in the crop frame.
        crop_box: XYXY of the crop in the image.
        orig_box: XYXY of the whole image, ``[0, 0, W, H]``.
    """
    boxes = uncrop_boxes_xyxy(np.asarray(boxes), crop_box).astype(np.float32)
    crop = np.asarray(crop_box, dtype=np.float32)[None, :]
    orig = np.asarray(orig_box, dtype=np.float32)[None, :]
    near_crop = np.abs(boxes - crop) <= atol
    near_image = np.abs(boxes - orig) <= atol
    return np.any(near_crop & ~near_image, axis=1)


def uncrop_boxes_xyxy(boxes: np.ndarray, crop_box: Sequence[int]) -> np.ndarray:
    """Shift XYXY boxes ``[..., 4]`` from the crop frame to the image frame."""
    x0, y0 = crop_box[0], crop_box[1]
    return np.asarray(boxes) + np.asarray([x0, y0, x0, y0])


def uncrop_points(points: np.ndarray, crop_box: Sequence[int]) -> np.ndarray:
    """Shift (x, y) points ``[..., 2]`` from the crop frame to the image frame."""
    return np.asarray(points) + np.asarray([crop_box[0], crop_box[1]])


def uncrop_masks(masks: np.ndarray, crop_box: Sequence[int], orig_h: int, orig_w: int) -> np.ndarray:
    """Zero-pad crop-frame masks ``[..., h, w]`` into the image frame ``[..., orig_h, orig_w]``."""
    x0, y0, x1, y1 = (int(v) for v in crop_box)
    masks = np.asarray(masks)
    if (x0, y0, x1, y1) == (0, 0, orig_w, orig_h):
        return masks
    pad = [(0, 0)] * (masks.ndim - 2) + [(y0, orig_h - y1), (x0, orig_w - x1)]
    return np.pad(masks, pad)
