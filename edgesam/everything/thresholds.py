"""The segment-everything filter thresholds used when the caller gives none.

SAM's automatic mask generator keeps a candidate when its predicted IoU is above 0.88 and its
stability score at least 0.95. Those values suit a model whose IoU head predicts >= 0.88 for its
good masks. The embedded ``edgesam-demo`` (architecture ``edgesam_demo``, 128 px, trained on the
package's synthetic scenes) predicts its masks' IoU honestly, and its masks are rarely that good:
at SAM's thresholds it returns nothing on every scene. Its own thresholds were chosen on 30
validation scenes (seeds from 10,000,000; not the benchmark's) by the F1 of recall and precision
at mask IoU >= 0.5 over a grid of pred_iou 0.4-0.7 x stability 0.7-0.9:
``python benchmarks/demo_model_paths.py`` reports both. Every other architecture keeps SAM's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SAM_THRESHOLDS", "Thresholds", "default_thresholds", "model_arch"]


@dataclass(frozen=True)
class Thresholds:
    """Filter thresholds of segment-everything and where they come from.

    Attributes:
        pred_iou_thresh: keep masks whose predicted IoU is above this.
        stability_score_thresh: keep masks whose stability score is at least this.
        source: a few words for messages, e.g. ``"SAM's defaults"``.
    """

    pred_iou_thresh: float
    stability_score_thresh: float
    source: str


SAM_THRESHOLDS = Thresholds(0.88, 0.95, "SAM's defaults")
_BY_ARCH = {
    "edgesam_demo": Thresholds(0.6, 0.8, "edgesam-demo's own (SAM's 0.88 / 0.95 return no masks with this model)"),
}


def model_arch(backend: Any) -> str | None:
    """The architecture name of a runtime backend's model (a bundle's or a torch model's), if known."""
    bundle = getattr(backend, "bundle", None)
    arch = getattr(bundle, "arch", None) or getattr(getattr(backend, "model", None), "arch", None)
    return str(arch) if arch else None


def default_thresholds(backend: Any) -> Thresholds:
    """The thresholds for ``backend``'s model when the caller gives none (SAM's unless listed above)."""
    return _BY_ARCH.get(model_arch(backend) or "", SAM_THRESHOLDS)
