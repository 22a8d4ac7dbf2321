"""Mask and embedding agreement (kept for existing imports; the measures live in :mod:`edgesam.fidelity`)."""

from __future__ import annotations

from edgesam.fidelity import embedding_cosine, mask_iou

__all__ = ["embedding_cosine", "mask_iou"]
