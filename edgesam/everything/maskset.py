"""A batch of candidate masks with their scores, as parallel arrays (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgesam.everything.boxes import batched_mask_to_box, box_xyxy_to_xywh, nms
from edgesam.everything.masks import remove_small_regions
from edgesam.everything.rle import RLE, area_from_rle, mask_to_rle, rle_to_mask

__all__ = ["MaskSet", "postprocess_small_regions"]


def _f32(n: int = 0) -> np.ndarray:
    return np.zeros((n,), dtype=np.float32)


@dataclass
class MaskSet:
    """``N`` masks (as uncompressed RLEs) and their per-mask data.

    Attributes:
        rles: ``N`` uncompressed RLEs (image frame once the set leaves its crop).
        boxes: int64 ``[N, 4]`` XYXY (inclusive ends) of the masks.
        iou_preds: float32 ``[N]`` predicted IoU of each mask.
        points: float64 ``[N, 2]`` (x, y) point prompt that produced each mask.
        stability: float32 ``[N]`` stability score.
        crop_boxes: int64 ``[N, 4]`` XYXY crop the mask was predicted in.
    """

    rles: list[RLE] = field(default_factory=list)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))
    iou_preds: np.ndarray = field(default_factory=_f32)
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.float64))
    stability: np.ndarray = field(default_factory=_f32)
    crop_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.rles)

    def take(self, index: np.ndarray | Sequence[int]) -> MaskSet:
        """Subset (and order) given by integer indices or a boolean mask."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64)
        return MaskSet(
            rles=[self.rles[i] for i in index],
            boxes=self.boxes[index],
            iou_preds=self.iou_preds[index],
            points=self.points[index],
            stability=self.stability[index],
            crop_boxes=self.crop_boxes[index],
        )

    @staticmethod
    def concat(sets: Sequence[MaskSet]) -> MaskSet:
        """One set with the masks of ``sets`` in order."""
        if not sets:
            return MaskSet()
        return MaskSet(
            rles=[r for s in sets for r in s.rles],
            boxes=np.concatenate([s.boxes for s in sets], axis=0),
            iou_preds=np.concatenate([s.iou_preds for s in sets], axis=0),
            points=np.concatenate([s.points for s in sets], axis=0),
            stability=np.concatenate([s.stability for s in sets], axis=0),
            crop_boxes=np.concatenate([s.crop_boxes for s in sets], axis=0),
        )

    def records(self, segmentations: Sequence[Any]) -> list[dict[str, Any]]:
        """One annotation dict per mask (segment_anything's record layout)."""
        out = []
        for i, seg in enumerate(segmentations):
            out.append(
                {
                    "segmentation": seg,
                    "area": area_from_rle(self.rles[i]),
                    "bbox": [int(v) for v in box_xyxy_to_xywh(self.boxes[i])],
                    "predicted_iou": float(self.iou_preds[i]),
                    "point_coords": [[float(v) for v in self.points[i]]],
                    "stability_score": float(self.stability[i]),
                    "crop_box": [int(v) for v in box_xyxy_to_xywh(self.crop_boxes[i])],
                }
            )
        return out


def postprocess_small_regions(masks: MaskSet, min_area: int, nms_thresh: float) -> MaskSet:
    """Fill holes and drop islands smaller than ``min_area`` pixels, then re-run box NMS.

    Masks that needed no change win over changed ones in the NMS (score 1 vs 0). Returns the
    kept masks in NMS order, with RLEs and boxes updated where the masks changed.
    """
    if len(masks) == 0:
        return masks
    boxes = np.zeros((len(masks), 4), dtype=np.int64)
    scores = np.zeros((len(masks),), dtype=np.float32)
    changed_rles: dict[int, RLE] = {}
    for i, rle in enumerate(masks.rles):
        mask = rle_to_mask(rle)
        mask, filled = remove_small_regions(mask, min_area, mode="holes")
        mask, dropped = remove_small_regions(mask, min_area, mode="islands")
        boxes[i] = batched_mask_to_box(mask)
        if filled or dropped:
            changed_rles[i] = mask_to_rle(mask)
        else:
            scores[i] = 1.0
    keep = nms(boxes.astype(np.float32), scores, nms_thresh)
    out = masks.take(keep)
    for j, i in enumerate(keep.tolist()):
        if i in changed_rles:
            out.rles[j] = changed_rles[i]
            out.boxes[j] = boxes[i]
    return out
