"""Reading and writing images with clear errors (OpenCV, RGB in memory)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``[H, W, 3]`` uint8 RGB (grayscale and alpha are converted)."""
    import cv2

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError(f"could not decode image {path} (not an image file, or corrupt)")
    return to_rgb8(image)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """An image as OpenCV decodes it (BGR / BGRA / gray, uint8 or uint16) -> ``uint8 [H, W, 3]`` RGB."""
    import cv2

    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an RGB ``[H, W, 3]`` or single-channel ``[H, W]`` uint8/bool image; returns the path."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix or ".png", array)
    if not ok:
        raise ValueError(f"could not encode an image for {path} (unsupported extension?)")
    encoded.tofile(str(path))
    return path


def json_safe(value: Any) -> Any:
    """``value`` (nested dicts / lists / tuples) as JSON types: numpy arrays and scalars become
    lists and Python numbers, NaN / inf become None (JSON has no such numbers; e.g. an empty
    mask's stability score is 0 / 0, NaN as in SAM)."""
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
