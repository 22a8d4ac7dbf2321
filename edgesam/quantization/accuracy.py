"""The accuracy gate: a quantized bundle against its fp32 original, end to end.

Both bundles run through :class:`edgesam.predictor.SamPredictor` on held-out images with
generated point and box prompts (:mod:`edgesam.quantization.prompt_sampling`). Measured:
cosine similarity of the image embeddings, IoU of the full-resolution masks (the three
multimask outputs and the single-mask output of every prompt) and the absolute difference
of the predicted scores. The gate passes when the mean mask IoU reaches the threshold
(default 0.97). numpy only; the backends are whatever the caller loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgesam.metrics import embedding_cosine, mask_iou
from edgesam.quantization.calibration import CalibrationSet

__all__ = [
    "DEFAULT_MIN_IOU",
    "AccuracyGateError",
    "AccuracyReport",
    "compare_predictors",
]

DEFAULT_MIN_IOU = 0.97


class AccuracyGateError(RuntimeError):
    """The quantized model is not faithful enough; ``report`` holds the measurements."""

    def __init__(self, message: str, report: AccuracyReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class AccuracyReport:
    """Agreement of a quantized bundle with its fp32 original.

    Attributes:
        images: held-out images compared.
        prompts: prompts decoded per model (each gives 4 masks: 3 multimask + 1 single).
        embedding_cosine_mean, embedding_cosine_min: cosine of the ``[1, C, h, w]`` embeddings.
        mask_iou_mean, mask_iou_min: IoU of the thresholded full-resolution masks.
        mask_iou_by_kind: mean IoU per prompt kind (point, points, box, box+point).
        score_abs_diff_mean, score_abs_diff_max: absolute difference of the predicted IoU scores.
        min_mask_iou: the threshold on ``mask_iou_mean``.
        passed: ``mask_iou_mean >= min_mask_iou``.
        kept_float: ``"<graph>:<node>"`` names (e.g. ``"encoder:/layers.0/.../Conv"``) kept in
            float by the sensitivity search (empty if it was not needed).
        search: one entry per search step (kept count, mean IoU).
    """

    images: int
    prompts: int
    embedding_cosine_mean: float
    embedding_cosine_min: float
    mask_iou_mean: float
    mask_iou_min: float
    mask_iou_by_kind: dict[str, float]
    score_abs_diff_mean: float
    score_abs_diff_max: float
    min_mask_iou: float
    passed: bool
    kept_float: tuple[str, ...] = ()
    search: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored under ``quantization.accuracy`` in the bundle)."""
        out = asdict(self)
        out["kept_float"] = list(self.kept_float)
        out["search"] = [dict(s) for s in self.search]
        return out

    def summary(self) -> str:
        """One line for logs and the command line."""
        verdict = "PASS" if self.passed else "FAIL"
        kept = f", {len(self.kept_float)} layer(s) kept in float" if self.kept_float else ""
        return (
            f"{verdict}: mask IoU mean {self.mask_iou_mean:.4f} (min {self.mask_iou_min:.4f}, threshold "
            f"{self.min_mask_iou}), embedding cosine {self.embedding_cosine_mean:.4f}, score diff "
            f"{self.score_abs_diff_mean:.4f} over {self.images} image(s) x {self.prompts // max(self.images, 1)} "
            f"prompt(s){kept}"
        )


def compare_predictors(
    reference: Any,
    candidate: Any,
    images: CalibrationSet,
    *,
    prompts_per_image: int = 8,
    min_mask_iou: float = DEFAULT_MIN_IOU,
    seed: int = 1,
) -> AccuracyReport:
    """Run two predictors (or backends) on the same images and prompts and compare.

    Args:
        reference: the fp32 model, a :class:`~edgesam.predictor.SamPredictor` or a backend.
        candidate: the quantized model, likewise.
        images: held-out images (only the RGB images are used; each predictor pre-processes).
        prompts_per_image: prompts sampled per image (see :func:`sample_prompts`).
        min_mask_iou: gate threshold on the mean mask IoU.
        seed: prompt sampling seed.
    """
    from edgesam.predictor import SamPredictor

    ref = reference if isinstance(reference, SamPredictor) else SamPredictor(reference)
    cand = candidate if isinstance(candidate, SamPredictor) else SamPredictor(candidate)
    cosines: list[float] = []
    ious: list[np.ndarray] = []
    by_kind: dict[str, list[np.ndarray]] = {}
    score_diffs: list[np.ndarray] = []
    prompts = 0
    for index, item in enumerate(images.images):
        ref.set_image(item.image)
        cand.set_image(item.image)
        cosines.append(embedding_cosine(ref.get_image_embedding(), cand.get_image_embedding()))
        for batch in images.prompts(index, prompts_per_image, seed=seed):
            prompts += batch.size
            for multimask in (True, False):
                args = dict(point_coords=batch.point_coords, point_labels=batch.point_labels, boxes=batch.boxes,
                            multimask_output=multimask)  # fmt: skip
                m_ref, s_ref, _ = ref.predict_batch(**args)
                m_cand, s_cand, _ = cand.predict_batch(**args)
                iou = mask_iou(m_ref, m_cand).ravel()
                ious.append(iou)
                by_kind.setdefault(batch.kind, []).append(iou)
                score_diffs.append(np.abs(s_ref - s_cand).ravel())
        ref.reset_image()
        cand.reset_image()
    all_iou = np.concatenate(ious)
    diffs = np.concatenate(score_diffs)
    mean_iou = float(all_iou.mean())
    return AccuracyReport(
        images=len(images),
        prompts=prompts,
        embedding_cosine_mean=float(np.mean(cosines)),
        embedding_cosine_min=float(np.min(cosines)),
        mask_iou_mean=mean_iou,
        mask_iou_min=float(all_iou.min()),
        mask_iou_by_kind={k: float(np.concatenate(v).mean()) for k, v in by_kind.items()},
        score_abs_diff_mean=float(diffs.mean()),
        score_abs_diff_max=float(diffs.max()),
        min_mask_iou=float(min_mask_iou),
        passed=bool(mean_iou >= min_mask_iou),
    )
