"""Golden-output check: does a backend reproduce the torch outputs stored in a bundle?

Every bundle holds ``golden.npz`` (written at export): a scene image, its model input, a
prompt set with ``B = 3`` prompts, and the torch model's embedding, IoU predictions and
low-resolution mask logits for them. :func:`check_golden` runs a backend on the same inputs;
use it as a gate after building a reduced-precision engine (TensorRT FP16 is known to break
some encoders) or to prove a runtime-only install works. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesam.export.bundle import Bundle, BundleError, load_bundle
from edgesam.export.io_spec import DECODER_INPUTS
from edgesam.metrics import mask_iou

__all__ = ["GoldenMismatchError", "GoldenResult", "check_golden", "load_golden"]


class GoldenMismatchError(RuntimeError):
    """A backend's outputs are too far from the bundle's torch reference."""


@dataclass(frozen=True)
class GoldenResult:
    """Agreement of a backend with the torch reference.

    Attributes:
        embedding_rel_error: ``max|e - e_ref| / max(1, max|e_ref|)`` of the image embedding.
        mask_iou: mean IoU of the ``B x 4`` thresholded low-res masks, backend end to end
            (its own embedding) vs torch.
        min_mask_iou: the smallest of those IoUs.
        iou_pred_abs_error: max absolute error of the predicted IoU scores.
    """

    embedding_rel_error: float
    mask_iou: float
    min_mask_iou: float
    iou_pred_abs_error: float


def load_golden(bundle: Bundle) -> dict[str, np.ndarray]:
    """The arrays of the bundle's ``golden.npz``."""
    if not bundle.has("golden"):
        raise BundleError(f"bundle {bundle.root} has no golden file; re-export it with `edgesam export`")
    with np.load(bundle.path("golden"), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def check_golden(
    backend: Any, bundle: Bundle | str | None = None, *, min_mask_iou: float | None = None
) -> GoldenResult:
    """Run ``backend`` on the bundle's golden inputs and compare with the torch outputs.

    Args:
        backend: any :class:`edgesam.runtimes.Backend`.
        bundle: the bundle (default: ``backend.bundle``).
        min_mask_iou: if given, raise :class:`GoldenMismatchError` when the mean mask IoU is lower.
    """
    if bundle is None:
        bundle = backend.bundle
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    gold = load_golden(bundle)
    embed = np.asarray(backend.encode(gold["model_input"]), dtype=np.float32)
    ref = gold["image_embeddings"]
    scale = max(1.0, float(np.abs(ref).max()))
    embed_err = float(np.abs(embed - ref).max() / scale) if embed.shape == ref.shape else float("inf")
    iou, masks = backend.decode(embed, *(gold[k] for k in DECODER_INPUTS[1:]))
    thr = float(bundle.mask_threshold)
    a, b = np.asarray(masks) > thr, gold["low_res_masks"] > thr
    if a.shape != b.shape:
        raise GoldenMismatchError(f"backend returned masks of shape {a.shape}, expected {b.shape}")
    ious = mask_iou(a, b)
    result = GoldenResult(
        embedding_rel_error=embed_err,
        mask_iou=float(ious.mean()),
        min_mask_iou=float(ious.min()),
        iou_pred_abs_error=float(np.abs(np.asarray(iou) - gold["iou_predictions"]).max()),
    )
    if min_mask_iou is not None and not result.mask_iou >= min_mask_iou:
        raise GoldenMismatchError(
            f"{getattr(backend, 'name', type(backend).__name__)} does not reproduce the bundle's reference "
            f"outputs: mean mask IoU {result.mask_iou:.4f} < {min_mask_iou} (embedding relative error "
            f"{embed_err:.3g}). Use a higher precision for this model."
        )
    return result
