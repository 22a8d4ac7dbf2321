"""Counts of what each filter of segment-everything let through, to explain an empty result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FilterStats"]


@dataclass
class FilterStats:
    """What one :meth:`SamAutomaticMaskGenerator.generate` call decoded and kept.

    Attributes:
        candidates: decoded masks (prompts x multimask outputs, over every crop).
        passed_iou: candidates whose predicted IoU passed ``pred_iou_thresh``.
        passed_stability: of those, the ones whose stability score passed its threshold.
        returned: masks in the result (after the crop-edge filter and NMS).
        max_predicted_iou: highest predicted IoU of any candidate (nan before any decode).
        max_stability: highest stability score measured (only candidates that passed the IoU
            filter are measured; nan when none was).
        pred_iou_thresh, stability_score_thresh: the thresholds in use.
    """

    pred_iou_thresh: float
    stability_score_thresh: float
    candidates: int = 0
    passed_iou: int = 0
    passed_stability: int = 0
    returned: int = 0
    max_predicted_iou: float = float("nan")
    max_stability: float = float("nan")

    def add_decoded(self, iou: np.ndarray, passed: int) -> None:
        """Record one batch's predicted IoUs (``[n]``) of which ``passed`` passed the IoU filter."""
        self.candidates += int(iou.size)
        self.passed_iou += int(passed)
        if iou.size:
            self.max_predicted_iou = float(np.nanmax([np.nanmax(iou), self.max_predicted_iou]))

    def add_stability(self, score: float, passed: bool) -> None:
        """Record one measured stability score and whether it passed."""
        self.passed_stability += int(passed)
        if np.isfinite(score):
            self.max_stability = float(np.nanmax([score, self.max_stability]))

    def explain(self) -> str:
        """One line saying where the candidates were filtered out, e.g. for an empty result.

        ``"0 of 1024 candidates passed pred_iou_thresh=0.88; highest predicted IoU 0.41"``.
        """
        if self.candidates == 0:
            return "no candidates were decoded (no point prompts)"
        if self.passed_iou == 0:
            return (f"0 of {self.candidates} candidates passed pred_iou_thresh={self.pred_iou_thresh:g}; "
                    f"highest predicted IoU {self.max_predicted_iou:.2f}")
        if self.passed_stability == 0:
            return (f"{self.passed_iou} of {self.candidates} candidates passed pred_iou_thresh="
                    f"{self.pred_iou_thresh:g}, 0 of them stability_score_thresh={self.stability_score_thresh:g}; "
                    f"highest stability score {self.max_stability:.2f}")
        return (f"{self.passed_iou} of {self.candidates} candidates passed pred_iou_thresh={self.pred_iou_thresh:g}, "
                f"{self.passed_stability} also stability_score_thresh={self.stability_score_thresh:g}; "
                f"{self.returned} returned after the crop-edge filter and duplicate removal")
