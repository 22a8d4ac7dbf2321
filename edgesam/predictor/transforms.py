"""Image and coordinate transforms of the SAM pre-processing, in numpy.

The model sees every image with its longest side resized to ``S`` (the model's square input
side), normalised per channel and zero padded bottom/right to ``S x S``. The resize is a
numpy re-implementation of Pillow's antialiased bilinear resampling (the filter SAM was
trained with: the official predictor resizes through ``PIL.Image.resize(BILINEAR)``):

* a triangle filter whose support grows with the downscale factor (antialiasing),
* weights quantised to fixed point (22 fractional bits), accumulated in integers,
* rounded and clipped to ``uint8`` after each pass; horizontal pass first, except (as in
  Pillow >= 13) when the height shrinks by more than twice as many pixels as the width.

Same arithmetic, same rounding, so the output equals Pillow's bit for bit on every size we
test (the tests allow one grey level of slack). Taps are precomputed once per axis size and
cached; each pass is a handful of vectorised gather/multiply/add steps over row blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

__all__ = [
    "apply_boxes",
    "apply_coords",
    "get_preprocess_shape",
    "normalize_and_pad",
    "resize_longest_side",
    "resize_uint8",
]

_PRECISION_BITS = 32 - 8 - 2  # fixed-point fraction bits of Pillow's 8-bit resampler


def get_preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """Size ``(new_h, new_w)`` of an image whose longest side is scaled to ``long_side``.

    Each side is ``int(side * scale + 0.5)`` with ``scale = long_side / max(height, width)``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {(height, width)}")
    if long_side <= 0:
        raise ValueError(f"long_side must be positive, got {long_side}")
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


@dataclass(frozen=True)
class _AxisTaps:
    """Resampling taps of one axis: output ``i`` = sum_t weight[i, t] * input[index[i, t]]."""

    index: np.ndarray  # [out, taps] int64, clipped into the input range
    weight: np.ndarray  # [out, taps] int32, fixed point, zero where the tap is unused


def _triangle(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


@lru_cache(maxsize=64)
def _axis_taps(in_size: int, out_size: int) -> _AxisTaps:
    """Fixed-point taps of Pillow's bilinear (triangle) filter for one axis."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(np.ceil(support)) * 2 + 1
    inv = 1.0 / filterscale

    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    # C truncation toward zero; negative values are clamped to 0 right after, as in Pillow.
    first = np.maximum((center - support + 0.5).astype(np.int64), 0)
    last = np.minimum((center + support + 0.5).astype(np.int64), in_size)
    count = last - first

    taps = np.arange(ksize, dtype=np.int64)
    valid = taps[None, :] < count[:, None]
    pos = taps[None, :] + first[:, None]
    raw = np.where(valid, _triangle((pos - center[:, None] + 0.5) * inv), 0.0)
    # Sequential sum (like the C loop), so the normaliser is bit-identical.
    total = np.add.accumulate(raw, axis=1)[:, -1]
    norm = np.divide(raw, total[:, None], out=np.zeros_like(raw), where=total[:, None] != 0)
    fixed = np.where(
        norm < 0,
        (norm * (1 << _PRECISION_BITS) - 0.5).astype(np.int64),
        (norm * (1 << _PRECISION_BITS) + 0.5).astype(np.int64),
    )
    # Keep taps only as wide as any output needs; unused taps point at a valid index.
    width = max(int(count.max()), 1)
    index = np.ascontiguousarray(np.minimum(pos[:, :width], in_size - 1))
    weight = np.ascontiguousarray(fixed[:, :width].astype(np.int32))
    index.flags.writeable = False  # cached and shared between threads
    weight.flags.writeable = False
    return _AxisTaps(index=index, weight=weight)


@lru_cache(maxsize=64)
def _interleaved_taps(in_size: int, out_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Column taps of :func:`_axis_taps` expanded to channel-interleaved rows.

    Returns ``index [taps, out * C]`` into a ``[W * C]`` row and ``weight [taps, out * C]``.
    """
    taps = _axis_taps(in_size, out_size)
    offsets = np.arange(channels, dtype=np.int64)
    index = (taps.index[:, :, None] * channels + offsets).transpose(1, 0, 2)
    index = np.ascontiguousarray(index.reshape(taps.index.shape[1], -1))
    weight = np.ascontiguousarray(np.repeat(taps.weight.T, channels, axis=1))
    index.flags.writeable = False
    weight.flags.writeable = False
    return index, weight


_BLOCK_BYTES = 1 << 19  # int32 accumulator block kept cache resident (~512 KiB)


def _accumulate(
    gather: Callable[[int], np.ndarray], weights: np.ndarray, out_shape: tuple[int, int]
) -> np.ndarray:
    """``sum_t gather(t) * weights[t]`` in int32, then rounding, shift and clip to uint8."""
    acc = np.empty(out_shape, dtype=np.int32)
    tmp = np.empty_like(acc)
    np.multiply(gather(0), weights[0], out=acc)
    for t in range(1, len(weights)):
        np.multiply(gather(t), weights[t], out=tmp)
        acc += tmp
    acc += 1 << (_PRECISION_BITS - 1)
    np.right_shift(acc, _PRECISION_BITS, out=acc)
    np.clip(acc, 0, 255, out=acc)
    return acc.astype(np.uint8)


def _block_rows(row_len: int) -> int:
    return max(1, _BLOCK_BYTES // (4 * max(row_len, 1)))


def _resample_rows(image: np.ndarray, taps: _AxisTaps) -> np.ndarray:
    """Vertical pass: ``uint8 [H, L]`` -> ``uint8 [out, L]`` (``L`` = width * channels)."""
    n_out, row_len = taps.index.shape[0], image.shape[1]
    out = np.empty((n_out, row_len), dtype=np.uint8)
    weights = taps.weight.T[:, :, None]  # [taps, out, 1]
    step = _block_rows(row_len)
    for r0 in range(0, n_out, step):
        r1 = min(r0 + step, n_out)
        index = taps.index[r0:r1]
        out[r0:r1] = _accumulate(
            lambda t: np.take(image, index[:, t], axis=0), weights[:, r0:r1], (r1 - r0, row_len)
        )
    return out


def _resample_columns(image: np.ndarray, in_w: int, out_w: int, channels: int) -> np.ndarray:
    """Horizontal pass: ``uint8 [H, W * C]`` -> ``uint8 [H, out * C]`` (channels interleaved)."""
    index, weights = _interleaved_taps(in_w, out_w, channels)
    n_rows, row_len = image.shape[0], index.shape[1]
    out = np.empty((n_rows, row_len), dtype=np.uint8)
    step = _block_rows(row_len)
    for r0 in range(0, n_rows, step):
        block = image[r0 : r0 + step]
        out[r0 : r0 + step] = _accumulate(
            lambda t: np.take(block, index[t], axis=1), weights, (block.shape[0], row_len)
        )
    return out


def _vertical_first(in_h: int, in_w: int, out_h: int, out_w: int) -> bool:
    """Pass order of Pillow >= 13: vertical first when the height shrinks by more than
    twice as many pixels as the width; horizontal first otherwise (and in older Pillow)."""
    return out_h < in_h and (in_h - out_h) > 2 * (in_w - out_w)


def resize_uint8(
    image: np.ndarray, size: tuple[int, int], *, vertical_first: bool | None = None
) -> np.ndarray:
    """Antialiased bilinear resize matching ``PIL.Image.resize((w, h), BILINEAR)``.

    Args:
        image: ``uint8 [H, W, C]`` (or ``[H, W]``).
        size: output ``(height, width)``; note the order differs from PIL's ``(w, h)``.
        vertical_first: order of the two passes when both axes change. ``None`` follows
            Pillow >= 13 (vertical first only for strong height reductions); ``False`` gives
            the always-horizontal-first order of older Pillow. The two orders differ by at
            most one grey level on a small fraction of the pixels.

    Returns:
        ``uint8 [height, width, C]`` (``[height, width]`` for a 2-D input).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = getattr(image, "dtype", type(image).__name__)
        raise TypeError(f"resize_uint8 expects a uint8 numpy image, got {got}")
    if image.ndim not in (2, 3):
        raise ValueError(f"resize_uint8 expects [H, W] or [H, W, C], got shape {image.shape}")
    out_h, out_w = int(size[0]), int(size[1])
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"output size must be positive, got {(out_h, out_w)}")
    in_h, in_w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if in_h == 0 or in_w == 0 or channels == 0:
        raise ValueError(f"cannot resize an empty image of shape {image.shape}")
    if vertical_first is None:
        vertical_first = _vertical_first(in_h, in_w, out_h, out_w)

    flat = np.ascontiguousarray(image).reshape(in_h, in_w * channels)
    passes = ["v", "h"] if vertical_first else ["h", "v"]
    for which in passes:
        if which == "h" and out_w != in_w:
            flat = _resample_columns(flat, in_w, out_w, channels)
        elif which == "v" and out_h != in_h:
            flat = _resample_rows(flat, _axis_taps(in_h, out_h))
    if out_h == in_h and out_w == in_w:
        flat = flat.copy()
    return flat.reshape((out_h, out_w) + image.shape[2:])


def resize_longest_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resize ``uint8 [H, W, C]`` so that its longest side is ``long_side`` (Pillow bilinear)."""
    new_size = get_preprocess_shape(image.shape[0], image.shape[1], long_side)
    return resize_uint8(image, new_size)


def apply_coords(
    coords: np.ndarray, original_size: tuple[int, int], long_side: int
) -> np.ndarray:
    """Map ``(x, y)`` pixel coordinates ``[..., 2]`` of the original image to the resized frame.

    Computed in float64 (as the reference does), returned as float64; the caller casts.
    """
    old_h, old_w = original_size
    new_h, new_w = get_preprocess_shape(old_h, old_w, long_side)
    out = np.array(coords, dtype=np.float64, copy=True)
    out[..., 0] = out[..., 0] * (new_w / old_w)
    out[..., 1] = out[..., 1] * (new_h / old_h)
    return out


def apply_boxes(boxes: np.ndarray, original_size: tuple[int, int], long_side: int) -> np.ndarray:
    """Map XYXY boxes ``[..., 4]`` of the original image to the resized frame (float64)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    mapped = apply_coords(boxes.reshape(*boxes.shape[:-1], 2, 2), original_size, long_side)
    return mapped.reshape(boxes.shape)


def normalize_and_pad(
    image: np.ndarray, mean: np.ndarray, std: np.ndarray, size: int
) -> np.ndarray:
    """``(image - mean) / std`` then zero padding bottom/right to ``size x size``.

    Args:
        image: resized ``uint8 [h, w, 3]`` RGB image with ``max(h, w) <= size``.
        mean, std: per-channel ``(3,)`` statistics on the 0..255 scale.
        size: side ``S`` of the square model input.

    Returns:
        float32 ``[1, 3, S, S]``, channels first.
    """
    h, w = image.shape[:2]
    if h > size or w > size:
        raise ValueError(f"image of size {(h, w)} does not fit in a {size}x{size} input")
    mean32 = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    std32 = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    out = np.zeros((1, 3, size, size), dtype=np.float32)
    chw = image.transpose(2, 0, 1).astype(np.float32)
    out[0, :, :h, :w] = (chw - mean32) / std32
    return out
