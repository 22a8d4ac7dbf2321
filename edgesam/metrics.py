"""Mask and embedding agreement shared by export verification, the quantization gate, benchmarks and the demo. numpy only."""

from __future__ import annotations

import numpy as np

__all__ = ["embedding_cosine", "mask_iou"]


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


def embedding_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings flattened to vectors (1.0 for two zero vectors)."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"embedding shapes differ: {np.shape(a)} vs {np.shape(b)}")
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 and ny == 0:
        return 1.0
    if nx == 0 or ny == 0:
        return 0.0
    return float(np.dot(x, y) / (nx * ny))
