"""Automatic mask generation ("segment everything"), numpy + OpenCV only.

:class:`SamAutomaticMaskGenerator` prompts a model with a grid of points and returns one
record per distinct mask, like segment_anything's generator; the helpers (point grids, crop
boxes, RLE, NMS, stability score, small-region clean-up) are usable on their own.
"""

from edgesam.everything.boxes import (
    batch_iterator,
    batched_mask_to_box,
    box_area,
    box_xyxy_to_xywh,
    build_all_layer_point_grids,
    build_point_grid,
    generate_crop_boxes,
    is_box_near_crop_edge,
    nms,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from edgesam.everything.generator import SamAutomaticMaskGenerator, coarse_subset
from edgesam.everything.masks import calculate_stability_score, remove_small_regions
from edgesam.everything.maskset import MaskSet, postprocess_small_regions
from edgesam.everything.rle import (
    area_from_rle,
    coco_decode_counts,
    coco_encode_counts,
    coco_encode_rle,
    coco_rle_to_mask,
    mask_to_rle,
    masks_to_rle,
    rle_to_mask,
    roi_to_rle,
)
from edgesam.everything.upscale import MaskUpscaler, UpscaledRoi

__all__ = [
    "MaskSet",
    "MaskUpscaler",
    "SamAutomaticMaskGenerator",
    "UpscaledRoi",
    "area_from_rle",
    "batch_iterator",
    "batched_mask_to_box",
    "box_area",
    "box_xyxy_to_xywh",
    "build_all_layer_point_grids",
    "build_point_grid",
    "calculate_stability_score",
    "coarse_subset",
    "coco_decode_counts",
    "coco_encode_counts",
    "coco_encode_rle",
    "coco_rle_to_mask",
    "generate_crop_boxes",
    "is_box_near_crop_edge",
    "mask_to_rle",
    "masks_to_rle",
    "nms",
    "postprocess_small_regions",
    "remove_small_regions",
    "rle_to_mask",
    "roi_to_rle",
    "uncrop_boxes_xyxy",
    "uncrop_masks",
    "uncrop_points",
]
