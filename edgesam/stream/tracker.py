"""Following one object across frames by re-prompting with the previous result.

The first frame is prompted with the user's click and/or box. Every later frame is prompted
from the last trusted result: its bounding box (moved by the estimated frame-to-frame motion,
never smaller than the object's remembered size, and widened by a margin, because the object
moves), a click well inside the mask (:func:`edgesam.prompt_geometry.click_inside`), and the
previous low-resolution logits as ``mask_input`` (moved likewise) when the model handles mask
prompts. By default three prompts are decoded per frame -- box + click, the box alone and the
click alone (three multimask outputs) -- and the mask kept is the one that agrees best with the
previous mask moved by the motion (its IoU with that prediction plus the model's predicted IoU):
a model's score alone prefers whatever is most salient, such as an occluder passing in front.
A result is trusted unless its area jumps away from the object's recent area (an occluder cut
it, or it leaked onto the background); then the next frame is prompted from the last trusted
result again, moved by the motion over the frames since. When the mask vanishes the object is
marked lost and re-acquired inside the last trusted box (moved likewise, without the stale logits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgesam.prompt_geometry import click_inside, mask_box

__all__ = ["TrackResult", "Tracker", "interior_point", "mask_box", "translate_logits", "translate_mask"]


def interior_point(mask: np.ndarray) -> np.ndarray | None:
    """``float32 [2]`` (x, y) of :func:`edgesam.prompt_geometry.click_inside`, None if empty.

    Unlike the centroid it always lies on the mask (rings, crescents, L shapes).
    """
    if not mask.any():
        return None
    return np.array(click_inside(mask), dtype=np.float32)


def _shifted(array: np.ndarray, shift: np.ndarray, fill: Any) -> np.ndarray:
    """``array [..., H, W]`` moved by ``shift = (dx, dy)`` cells (rounded); uncovered cells get ``fill``."""
    dx, dy = (int(round(float(v))) for v in shift)
    h, w = array.shape[-2:]
    out = np.full_like(array, fill)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    src = array[..., max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[..., max(0, dy) : max(0, dy) + src.shape[-2], max(0, dx) : max(0, dx) + src.shape[-1]] = src
    return out


def translate_logits(logits: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Move ``float32 [1, m, m]`` mask logits by ``shift = (dx, dy)`` low-res pixels (rounded).

    Uncovered cells get the array's minimum (background).
    """
    if all(int(round(float(v))) == 0 for v in shift):
        return logits
    return _shifted(logits, shift, logits.min())


def translate_mask(mask: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Move a ``bool [H, W]`` mask by ``shift = (dx, dy)`` pixels (rounded); uncovered pixels are False."""
    return _shifted(mask, shift, False)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


@dataclass(frozen=True)
class TrackResult:
    """The tracked object in one frame.

    Attributes:
        mask: ``bool [H, W]`` (all False when lost).
        score: the model's predicted IoU of ``mask``.
        box: inclusive XYXY ``float32 [4]`` of ``mask``; None when lost.
        point: ``float32 [2]`` (x, y) interior point of ``mask``; None when lost.
        lost: no mask was found in this frame.
        low_res_logits: ``float32 [1, 4h, 4w]`` logits behind ``mask`` (fed to the next frame).
        frame_index: the frame's stream index when updated from an ``EncodedFrame``, else None.
    """

    mask: np.ndarray
    score: float
    box: np.ndarray | None
    point: np.ndarray | None
    lost: bool
    low_res_logits: np.ndarray
    frame_index: int | None = None

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))


class Tracker:
    """Follow the object under a click and/or a box through a sequence of frames.

    Args:
        point: ``(x, y)`` click on the object in the first frame (pixels).
        box: ``(x0, y0, x1, y1)`` box around it in the first frame.
        box_margin: the previous box is widened by this fraction of its size on each side
            (room for motion between frames).
        motion: shift the box and click by the object's last displacement per frame, times the
            frames elapsed since (constant-velocity prediction, aware of dropped frames in a
            stream), so fast objects stay inside the prompt box.
        motion_smoothing: weight of the previous velocity estimate against a new one
            measured over one frame (0: use the newest displacement only).
        use_point: add the previous mask's interior point as a foreground click.
        use_mask_input: feed the previous low-resolution logits as ``mask_input`` (SAM's
            iterative-refinement prompt). ``"auto"`` (default) checks it once, on the first
            frame that would use it: the frame is decoded with and without the logits, and they
            are kept only if both masks agree (IoU >= ``mask_input_agreement``). Models never
            trained with mask prompts (the embedded ``edgesam-demo``) fail that check: their
            masks degrade with it even on the same frame. :attr:`mask_input_check` holds the
            measured agreement.
        area_change: a mask whose area is outside ``[1/area_change, area_change]`` times the
            object's recent area is reported but not trusted for the next prompt (occlusion,
            leaks), unless it persists for ``accept_after`` frames.
        min_area: masks with fewer pixels count as lost.
        candidates: also decode the box alone and the click alone (its three multimask
            outputs) besides the box + click prompt, and keep the mask with the highest
            ``score + shape_weight * IoU(mask, previous mask moved by the motion)``. Three decoder
            runs per frame instead of one: small beside a SAM-size encoder, about the encoder's
            time for the tiny embedded ``edgesam-demo``. Needs the click (``use_point``); the
            first frame and re-acquisitions decode one prompt. False: the box + click prompt only.
        shape_weight: weight of the agreement with the motion-predicted previous mask against the
            model's predicted IoU when choosing among the candidates (0: by score alone).
        size_memory: the prompt box is never smaller than the object's remembered box size, an
            average over trusted frames with this weight on the past (0: the newest mask's size
            only). A mask that lost part of the object (a texture edge, a partial occlusion)
            then does not shrink the next prompt, which would lose more of it.

    Call :meth:`update` once per frame with anything that has ``predict`` like
    :class:`~edgesam.predictor.SamPredictor` (with the frame set) or an
    :class:`~edgesam.stream.EncodedFrame`.
    """

    def __init__(
        self,
        *,
        point: Sequence[float] | None = None,
        box: Sequence[float] | None = None,
        box_margin: float = 0.1,
        motion: bool = True,
        motion_smoothing: float = 1.0,
        use_point: bool = True,
        use_mask_input: bool | str = "auto",
        mask_input_agreement: float = 0.9,
        area_change: float = 2.0,
        accept_after: int = 5,
        min_area: int = 1,
        candidates: bool = True,
        shape_weight: float = 1.0,
        size_memory: float = 0.9,
    ) -> None:
        if not box_margin >= 0:
            raise ValueError(f"box_margin must be >= 0, got {box_margin}")
        if not motion_smoothing >= 0:
            raise ValueError(f"motion_smoothing must be >= 0, got {motion_smoothing}")
        if use_mask_input not in (True, False, "auto"):
            raise ValueError(f"use_mask_input must be True, False or 'auto', got {use_mask_input!r}")
        if not area_change > 1:
            raise ValueError(f"area_change must be > 1, got {area_change}")
        if not shape_weight >= 0:
            raise ValueError(f"shape_weight must be >= 0, got {shape_weight}")
        if not 0 <= size_memory < 1:
            raise ValueError(f"size_memory must be in [0, 1), got {size_memory}")
        self.box_margin = float(box_margin)
        self.motion = bool(motion)
        self.motion_smoothing = float(motion_smoothing)
        self.use_point = bool(use_point)
        self.use_mask_input: bool | str = use_mask_input
        self.mask_input_agreement = float(mask_input_agreement)
        self.area_change = float(area_change)
        self.accept_after = int(accept_after)
        self.min_area = int(min_area)
        self.candidates = bool(candidates)
        self.shape_weight = float(shape_weight)
        self.size_memory = float(size_memory)
        #: IoU of the masks decoded with and without ``mask_input`` in the ``"auto"`` check (None before).
        self.mask_input_check: float | None = None
        self.reset(point=point, box=box)

    def reset(self, *, point: Sequence[float] | None = None, box: Sequence[float] | None = None) -> None:
        """Start over from a new click and/or box (e.g. a new detection); settings are kept."""
        if point is None and box is None:
            raise ValueError("Tracker needs a point and/or a box to start from")
        self._point = None if point is None else _vector(point, 2, "point")
        self._box = None if box is None else _vector(box, 4, "box")
        if self._box is not None and (self._box[2] < self._box[0] or self._box[3] < self._box[1]):
            raise ValueError(f"box must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0, got {self._box.tolist()}")
        self.last: TrackResult | None = None
        self._anchor: TrackResult | None = None  # the last trusted result
        self._anchor_time = 0
        self._time = -1  # stream index of the current frame, else a frame counter
        self._area: float | None = None  # the object's recent (trusted) area
        self._untrusted = 0  # consecutive frames whose area jumped
        self._velocity: np.ndarray | None = None  # (dx, dy) per stream frame, once measured
        self._size: np.ndarray | None = None  # remembered (width, height) of the object's box

    def _prompt(self, size: tuple[int, int]) -> dict[str, Any]:
        anchor = self._anchor
        if anchor is None:  # the user's prompt
            coords = None if self._point is None else self._point[None]
            return {
                "point_coords": coords,
                "point_labels": None if coords is None else np.ones(1, np.float32),
                "box": self._box,
                "multimask_output": self._box is None,  # a lone click is ambiguous: best of three
            }
        shift = self._shift()
        box = anchor.box + np.tile(shift, 2)  # type: ignore[operator]
        if self._size is not None:  # never smaller than the remembered size, same centre
            centre, half = (box[:2] + box[2:]) / 2, np.maximum(box[2:] - box[:2], self._size) / 2
            box = np.concatenate([centre - half, centre + half])
        box = self._widen(box, size)
        if self.last is None or self.last.lost:  # re-acquire inside the last trusted box
            return {"box": box, "multimask_output": False}
        prompt: dict[str, Any] = {"box": box, "multimask_output": False}
        if self.use_point and anchor.point is not None:
            h, w = size
            x, y = anchor.point + shift
            prompt["point_coords"] = np.array([[min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)]], np.float32)
            prompt["point_labels"] = np.ones(1, np.float32)
        if self.use_mask_input is not False and anchor is self.last and anchor.mask.shape == size:
            # the low-res grid spans the model's square input: original pixels * m / longest side
            m = anchor.low_res_logits.shape[-1]
            prompt["mask_input"] = translate_logits(anchor.low_res_logits, shift * (m / max(size)))
        return prompt

    def _shift(self) -> np.ndarray:
        """Predicted ``(dx, dy)`` of the object since the last trusted result."""
        if not self.motion or self._velocity is None:
            return np.zeros(2, np.float32)
        return self._velocity * max(self._time - self._anchor_time, 1)

    def _widen(self, box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        h, w = size
        x0, y0, x1, y1 = (float(v) for v in box)
        mx, my = self.box_margin * (x1 - x0 + 1), self.box_margin * (y1 - y0 + 1)
        x0, x1 = min(max(x0 - mx, 0.0), w - 1.0), min(max(x1 + mx, 0.0), w - 1.0)
        y0, y1 = min(max(y0 - my, 0.0), h - 1.0), min(max(y1 + my, 0.0), h - 1.0)
        return np.array([x0, y0, x1, y1], dtype=np.float32)

    def _decode(self, frame: Any, prompt: dict[str, Any]) -> tuple[np.ndarray, float, np.ndarray]:
        masks, scores, low_res = frame.predict(**prompt)
        best = int(np.argmax(scores))
        mask = np.asarray(masks[best], dtype=bool)
        if self.use_mask_input == "auto" and "mask_input" in prompt:
            without = {k: v for k, v in prompt.items() if k != "mask_input"}
            masks2, scores2, low_res2 = frame.predict(**without)
            best2 = int(np.argmax(scores2))
            mask2 = np.asarray(masks2[best2], dtype=bool)
            union = np.count_nonzero(mask | mask2)
            self.mask_input_check = float(np.count_nonzero(mask & mask2) / union) if union else 1.0
            self.use_mask_input = self.mask_input_check >= self.mask_input_agreement
            if not self.use_mask_input:
                return mask2, float(scores2[best2]), np.asarray(low_res2[best2 : best2 + 1], dtype=np.float32)
        return mask, float(scores[best]), np.asarray(low_res[best : best + 1], dtype=np.float32)

    def _choose(self, frame: Any, prompt: dict[str, Any],
                primary: tuple[np.ndarray, float, np.ndarray]) -> tuple[np.ndarray, float, np.ndarray]:
        """The candidate mask agreeing best with the previous one (see ``candidates``)."""
        anchor = self._anchor
        if not self.candidates or anchor is None or "point_coords" not in prompt:
            return primary  # the user's prompt, a re-acquisition (box only) or no click to vary
        if anchor.mask.shape != primary[0].shape:
            return primary  # the frame size changed: nothing to compare with
        found = [primary]
        for alternative in ({"box": prompt["box"], "multimask_output": False},
                            {"point_coords": prompt["point_coords"], "point_labels": prompt["point_labels"],
                             "multimask_output": True}):  # fmt: skip
            masks, scores, low_res = frame.predict(**alternative)
            found += [(np.asarray(masks[i], dtype=bool), float(scores[i]),
                       np.asarray(low_res[i : i + 1], dtype=np.float32)) for i in range(len(scores))]
        predicted = translate_mask(anchor.mask, self._shift())
        values = [score + self.shape_weight * _iou(mask, predicted) for mask, score, _ in found]
        return found[int(np.argmax(values))]  # ties: the box + click prompt

    def update(self, frame: Any) -> TrackResult:
        """Segment the object in ``frame`` (a predictor with the image set, or an encoded frame).

        Returns:
            The :class:`TrackResult` of this frame (also kept as :attr:`last`).
        """
        size = _frame_size(frame)
        index = getattr(frame, "index", None)
        self._time = int(index) if index is not None and int(index) > self._time else self._time + 1
        prompt = self._prompt(size)
        mask, score, logits = self._choose(frame, prompt, self._decode(frame, prompt))
        area = int(np.count_nonzero(mask))
        lost = area < self.min_area
        box = None if lost else mask_box(mask)
        result = TrackResult(mask=mask, score=score, box=box, point=None if lost else interior_point(mask),
                             lost=lost, low_res_logits=logits, frame_index=index)
        self.last = result
        if lost:
            return result
        jumped = self._area is not None and not (1 / self.area_change <= area / self._area <= self.area_change)
        self._untrusted = self._untrusted + 1 if jumped else 0
        if jumped and self._untrusted < self.accept_after and self._anchor is not None:
            return result  # keep prompting from the last trusted result
        anchor = self._anchor
        if anchor is not None and anchor.box is not None and anchor.mask.shape == mask.shape:
            gap = max(self._time - self._anchor_time, 1)
            centre = (box[:2] + box[2:]) / 2  # type: ignore[index]
            moved = centre - (anchor.box[:2] + anchor.box[2:]) / 2
            # smoothed: one frame's mask centre is only accurate to about a low-res pixel
            velocity = moved / gap
            if self._velocity is not None:
                weight = gap / (gap + self.motion_smoothing) if gap + self.motion_smoothing > 0 else 1.0
                velocity = (1 - weight) * self._velocity + weight * velocity
            self._velocity = velocity.astype(np.float32)
        self._area = float(area) if self._area is None or jumped else 0.7 * self._area + 0.3 * area
        extent = box[2:] - box[:2]  # type: ignore[index]
        m = self.size_memory
        self._size = extent if self._size is None or jumped else (m * self._size + (1 - m) * extent).astype(np.float32)
        self._anchor, self._anchor_time = result, self._time
        return result


def _vector(value: Sequence[float], n: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be {n} numbers, got {value!r}") from exc
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be {n} finite numbers, got {value!r}")
    return arr


def _frame_size(frame: Any) -> tuple[int, int]:
    size = getattr(frame, "original_size", None)
    if size is None:
        raise ValueError("the frame has no image: call set_image() on the predictor first")
    return (int(size[0]), int(size[1]))
