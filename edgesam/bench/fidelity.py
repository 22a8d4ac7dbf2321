"""Agreement of one backend x precision with the reference (torch fp32) on fixed prompts.

`collect_outputs` runs a predictor over the workload's fidelity scenes (embedding, one click
per object with all three multimask outputs, one box per object with the single-mask output);
`compare_outputs` turns two such collections into the figures stored in a result row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgesam.fidelity import FidelityMeter

from .workload import Prompts

__all__ = ["Outputs", "collect_outputs", "compare_outputs"]


@dataclass(frozen=True)
class Outputs:
    """What a predictor produced on the fidelity scenes.

    Attributes:
        embeddings: per scene float32 ``[1, 256, h, w]``.
        masks: per scene bool ``[M, H, W]``: K objects x 3 click masks, then K box masks.
        scores: per scene float32 ``[M]`` predicted IoU of those masks.
    """

    embeddings: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray, ...]
    scores: tuple[np.ndarray, ...]


def collect_outputs(predictor: Any, scenes: Sequence[Prompts]) -> Outputs:
    """Run `predictor` (a `SamPredictor`) on every scene; see `Outputs`."""
    embeddings, masks, scores = [], [], []
    for scene in scenes:
        predictor.set_image(scene.image)
        embeddings.append(np.array(predictor.get_image_embedding(), dtype=np.float32))
        m_pt, s_pt, _ = predictor.predict_batch(point_coords=scene.points,
                                                point_labels=scene.labels, multimask_output=True)
        m_box, s_box, _ = predictor.predict_batch(boxes=scene.boxes, multimask_output=False)
        h, w = scene.image.shape[:2]
        masks.append(np.concatenate([m_pt.reshape(-1, h, w), m_box.reshape(-1, h, w)]).astype(bool))
        scores.append(np.concatenate([s_pt.reshape(-1), s_box.reshape(-1)]).astype(np.float32))
    return Outputs(tuple(embeddings), tuple(masks), tuple(scores))


def compare_outputs(candidate: Outputs, reference: Outputs) -> dict[str, float]:
    """Fidelity figures of `candidate` against `reference`.

    Returns:
        ``embedding_cosine`` (mean over scenes), ``embedding_cosine_min``, ``mask_iou_mean`` and
        ``mask_iou_min`` (over every mask of every scene), ``score_abs_diff_max`` (largest
        difference of the predicted IoU scores).
    """
    if len(candidate.embeddings) != len(reference.embeddings):
        raise ValueError("candidate and reference cover different numbers of scenes")
    meter = FidelityMeter()
    for c, r in zip(candidate.embeddings, reference.embeddings, strict=True):
        meter.add_embeddings(r, c)
    for c, r in zip(candidate.masks, reference.masks, strict=True):
        meter.add_masks(r, c)
    for c, r in zip(candidate.scores, reference.scores, strict=True):
        meter.add_scores(r, c)
    report = meter.report()
    return {
        "embedding_cosine": report.embedding_cosine_mean,
        "embedding_cosine_min": report.embedding_cosine_min,
        "mask_iou_mean": report.mask_iou_mean,
        "mask_iou_min": report.mask_iou_min,
        "score_abs_diff_max": report.score_abs_diff_max,
    }
