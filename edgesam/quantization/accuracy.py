"""The accuracy gate: a quantized bundle against its fp32 original, end to end.

Both bundles run through :class:`edgesam.predictor.SamPredictor` on held-out images with
generated point and box prompts (:mod:`edgesam.prompt_geometry`). Measured:
cosine similarity of the image embeddings, IoU of the full-resolution masks (the three
multimask outputs and the single-mask output of every prompt) and the absolute difference
of the predicted scores. The gate passes when the mean mask IoU reaches the threshold
(default 0.97). numpy only; the backends are whatever the caller loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgesam.fidelity import GATE_MIN_IOU, FidelityReport
from edgesam.fidelity import compare_predictors as _compare
from edgesam.quantization.calibration import CalibrationSet

__all__ = [
    "DEFAULT_MIN_IOU",
    "AccuracyGateError",
    "AccuracyReport",
    "compare_predictors",
]

DEFAULT_MIN_IOU = GATE_MIN_IOU


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

    @classmethod
    def from_fidelity(cls, report: FidelityReport, min_mask_iou: float = DEFAULT_MIN_IOU) -> AccuracyReport:
        """The gate's view of a :class:`~edgesam.fidelity.FidelityReport`."""
        return cls(
            images=report.images,
            prompts=report.prompts,
            embedding_cosine_mean=report.embedding_cosine_mean,
            embedding_cosine_min=report.embedding_cosine_min,
            mask_iou_mean=report.mask_iou_mean,
            mask_iou_min=report.mask_iou_min,
            mask_iou_by_kind=dict(report.mask_iou_by_kind),
            score_abs_diff_mean=report.score_abs_diff_mean,
            score_abs_diff_max=report.score_abs_diff_max,
            min_mask_iou=float(min_mask_iou),
            passed=report.passes(min_mask_iou),
        )

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
    report = _compare(reference, candidate, images, prompts_per_image=prompts_per_image, seed=seed)
    return AccuracyReport.from_fidelity(report, min_mask_iou)
