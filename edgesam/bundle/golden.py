"""The bundle's golden file (``golden.npz``): reference inputs and torch outputs for self-checks.

Written once at export by :func:`save_golden`; read by :func:`load_golden` wherever a backend
is checked against it (:func:`edgesam.runtimes.golden.check_golden`). numpy only.

Arrays (``S`` model input side, ``h = w = S / 16``, ``B = 3`` prompts, ``N`` points each):

==================  =================================  ============================
key                 shape, dtype                       what
==================  =================================  ============================
image               ``[H, W, 3]`` uint8                the RGB scene
model_input         ``[1, 3, S, S]`` float32           normalised, padded image
image_embeddings    ``[1, 256, h, w]`` float32         torch encoder output
point_coords        ``[B, N, 2]`` float32              decoder prompt inputs
point_labels        ``[B, N]`` float32
mask_input          ``[B, 1, 4h, 4w]`` float32
has_mask_input      ``[B]`` float32
iou_predictions     ``[B, 4]`` float32                 torch decoder outputs
low_res_masks       ``[B, 4, 4h, 4w]`` float32
==================  =================================  ============================
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from .format import GOLDEN_FILE, Bundle, BundleError

__all__ = ["GOLDEN_FILE", "GOLDEN_KEYS", "load_golden", "save_golden"]

GOLDEN_KEYS = (
    "image", "model_input", "image_embeddings", "point_coords", "point_labels", "mask_input",
    "has_mask_input", "iou_predictions", "low_res_masks",
)  # fmt: skip


def save_golden(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write the golden arrays (every key of :data:`GOLDEN_KEYS`, numpy arrays) to ``path``."""
    missing = [k for k in GOLDEN_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"golden file needs the arrays {', '.join(missing)}")
    np.savez_compressed(path, **{k: np.asarray(v) for k, v in arrays.items()})


def load_golden(bundle: Bundle) -> dict[str, np.ndarray]:
    """The arrays of the bundle's golden file (``BundleError`` if the bundle has none)."""
    if not bundle.has("golden"):
        raise BundleError(f"bundle {bundle.root} has no golden file; re-export it with `edgesam export`")
    with np.load(bundle.path("golden"), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
