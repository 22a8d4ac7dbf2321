"""Turning what users pass to ``set_image`` into the RGB ``uint8 [H, W, 3]`` SAM expects.

Accepted (anything else raises ``TypeError``/``ValueError`` naming the problem):

* ``uint8 [H, W, 3]`` RGB (or BGR with ``image_format="BGR"``): used as is;
* ``[H, W, 4]``: RGBA/BGRA, the alpha channel is dropped;
* ``[H, W]`` or ``[H, W, 1]``: grayscale, replicated to three channels;
* other integer dtypes whose values lie in 0..255: cast to ``uint8``;
* floating point images with values in [0, 1]: scaled by 255 and rounded to nearest.

Refused: empty images, NaN/inf, bool/complex/object/string arrays, float images outside
[0, 1] (convert 0..255 floats with ``.astype(np.uint8)``), integers outside 0..255
(16-bit images must be converted to 8 bits first), other channel counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["IMAGE_FORMATS", "to_rgb_uint8"]

IMAGE_FORMATS = ("RGB", "BGR")


def _as_array(image: Any) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    try:
        array = np.asarray(image)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}: {exc}") from None
    if array.dtype == object:
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    return array


def _to_uint8(array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind in "iu":
        lo, hi = int(array.min()), int(array.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f"integer image values must lie in 0..255, got {lo}..{hi} (dtype {array.dtype}); "
                "convert 16-bit or signed images to 8 bits first"
            )
        return array.astype(np.uint8)
    if kind == "f":
        if not np.isfinite(array).all():
            raise ValueError("image contains NaN or infinite values")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float images must have values in [0, 1], got {lo:g}..{hi:g}; for 0..255 floats "
                "pass image.astype(np.uint8)"
            )
        return np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)
    raise TypeError(
        f"image dtype {array.dtype} is not supported; expected uint8 (or other integers in 0..255, "
        "or floats in [0, 1])"
    )


def to_rgb_uint8(image: Any, image_format: str = "RGB") -> np.ndarray:
    """Validate ``image`` and return it as RGB ``uint8 [H, W, 3]`` (see the module docstring).

    Args:
        image: ``[H, W]``, ``[H, W, 1]``, ``[H, W, 3]`` or ``[H, W, 4]`` array.
        image_format: channel order of colour images, ``"RGB"`` or ``"BGR"``.

    Returns:
        C-contiguous RGB ``uint8 [H, W, 3]`` (may share memory with ``image`` when no
        conversion is needed).
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be in {list(IMAGE_FORMATS)}, is {image_format!r}")
    array = _as_array(image)
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"image dtype {array.dtype} is not supported; expected uint8 (or other integers in "
            "0..255, or floats in [0, 1])"
        )
    if array.ndim not in (2, 3):
        raise ValueError(f"image must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"image is empty (shape {array.shape})")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"image must have 1, 3 or 4 channels in the last axis (HWC layout), got shape {array.shape}"
        )
    array = _to_uint8(array)
    if array.ndim == 2 or array.shape[2] == 1:
        gray = array.reshape(array.shape[:2])
        return np.repeat(gray[:, :, None], 3, axis=2)
    rgb = array[:, :, :3]
    if image_format == "BGR":
        rgb = rgb[:, :, ::-1]
    return np.ascontiguousarray(rgb)
