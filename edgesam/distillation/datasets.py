"""Training and evaluation datasets: image folders, COCO layout, SA-1B layout, synthetic scenes.

Every dataset yields the model input exactly as the predictor builds it (longest side resized
to ``S`` with Pillow-compatible antialiased bilinear, normalised, zero padded bottom/right),
through :mod:`edgesam.predictor.transforms`. A sample is a dict::

    image            float32 [3, S, S]
    input_size       int64 [2]   (h, w) of the resized image inside the padded input
    original_size    int64 [2]   (H, W)
    path             str
    masks            bool [K, S, S]  instance masks in the input frame (absent without labels)
    skipped_annotations  int     annotations of this image that could not be decoded

Unreadable images make ``__getitem__`` return ``None``; :func:`collate` drops them and counts
them, so a corrupt file is skipped and logged rather than crashing a run (also with workers).
``source(index)`` gives an item's name and raw bytes (the file, or a synthetic scene's pixels):
the teacher cache keys embeddings by their sha256 (:func:`source_key`).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..models.sam import PIXEL_MEAN, PIXEL_STD
from ..predictor.transforms import get_preprocess_shape, normalize_and_pad, resize_longest_side
from ..everything.rle import coco_rle_to_mask, rle_to_mask
from edgesam.scenes import SceneConfig, generate_scene

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_images",
    "read_image",
    "preprocess_image",
    "masks_to_input_frame",
    "ImageFolderDataset",
    "CocoDataset",
    "SA1BDataset",
    "SyntheticSceneDataset",
    "WithTeacherEmbeddings",
    "collate",
    "source_key",
    "dataset_keys",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_MEAN = np.asarray(PIXEL_MEAN, np.float32)
_STD = np.asarray(PIXEL_STD, np.float32)


def list_images(root: str | os.PathLike[str]) -> list[str]:
    """Image files under ``root`` (recursive, sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    return sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def read_image(path: str | os.PathLike[str]) -> np.ndarray | None:
    """RGB uint8 ``[H, W, 3]``, or ``None`` when the file is missing, truncated or not an image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None
    return np.ascontiguousarray(image[:, :, ::-1])


def preprocess_image(image: np.ndarray, image_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """RGB uint8 ``[H, W, 3]`` -> (float32 ``[3, S, S]``, resized ``(h, w)``), as the predictor does."""
    resized = resize_longest_side(image, image_size)
    x = normalize_and_pad(resized, _MEAN, _STD, image_size)[0]
    return torch.from_numpy(x), (int(resized.shape[0]), int(resized.shape[1]))


def masks_to_input_frame(masks: np.ndarray, image_size: int) -> np.ndarray:
    """Bool ``[K, H, W]`` masks -> bool ``[K, S, S]`` in the resized, padded input frame."""
    k, h, w = masks.shape
    nh, nw = get_preprocess_shape(h, w, image_size)
    out = np.zeros((k, image_size, image_size), dtype=bool)
    for i in range(k):
        if (nh, nw) == (h, w):
            out[i, :h, :w] = masks[i]
        else:
            m = cv2.resize(masks[i].astype(np.float32), (nw, nh), interpolation=cv2.INTER_LINEAR)
            out[i, :nh, :nw] = m > 0.5
    return out


def _sample(path: str, image: np.ndarray, image_size: int, masks: np.ndarray | None, skipped: int = 0) -> dict:
    x, (h, w) = preprocess_image(image, image_size)
    sample: dict[str, Any] = {
        "image": x,
        "input_size": torch.tensor([h, w]),
        "original_size": torch.tensor(image.shape[:2]),
        "path": str(path),
        "skipped_annotations": int(skipped),
    }
    if masks is not None:
        keep = masks.reshape(len(masks), -1).any(1) if len(masks) else np.zeros(0, bool)
        sample["masks"] = torch.from_numpy(masks_to_input_frame(masks[keep], image_size))
        sample["skipped_annotations"] += int((~keep).sum())
    return sample


class ImageFolderDataset(Dataset):
    """Unlabelled images (any jpg/png/...); unreadable files yield ``None`` (skipped by :func:`collate`).

    Args:
        images: a folder (searched recursively) or an explicit list of files.
        image_size: model input side ``S``.
    """

    def __init__(self, images: str | os.PathLike[str] | Sequence[str], *, image_size: int):
        self.paths = list_images(images) if isinstance(images, (str, os.PathLike)) else [str(p) for p in images]
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return len(self.paths)

    def source(self, index: int) -> tuple[str, bytes | None]:
        """The file's path and bytes (None when missing or empty)."""
        return self.paths[index], _file_bytes(self.paths[index])

    def __getitem__(self, index: int) -> dict | None:
        image = read_image(self.paths[index])
        return None if image is None else _sample(self.paths[index], image, self.image_size, None)


def _file_bytes(path: str | os.PathLike[str]) -> bytes | None:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return data or None


def source_key(dataset: Dataset, index: int) -> tuple[str, str | None]:
    """``(name, sha256 of the item's bytes)``; the key is None when the file cannot be read or is empty."""
    from .teacher_cache import content_key

    name, data = dataset.source(index)  # type: ignore[attr-defined]
    return name, (None if data is None else content_key(data))


def dataset_keys(dataset: Dataset) -> list[str | None]:
    """:func:`source_key` of every item, in order."""
    return [source_key(dataset, i)[1] for i in range(len(dataset))]  # type: ignore[arg-type]


def _valid_segmentation(seg: Any) -> bool:
    if isinstance(seg, dict):
        return "size" in seg and "counts" in seg and len(seg["size"]) == 2
    if isinstance(seg, list) and seg:
        return all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in seg)
    return False


def _decode_segmentation(seg: Any, h: int, w: int) -> np.ndarray:
    """Bool ``[h, w]`` mask of a COCO/SA-1B segmentation (RLE dict or polygons); ValueError if bad."""
    if isinstance(seg, dict):
        counts = seg["counts"]
        mask = coco_rle_to_mask(seg) if isinstance(counts, (str, bytes)) else rle_to_mask(seg)
        if mask.shape != (h, w):
            raise ValueError(f"RLE size {mask.shape} differs from the image size {(h, w)}")
        return mask
    canvas = np.zeros((h, w), np.uint8)
    polys = [np.round(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32) for p in seg]
    cv2.fillPoly(canvas, polys, 1)
    return canvas.astype(bool)


def _decode_annotations(anns: Sequence[dict], h: int, w: int) -> tuple[np.ndarray, int]:
    masks, skipped = [], 0
    for ann in anns:
        try:
            if not _valid_segmentation(ann.get("segmentation")):
                raise ValueError("no usable segmentation")
            masks.append(_decode_segmentation(ann["segmentation"], h, w))
        except (ValueError, TypeError, KeyError, IndexError, OverflowError):
            skipped += 1
    stacked = np.stack(masks) if masks else np.zeros((0, h, w), bool)
    return stacked, skipped


class CocoDataset(Dataset):
    """COCO layout: an image folder and one ``instances.json`` (RLE or polygon segmentations).

    Structurally broken annotations are dropped at construction and counted in
    ``skipped_annotations``; ones that fail to decode are counted per sample.
    """

    def __init__(self, image_dir: str | os.PathLike[str], annotation_file: str | os.PathLike[str], *, image_size: int):
        self.image_dir = Path(image_dir)
        self.image_size = int(image_size)
        try:
            data = json.loads(Path(annotation_file).read_text())
            images = data["images"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot read COCO annotations {annotation_file}: {exc}") from exc
        self.images = [im for im in images if isinstance(im, dict) and "id" in im and "file_name" in im]
        self.skipped_annotations = 0
        by_image: dict[Any, list[dict]] = defaultdict(list)
        for ann in data.get("annotations", []):
            if isinstance(ann, dict) and "image_id" in ann and _valid_segmentation(ann.get("segmentation")):
                by_image[ann["image_id"]].append(ann)
            else:
                self.skipped_annotations += 1
        self.annotations = by_image

    def __len__(self) -> int:
        return len(self.images)

    def source(self, index: int) -> tuple[str, bytes | None]:
        """The image file's path and bytes (None when missing or empty)."""
        path = str(self.image_dir / self.images[index]["file_name"])
        return path, _file_bytes(path)

    def __getitem__(self, index: int) -> dict | None:
        info = self.images[index]
        path = self.image_dir / info["file_name"]
        image = read_image(path)
        if image is None:
            return None
        masks, skipped = _decode_annotations(self.annotations.get(info["id"], []), *image.shape[:2])
        return _sample(str(path), image, self.image_size, masks, skipped)


class SA1BDataset(ImageFolderDataset):
    """SA-1B layout: ``<name>.jpg`` next to ``<name>.json`` with RLE ``segmentation`` per annotation."""

    def __init__(self, root: str | os.PathLike[str], *, image_size: int):
        super().__init__([p for p in list_images(root) if Path(p).with_suffix(".json").is_file()],
                         image_size=image_size)

    def __getitem__(self, index: int) -> dict | None:
        path = self.paths[index]
        image = read_image(path)
        if image is None:
            return None
        try:
            anns = json.loads(Path(path).with_suffix(".json").read_text()).get("annotations", [])
            anns = anns if isinstance(anns, list) else []
            bad_file = 0
        except (OSError, ValueError, AttributeError):
            anns, bad_file = [], 1
        masks, skipped = _decode_annotations(anns, *image.shape[:2])
        return _sample(path, image, self.image_size, masks, skipped + bad_file)


class SyntheticSceneDataset(Dataset):
    """Scenes from :func:`generate_scene` with seeds ``seed, seed + 1, ...`` (no files)."""

    def __init__(self, num_scenes: int, *, image_size: int, seed: int = 0, config: SceneConfig | None = None):
        self.num_scenes = int(num_scenes)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.config = config or SceneConfig()

    def __len__(self) -> int:
        return self.num_scenes

    def source(self, index: int) -> tuple[str, bytes]:
        """``synthetic://<seed>`` and the scene's RGB pixels (with their shape)."""
        image = generate_scene(self.seed + index, self.config).image
        return f"synthetic://{self.seed + index}", repr(image.shape).encode() + image.tobytes()

    def __getitem__(self, index: int) -> dict:
        scene = generate_scene(self.seed + index, self.config)
        return _sample(f"synthetic://{self.seed + index}", scene.image, self.image_size, scene.masks)


class WithTeacherEmbeddings(Dataset):
    """The cached items of ``dataset`` with ``teacher_embedding`` (float16 ``[C, S/16, S/16]``) added.

    Items whose key is not in the cache (unreadable files) are left out, so training never
    draws them. ``keys`` (per item of ``dataset``, as :func:`dataset_keys`) saves hashing the
    files again when the caller has them already.
    """

    def __init__(self, dataset: Dataset, cache: Any, *, keys: Sequence[str | None] | None = None):
        self.dataset = dataset
        self.cache = cache
        keys = dataset_keys(dataset) if keys is None else list(keys)
        if len(keys) != len(dataset):  # type: ignore[arg-type]
            raise ValueError(f"{len(keys)} keys for a dataset of {len(dataset)} items")  # type: ignore[arg-type]
        self.items = [(i, k) for i, k in enumerate(keys) if k is not None and k in cache]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict | None:
        i, key = self.items[index]
        sample = self.dataset[i]
        if sample is None:  # changed on disk since it was cached
            return None
        emb, _ = self.cache.get(key)
        sample["teacher_embedding"] = torch.from_numpy(emb)
        return sample


def collate(samples: Sequence[dict | None]) -> dict[str, Any]:
    """Batch samples; ``None`` (unreadable) ones are dropped and counted in ``skipped_images``."""
    good = [s for s in samples if s is not None]
    batch: dict[str, Any] = {
        "skipped_images": len(samples) - len(good),
        "skipped_annotations": sum(int(s["skipped_annotations"]) for s in good),
        "paths": [s["path"] for s in good],
        "skipped_by_path": {s["path"]: int(s["skipped_annotations"]) for s in good if s["skipped_annotations"]},
    }
    if not good:
        return batch
    batch["image"] = torch.stack([s["image"] for s in good])
    batch["input_size"] = torch.stack([s["input_size"] for s in good])
    batch["original_size"] = torch.stack([s["original_size"] for s in good])
    if all("masks" in s for s in good):
        batch["masks"] = [s["masks"] for s in good]
    if all("teacher_embedding" in s for s in good):
        batch["teacher_embedding"] = torch.stack([s["teacher_embedding"] for s in good])
    return batch
