"""Validation of user prompts and packing into the decoder's inputs.

The decoder takes every prompt as labelled points (the formulation of SAM's ONNX export):

* clicks keep their label (1 foreground, 0 background),
* a box becomes its two corners labelled 2 (top-left) and 3 (bottom-right),
* clicks without a box get one padding point ``(0, 0)`` labelled -1,
* with neither clicks nor a box there are no points at all (``N = 0``),

which is exactly what the official torch predictor feeds its prompt encoder, so results match.
Coordinates are mapped from the original image to the resized ``S x S`` input frame here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesam.predictor.transforms import apply_boxes, apply_coords

__all__ = ["DecoderInputs", "pack_prompts"]

PAD_LABEL = -1.0
BOX_TOP_LEFT_LABEL = 2.0
BOX_BOTTOM_RIGHT_LABEL = 3.0


@dataclass(frozen=True)
class DecoderInputs:
    """Prompts of ``B`` queries in the layout of :meth:`Backend.decode`.

    Attributes:
        point_coords: float32 ``[B, N, 2]``, ``(x, y)`` in the resized input frame.
        point_labels: float32 ``[B, N]`` in {-1, 0, 1, 2, 3}.
        mask_input: float32 ``[B, 1, 4h, 4w]`` (zeros where unused).
        has_mask_input: float32 ``[B]``.
    """

    point_coords: np.ndarray
    point_labels: np.ndarray
    mask_input: np.ndarray
    has_mask_input: np.ndarray

    @property
    def batch_size(self) -> int:
        return int(self.point_coords.shape[0])


def _numeric(value: Any, name: str, *, allow_bool: bool = False) -> np.ndarray:
    """``value`` as a real-valued numpy array, or TypeError."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}: {exc}") from None
    kinds = "iuf" + ("b" if allow_bool else "")
    if array.dtype.kind not in kinds:
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def _finite(array: np.ndarray, name: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _check_points(
    point_coords: Any, point_labels: Any, *, batched: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """Validated ``(coords float64 [B, N, 2], labels float32 [B, N])`` or None."""
    if point_coords is None and point_labels is None:
        return None
    if point_coords is None:
        raise ValueError("point_labels were given without point_coords")
    if point_labels is None:
        raise ValueError("point_labels must be supplied if point_coords is supplied")
    coords = _numeric(point_coords, "point_coords")
    labels = _numeric(point_labels, "point_labels", allow_bool=True)
    want_coords, want_labels = ("[B, N, 2]", "[B, N]") if batched else ("[N, 2]", "[N]")
    if coords.ndim != (3 if batched else 2) or coords.shape[-1] != 2:
        raise ValueError(f"point_coords must have shape {want_coords}, got {coords.shape}")
    if labels.ndim != coords.ndim - 1:
        raise ValueError(f"point_labels must have shape {want_labels}, got {labels.shape}")
    if labels.shape != coords.shape[:-1]:
        raise ValueError(
            f"point_labels shape {labels.shape} does not match point_coords shape {coords.shape}: "
            "one label per point is needed"
        )
    _finite(coords, "point_coords")
    labels = labels.astype(np.float32)
    if not np.isin(labels, (0.0, 1.0)).all():
        bad = np.unique(labels[~np.isin(labels, (0.0, 1.0))])[:5]
        raise ValueError(f"point_labels must be 0 (background) or 1 (foreground), got {bad.tolist()}")
    if not batched:
        coords, labels = coords[None], labels[None]
    return coords.astype(np.float64), labels


def _check_boxes(boxes: Any, *, batched: bool) -> np.ndarray | None:
    """Validated XYXY boxes ``float64 [B, 4]`` or None."""
    if boxes is None:
        return None
    name = "boxes" if batched else "box"
    array = _numeric(boxes, name)
    if batched:
        if array.ndim != 2 or array.shape[1] != 4:
            raise ValueError(f"boxes must have shape [B, 4] (x0, y0, x1, y1), got {array.shape}")
    else:
        if array.shape not in ((4,), (1, 4)):
            raise ValueError(f"box must have shape [4] (x0, y0, x1, y1), got {array.shape}")
        array = array.reshape(1, 4)
    _finite(array, name)
    array = array.astype(np.float64)
    flipped = (array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1])
    if flipped.any():
        first = array[np.argmax(flipped)].tolist()
        raise ValueError(f"{name} must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0, got {first}")
    return array


def _check_inside(
    points: tuple[np.ndarray, np.ndarray] | None,
    boxes: np.ndarray | None,
    original_size: tuple[int, int],
    *,
    batched: bool,
) -> np.ndarray | None:
    """Refuse clicks outside the image; clip boxes that reach outside it (with a warning).

    Coordinates are continuous pixel positions: the image spans ``[0, W] x [0, H]``, borders
    included. Returns the (possibly clipped) boxes.
    """
    height, width = original_size
    size = f"{width}x{height} (width x height)"
    if points is not None:
        xy = points[0].reshape(-1, 2)
        outside = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
        if outside.any():
            x, y = xy[int(np.argmax(outside))].tolist()
            raise ValueError(
                f"point ({x:g}, {y:g}) is outside the {size} image: "
                f"x must be in 0..{width} and y in 0..{height}"
            )
    if boxes is None:
        return None
    name = "boxes" if batched else "box"
    limits = np.array([width, height, width, height], dtype=np.float64)
    clipped = np.clip(boxes, 0.0, limits)
    away = (boxes[:, 0] > width) | (boxes[:, 1] > height) | (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if away.any():
        first = boxes[int(np.argmax(away))].tolist()
        raise ValueError(f"{name} {[round(v, 2) for v in first]} lies entirely outside the {size} image")
    changed = (clipped != boxes).any(axis=1)
    if changed.any():
        i, count = int(np.argmax(changed)), int(changed.sum())
        what = "1 box reaches" if count == 1 else f"{count} boxes reach"
        warnings.warn(
            f"{what} outside the {size} image and {'was' if count == 1 else 'were'} clipped to it, "
            f"e.g. {[round(v, 2) for v in boxes[i].tolist()]} -> {[round(v, 2) for v in clipped[i].tolist()]}",
            UserWarning,
            stacklevel=5,  # the caller of SamPredictor.predict/predict_batch
        )
    return clipped


def _check_mask_input(
    mask_input: Any, mask_size: tuple[int, int], *, batched: bool
) -> np.ndarray | None:
    """Validated low-resolution mask logits ``float32 [B, 1, 4h, 4w]`` or None."""
    if mask_input is None:
        return None
    array = _numeric(mask_input, "mask_input", allow_bool=True)
    mh, mw = mask_size
    if batched:
        ok = array.ndim == 4 and array.shape[1:] == (1, mh, mw)
        want = f"[B, 1, {mh}, {mw}]"
    else:
        ok = array.shape in ((1, mh, mw), (mh, mw))
        want = f"[1, {mh}, {mw}]"
    if not ok:
        raise ValueError(
            f"mask_input must have shape {want} (low-resolution logits of an earlier prediction), "
            f"got {array.shape}"
        )
    _finite(array, "mask_input")
    return array.astype(np.float32).reshape(-1, 1, mh, mw)


def pack_prompts(
    point_coords: Any = None,
    point_labels: Any = None,
    boxes: Any = None,
    mask_input: Any = None,
    *,
    original_size: tuple[int, int],
    image_size: int,
    mask_size: tuple[int, int],
    batched: bool,
    check_bounds: bool = False,
) -> DecoderInputs:
    """Validate prompts given in original-image pixels and pack them for the decoder.

    Args:
        point_coords: ``(x, y)`` clicks, ``[N, 2]`` (``[B, N, 2]`` when ``batched``), or None.
        point_labels: ``[N]`` (``[B, N]``) labels in {0, 1}; required with ``point_coords``.
        boxes: XYXY box ``[4]`` (``[B, 4]``) or None.
        mask_input: ``[1, 4h, 4w]`` (``[B, 1, 4h, 4w]``) logits or None.
        original_size: ``(H, W)`` of the image the coordinates refer to.
        image_size: side ``S`` of the model input.
        mask_size: ``(4h, 4w)``, the low-resolution mask size of the model.
        batched: whether the inputs carry a leading batch axis.
        check_bounds: refuse clicks outside ``[0, W] x [0, H]`` of ``original_size`` and clip
            boxes reaching outside it with a warning (the public predictor's behaviour; callers
            that generate their own in-image prompts leave it off).

    With no prompt at all (or only ``mask_input``) the decoder gets ``N = 0`` points: no sparse
    prompt token, as in the official prompt encoder; one query per batch entry is decoded.

    Raises:
        TypeError: non-numeric inputs.
        ValueError: wrong shapes, NaN/inf, labels outside {0, 1}, points without labels (or
            the reverse), inverted boxes, batch sizes that disagree; with ``check_bounds``,
            clicks outside the image and boxes lying entirely outside it.
    """
    points = _check_points(point_coords, point_labels, batched=batched)
    box_array = _check_boxes(boxes, batched=batched)
    if check_bounds:
        box_array = _check_inside(points, box_array, original_size, batched=batched)
    masks = _check_mask_input(mask_input, mask_size, batched=batched)

    sizes = {
        name: int(arr.shape[0])
        for name, arr in (
            ("point_coords", None if points is None else points[0]),
            ("boxes", box_array),
            ("mask_input", masks),
        )
        if arr is not None
    }
    if len(set(sizes.values())) > 1:
        raise ValueError(f"prompt batch sizes disagree: {sizes}")
    batch = next(iter(sizes.values()), 1)

    parts_xy: list[np.ndarray] = []
    parts_label: list[np.ndarray] = []
    if points is not None:
        parts_xy.append(apply_coords(points[0], original_size, image_size))
        parts_label.append(points[1])
    if box_array is not None:
        corners = apply_boxes(box_array, original_size, image_size).reshape(batch, 2, 2)
        parts_xy.append(corners)
        parts_label.append(
            np.broadcast_to(np.array([BOX_TOP_LEFT_LABEL, BOX_BOTTOM_RIGHT_LABEL], np.float32), (batch, 2))
        )
    elif points is not None:
        # Clicks without a box get one padding point, exactly as the official prompt encoder
        # does; with neither clicks nor a box the decoder sees no sparse token at all (N = 0).
        parts_xy.append(np.zeros((batch, 1, 2), dtype=np.float64))
        parts_label.append(np.full((batch, 1), PAD_LABEL, dtype=np.float32))
    if not parts_xy:
        parts_xy.append(np.zeros((batch, 0, 2), dtype=np.float64))
        parts_label.append(np.zeros((batch, 0), dtype=np.float32))

    if masks is None:
        masks = np.zeros((batch, 1, *mask_size), dtype=np.float32)
        has_mask = np.zeros((batch,), dtype=np.float32)
    else:
        has_mask = np.ones((batch,), dtype=np.float32)

    with np.errstate(over="ignore"):
        coords32 = np.ascontiguousarray(np.concatenate(parts_xy, axis=1), dtype=np.float32)
        masks32 = np.ascontiguousarray(masks, dtype=np.float32)
    if not np.isfinite(coords32).all():
        raise ValueError("point/box coordinates are too large: they overflow float32 in the model's frame")
    if not np.isfinite(masks32).all():
        raise ValueError("mask_input values are too large: they overflow float32")
    return DecoderInputs(
        point_coords=coords32,
        point_labels=np.ascontiguousarray(np.concatenate(parts_label, axis=1), dtype=np.float32),
        mask_input=masks32,
        has_mask_input=has_mask,
    )
