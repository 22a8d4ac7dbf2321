"""Request bodies of the HTTP API (pydantic models) and their checks.

Field names are what a client sends; every check failure becomes a 422 whose message names
the field. Coordinates are pixels of the uploaded image, ``(x, y)``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EverythingRequest", "MaskFormat", "MasksRequest", "PromptError", "decode_mask_input"]

MaskFormat = Literal["png", "rle", "polygon"]
MAX_POINTS = 64
MAX_BOXES = 256
_LIMIT = 1e6  # |coordinate| bound: finite and far outside any accepted image

Coord = Annotated[float, Field(allow_inf_nan=False, ge=-_LIMIT, le=_LIMIT)]
Point = Annotated[list[Coord], Field(min_length=2, max_length=2)]
Box = Annotated[list[Coord], Field(min_length=4, max_length=4)]


class PromptError(ValueError):
    """A prompt that parses but cannot be used; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class MasksRequest(BaseModel):
    """``POST /v1/images/{id}/masks``.

    Attributes:
        points: ``[[x, y], ...]`` clicks (at most 64).
        labels: one per point: 1 foreground, 0 background.
        box: one ``[x0, y0, x1, y1]`` box (with ``points``: one prompt of clicks + box).
        boxes: several boxes, decoded in one call: one prompt per box (no ``points``, ``box``
            or ``mask_input`` with it).
        mask_input: base64 of the float32 ``[1, 4h, 4w]`` low-resolution logits returned as
            ``mask_inputs`` by an earlier answer (``return_mask_input``).
        multimask: three candidates (True) or one (False).
        format: ``png`` (base64 PNG, 0/255), ``rle`` (COCO compressed RLE) or ``polygon``.
        return_mask_input: also return each candidate's low-resolution logits (base64 float32).
    """

    model_config = ConfigDict(extra="forbid")

    points: list[Point] | None = Field(default=None, max_length=MAX_POINTS)
    labels: list[Literal[0, 1]] | None = Field(default=None, max_length=MAX_POINTS)
    box: Box | None = None
    boxes: list[Box] | None = Field(default=None, min_length=1, max_length=MAX_BOXES)
    mask_input: str | None = None
    multimask: bool = True
    format: MaskFormat = "rle"
    return_mask_input: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> MasksRequest:
        n_points = 0 if self.points is None else len(self.points)
        n_labels = 0 if self.labels is None else len(self.labels)
        if n_points != n_labels:
            raise ValueError(f"labels: {n_labels} labels for {n_points} points (one label per point)")
        for name, box in (("box", self.box), *((f"boxes[{i}]", b) for i, b in enumerate(self.boxes or ()))):
            if box is not None and (box[2] < box[0] or box[3] < box[1]):
                raise ValueError(f"{name}: x1 < x0 or y1 < y0 in {box} (expected [x0, y0, x1, y1])")
        if self.boxes is not None and (n_points or self.box is not None or self.mask_input is not None):
            raise ValueError("boxes: cannot be combined with points, box or mask_input (send one prompt kind)")
        if not n_points and self.box is None and self.boxes is None and self.mask_input is None:
            raise ValueError("points: no prompt given (send points+labels, box, boxes or mask_input)")
        return self


class EverythingRequest(BaseModel):
    """``POST /v1/images/{id}/everything``: the options of ``SamAutomaticMaskGenerator``."""

    model_config = ConfigDict(extra="forbid")

    points_per_side: int = Field(default=32, ge=1, le=64)
    points_per_batch: int = Field(default=64, ge=1, le=256)
    #: None: the model's default (SAM's 0.88 / 0.95; edgesam-demo's own 0.6 / 0.8).
    pred_iou_thresh: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    stability_score_thresh: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    stability_score_offset: float = Field(default=1.0, ge=0.0, le=100.0, allow_inf_nan=False)
    box_nms_thresh: float = Field(default=0.7, ge=0.0, le=1.0, allow_inf_nan=False)
    crop_n_layers: int = Field(default=0, ge=0, le=2)
    min_mask_region_area: int = Field(default=0, ge=0, le=1_000_000)
    coarse_to_fine: bool = False


def decode_mask_input(text: str, mask_shape: tuple[int, int]) -> np.ndarray:
    """``mask_input`` (base64 float32) -> float32 ``[1, 4h, 4w]``; PromptError names the field."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PromptError("mask_input", "not valid base64") from None
    expected = 4 * mask_shape[0] * mask_shape[1]
    if len(raw) != expected:
        raise PromptError(
            "mask_input",
            f"{len(raw)} bytes, expected {expected} (float32 [1, {mask_shape[0]}, {mask_shape[1]}])",
        )
    array = np.frombuffer(raw, dtype="<f4").reshape(1, *mask_shape).astype(np.float32)
    if not np.isfinite(array).all():
        raise PromptError("mask_input", "holds NaN or infinite values")
    return array
