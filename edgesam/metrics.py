"""Mask agreement shared by export verification, the quantization gate, benchmarks and the demo. numpy only."""

from __future__ import annotations

import numpy as np

__all__ = ["mask_iou"]


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boolean masks ``[..., H, W]``, pairwise over the leading axes -> float64 ``[...]``.

    Two empty masks count as identical (1.0). The shapes must be equal.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    inter = np.logical_and(a, b).sum(axis=(-2, -1), dtype=np.int64)
    union = np.logical_or(a, b).sum(axis=(-2, -1), dtype=np.int64)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))
