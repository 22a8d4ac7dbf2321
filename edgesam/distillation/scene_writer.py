"""Write synthetic scenes to disk in COCO layout or SA-1B layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2

from ..everything.rle import area_from_rle, coco_encode_rle, mask_to_rle
from edgesam.scenes import SceneConfig, generate_scene

__all__ = ["write_coco_scenes", "write_sa1b_scenes"]


def _box_xywh(box) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0 + 1, y1 - y0 + 1]


def write_coco_scenes(
    out_dir: str | os.PathLike[str], num_scenes: int, *, seed: int = 0, config: SceneConfig | None = None
) -> Path:
    """Write scenes ``seed .. seed+num_scenes-1`` as ``out_dir/images/*.png`` + ``out_dir/instances.json``.

    Segmentations are compressed RLE (``{"size": [H, W], "counts": str}``), bboxes XYWH.
    Returns the path of the annotation file.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    cats = sorted(set((config or SceneConfig()).kinds))
    for i in range(num_scenes):
        scene = generate_scene(seed + i, config)
        name = f"scene_{seed + i:07d}.png"
        cv2.imwrite(str(out / "images" / name), scene.image[:, :, ::-1])
        h, w = scene.image.shape[:2]
        images.append({"id": i + 1, "file_name": name, "height": h, "width": w})
        for mask, box, kind in zip(scene.masks, scene.boxes, scene.kinds):
            raw = mask_to_rle(mask)
            rle = coco_encode_rle(raw)
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": cats.index(kind) + 1,
                "segmentation": rle, "area": area_from_rle(raw), "bbox": _box_xywh(box), "iscrowd": 0,
            })
    ann_file = out / "instances.json"
    ann_file.write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": i + 1, "name": c} for i, c in enumerate(cats)],
    }))
    return ann_file


def write_sa1b_scenes(
    out_dir: str | os.PathLike[str], num_scenes: int, *, seed: int = 0, config: SceneConfig | None = None
) -> Path:
    """Write scenes as SA-1B does: ``sa_<n>.jpg`` + ``sa_<n>.json`` per image (lossless .png here)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(num_scenes):
        scene = generate_scene(seed + i, config)
        stem = f"sa_{seed + i}"
        cv2.imwrite(str(out / f"{stem}.png"), scene.image[:, :, ::-1])
        h, w = scene.image.shape[:2]
        anns = []
        for j, (mask, box) in enumerate(zip(scene.masks, scene.boxes)):
            raw = mask_to_rle(mask)
            rle = coco_encode_rle(raw)
            anns.append({"id": j, "segmentation": rle, "area": area_from_rle(raw), "bbox": _box_xywh(box)})
        (out / f"{stem}.json").write_text(json.dumps({
            "image": {"image_id": seed + i, "file_name": f"{stem}.png", "height": h, "width": w},
            "annotations": anns,
        }))
    return out
