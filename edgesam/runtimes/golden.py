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

from edgesam.bundle.format import Bundle, load_bundle
from edgesam.bundle.golden import load_golden
from edgesam.bundle.io_spec import DECODER_INPUTS
from edgesam.fidelity import FidelityMeter, FidelityReport

__all__ = ["GoldenMismatchError", "GoldenResult", "check_golden", "golden_report", "load_golden"]


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


def golden_report(backend: Any, bundle: Bundle, gold: dict[str, np.ndarray] | None = None) -> FidelityReport:
    """:class:`~edgesam.fidelity.FidelityReport` of ``backend`` on the bundle's golden inputs
    (one image; the ``B x 4`` low-resolution masks of its prompt set, kind ``"golden"``)."""
    gold = load_golden(bundle) if gold is None else gold
    meter = FidelityMeter()
    embed = np.asarray(backend.encode(gold["model_input"]), dtype=np.float32)
    meter.add_embeddings(gold["image_embeddings"], embed)
    iou, masks = backend.decode(embed, *(gold[k] for k in DECODER_INPUTS[1:]))
    thr = float(bundle.mask_threshold)
    a, b = np.asarray(masks) > thr, gold["low_res_masks"] > thr
    if a.shape != b.shape:
        raise GoldenMismatchError(f"backend returned masks of shape {a.shape}, expected {b.shape}")
    meter.add_masks(b, a, kind="golden", prompts=int(a.shape[0]))
    meter.add_scores(gold["iou_predictions"], np.asarray(iou))
    return meter.report()


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
    report = golden_report(backend, bundle, gold)
    result = GoldenResult(
        embedding_rel_error=report.embedding_rel_error,
        mask_iou=report.mask_iou_mean,
        min_mask_iou=report.mask_iou_min,
        iou_pred_abs_error=report.score_abs_diff_max,
    )
    embed_err = result.embedding_rel_error
    if min_mask_iou is not None and not result.mask_iou >= min_mask_iou:
        raise GoldenMismatchError(
            f"{getattr(backend, 'name', type(backend).__name__)} does not reproduce the bundle's reference "
            f"outputs: mean mask IoU {result.mask_iou:.4f} < {min_mask_iou} (embedding relative error "
            f"{embed_err:.3g}). Use a higher precision for this model."
        )
    return result
