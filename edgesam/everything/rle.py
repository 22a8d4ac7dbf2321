"""Run-length encodings of binary masks, in the COCO conventions.

An *uncompressed* RLE is ``{"size": [H, W], "counts": [c0, c1, ...]}``: the mask is read in
column-major (Fortran) order and ``counts`` alternates run lengths of 0s and 1s, starting with
0s (so it starts with ``0`` when the first pixel is set). A *COCO* (compressed) RLE has the same
``size`` and a ``str`` of counts in the compact text form used by ``pycocotools``: each count
(from the fourth on, as a difference to the count two places earlier) is written as
little-endian 5-bit groups, the sixth bit of each character flagging that another group follows,
offset by 48 into printable ASCII.

Everything here is numpy; ``pycocotools`` is not needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "area_from_rle",
    "coco_decode_counts",
    "coco_encode_counts",
    "coco_encode_rle",
    "coco_rle_to_mask",
    "mask_to_rle",
    "masks_to_rle",
    "rle_from_runs",
    "rle_to_mask",
    "roi_to_rle",
]

RLE = dict[str, Any]


def rle_from_runs(transitions: np.ndarray, height: int, width: int) -> RLE:
    """Build an uncompressed RLE from the sorted flat (column-major) indices where the value flips.

    ``transitions`` holds each index ``i`` at which pixel ``i`` differs from pixel ``i - 1``
    (pixel ``-1`` counting as 0); the mask must end with the value implied by their parity.
    """
    total = int(height) * int(width)
    bounds = np.concatenate(([0], np.asarray(transitions, dtype=np.int64), [total]))
    counts = np.diff(bounds)
    return {"size": [int(height), int(width)], "counts": counts.tolist()}


def roi_to_rle(roi: np.ndarray, offset: tuple[int, int], size: tuple[int, int]) -> RLE:
    """RLE of a full ``size`` mask that is zero except for ``roi`` placed at ``offset``.

    Works in O(roi area): the full mask is never built.

    Args:
        roi: ``bool [h, w]`` block of the mask.
        offset: ``(x0, y0)`` of the block's top-left pixel in the full mask.
        size: ``(H, W)`` of the full mask; the block must lie inside it.
    """
    roi = np.asarray(roi, dtype=bool)
    if roi.ndim != 2:
        raise ValueError(f"roi must be 2-D, got shape {roi.shape}")
    height, width = int(size[0]), int(size[1])
    x0, y0 = int(offset[0]), int(offset[1])
    h, w = roi.shape
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"roi of shape {roi.shape} at {(x0, y0)} does not fit in {(height, width)}")
    # Pad a zero row above and below so every run inside a column starts and ends in the block.
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = roi.T
    col, row = np.nonzero(padded[:, 1:] != padded[:, :-1])
    flat = (x0 + col).astype(np.int64) * height + (y0 + row)
    # A run crossing from the bottom of one column to the top of the next shows up as a
    # 1->0 and a 0->1 transition at the same index; they cancel.
    if flat.size > 1:
        dup = np.flatnonzero(flat[1:] == flat[:-1])
        if dup.size:
            flat = np.delete(flat, np.concatenate((dup, dup + 1)))
    if flat.size and flat[-1] == height * width:
        flat = flat[:-1]
    return rle_from_runs(flat, height, width)


def mask_to_rle(mask: np.ndarray) -> RLE:
    """Uncompressed RLE of a ``bool [H, W]`` mask."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    return roi_to_rle(mask, (0, 0), mask.shape)


def masks_to_rle(masks: np.ndarray) -> list[RLE]:
    """Uncompressed RLEs of a batch of masks ``bool [B, H, W]``."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [B, H, W], got shape {masks.shape}")
    return [mask_to_rle(m) for m in masks]


def rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode an uncompressed RLE into a ``bool [H, W]`` (C-ordered) mask."""
    height, width = (int(v) for v in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != height * width:
        raise ValueError(f"RLE counts sum to {int(counts.sum())}, expected {height * width}")
    values = (np.arange(counts.size) % 2).astype(bool)
    flat = np.repeat(values, counts)
    return np.ascontiguousarray(flat.reshape(width, height).T)


def area_from_rle(rle: RLE) -> int:
    """Number of set pixels of an uncompressed RLE."""
    return int(np.asarray(rle["counts"], dtype=np.int64)[1::2].sum())


def coco_encode_counts(counts: list[int] | np.ndarray) -> str:
    """Compact string form (``pycocotools``' ``rleToString``) of RLE counts."""
    counts = [int(c) for c in counts]
    chars: list[str] = []
    for i, value in enumerate(counts):
        x = value - counts[i - 2] if i > 2 else value
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences keep their sign
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def coco_decode_counts(text: str | bytes) -> list[int]:
    """Inverse of :func:`coco_encode_counts`."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    counts: list[int] = []
    pos, n = 0, len(text)
    while pos < n:
        x, k, more = 0, 0, True
        while more:
            if pos >= n:
                raise ValueError("truncated COCO RLE string")
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def coco_encode_rle(rle: RLE) -> RLE:
    """COCO (compressed, JSON-serialisable) RLE ``{"size": [H, W], "counts": str}``."""
    height, width = (int(v) for v in rle["size"])
    return {"size": [height, width], "counts": coco_encode_counts(rle["counts"])}


def coco_rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode a COCO RLE (string or bytes counts) into a ``bool [H, W]`` mask."""
    return rle_to_mask({"size": rle["size"], "counts": coco_decode_counts(rle["counts"])})
