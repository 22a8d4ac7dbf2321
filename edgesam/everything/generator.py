"""Automatic ("segment everything") mask generation over a grid of point prompts.

Same pipeline and outputs as segment_anything's ``SamAutomaticMaskGenerator``: prompt the
model with every point of a grid (per crop layer), keep the multimask outputs whose predicted
IoU and stability score pass their thresholds and that do not touch an inner crop edge, remove
duplicates with box NMS (per crop, then across crops preferring smaller crops), optionally
clean small holes/islands, and return one record per mask.

What differs is where the work is done. The decoder is driven directly (one ``Backend.decode``
per batch of ``points_per_batch`` prompts) and its ``[S/4, S/4]`` logits are upscaled only for
masks that passed the predicted-IoU filter, and only inside the rectangle where the logits can
exceed the lowest threshold in use (:class:`~edgesam.everything.upscale.MaskUpscaler`), so
stability scores, boxes and masks equal those computed on full-resolution logits without
materialising them. Masks are kept as run-length encodings from then on.

``coarse_to_fine=True`` adds an optional speed-up that changes results (see the class doc).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from edgesam.everything.boxes import (
    batch_iterator,
    box_area,
    build_all_layer_point_grids,
    generate_crop_boxes,
    is_box_near_crop_edge,
    nms,
    uncrop_boxes_xyxy,
    uncrop_points,
)
from edgesam.everything.filter_stats import FilterStats
from edgesam.everything.lowmem import STRIP_PIXELS, measure_in_strips
from edgesam.everything.masks import stability_from_counts
from edgesam.everything.maskset import MaskSet, postprocess_small_regions
from edgesam.everything.rle import coco_encode_rle, rle_to_mask, roi_to_rle
from edgesam.everything.thresholds import default_thresholds
from edgesam.everything.upscale import MaskUpscaler
from edgesam.predictor.postprocess import select_masks
from edgesam.predictor.prompts import pack_prompts

__all__ = ["OutputMode", "SamAutomaticMaskGenerator", "coarse_subset"]

OutputMode = Literal["binary_mask", "uncompressed_rle", "coco_rle"]
_OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


def coarse_subset(n_points: int, stride: int = 2) -> np.ndarray:
    """``bool [n_points]``: the sparse pass of a coarse-to-fine grid.

    For a square row-major grid (``n_points = k * k``, as :func:`build_point_grid` makes) this is
    every ``stride``-th row and column; otherwise every ``stride**2``-th point.
    """
    k = math.isqrt(n_points)
    index = np.arange(n_points)
    if k * k == n_points:
        return ((index // k) % stride == 0) & ((index % k) % stride == 0)
    return index % (stride * stride) == 0


#: One measured candidate: stability score, box ``int64 [4]`` (XYXY inclusive, crop frame) and a
#: callable returning its RLE in the image frame.
_Measured = tuple[np.float32, np.ndarray, Callable[[], dict[str, Any]]]


class SamAutomaticMaskGenerator:
    """Generate masks for everything in an image with a (Edge)SAM model.

    Args:
        predictor_or_model: an :class:`edgesam.predictor.SamPredictor`, a runtime ``Backend``,
            or a torch ``Sam`` model (the last two are wrapped in a ``SamPredictor``).
        points_per_side: grid points along each side of the image (``points_per_side**2`` per
            crop layer 0); ``None`` when ``point_grids`` is given.
        points_per_batch: prompts decoded per decoder call.
        pred_iou_thresh: keep masks whose predicted IoU is ``> pred_iou_thresh``. None (default):
            the model's default (:func:`edgesam.everything.thresholds.default_thresholds`: SAM's
            0.88, except for models whose IoU head is calibrated lower, such as ``edgesam-demo``).
        stability_score_thresh: keep masks whose stability score is ``>= this``. None (default):
            the model's default, as for ``pred_iou_thresh`` (SAM's 0.95).
        stability_score_offset: logit offset of the stability score.
        box_nms_thresh: box IoU above which duplicates are removed within a crop.
        crop_n_layers: extra layers of crops (layer ``i`` tiles the image ``2**i x 2**i``).
        crop_nms_thresh: box IoU for removing duplicates across crops.
        crop_overlap_ratio: crop overlap in layer 1 as a fraction of the short image side.
        crop_n_points_downscale_factor: layer ``i`` uses ``points_per_side / factor**i`` points.
        point_grids: explicit normalised ``[n, 2]`` (x, y) grids in ``[0, 1]``, one per layer.
        min_mask_region_area: when > 0, fill holes and remove islands smaller than this.
        output_mode: ``"binary_mask"`` (``bool [H, W]``), ``"uncompressed_rle"`` or
            ``"coco_rle"`` (``pycocotools``-compatible string counts; no extra dependency).
        coarse_to_fine: first decode a sparse subset of each grid (every ``coarse_stride``-th
            row and column), then decode only the remaining points that no kept mask (after the
            IoU, stability and crop-edge filters) already covers. On scenes dominated by large
            objects this skips most decoder calls (up to ``1 - 1/stride**2`` of them); the price
            is that masks only reachable from a covered point are lost, typically parts of or
            objects nested inside an already-found mask, and alternative granularities of it.
            With ``False`` (default) results follow segment_anything exactly.
        coarse_stride: the sparse pass's stride for ``coarse_to_fine``.
    """

    #: Crops larger than this many pixels upscale each candidate in column strips
    #: (:mod:`edgesam.everything.lowmem`): same results, a working set bounded per mask.
    low_memory_pixels: int = 1 << 22
    #: Output pixels upscaled at once per strip on those crops.
    strip_pixels: int = STRIP_PIXELS
    #: Called as ``progress(prompts_decoded, prompts_total)`` after every decoder batch.
    progress: Callable[[int, int], None] | None = None

    def __init__(
        self,
        predictor_or_model: Any,
        *,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float | None = None,
        stability_score_thresh: float | None = None,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: OutputMode = "binary_mask",
        coarse_to_fine: bool = False,
        coarse_stride: int = 2,
    ) -> None:
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("exactly one of points_per_side and point_grids must be given")
        if crop_n_layers < 0:
            raise ValueError(f"crop_n_layers must be >= 0, got {crop_n_layers}")
        if points_per_side is not None:
            if points_per_side < 1:
                raise ValueError(f"points_per_side must be >= 1, got {points_per_side}")
            grids = build_all_layer_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        else:
            grids = [np.asarray(g, dtype=np.float64) for g in point_grids or []]
            if len(grids) < crop_n_layers + 1:
                raise ValueError(f"point_grids has {len(grids)} grids, {crop_n_layers + 1} crop layers need one each")
            for g in grids:
                if g.ndim != 2 or g.shape[1] != 2:
                    raise ValueError(f"each point grid must have shape [n, 2], got {g.shape}")
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {_OUTPUT_MODES}, got {output_mode!r}")
        if points_per_batch < 1:
            raise ValueError(f"points_per_batch must be >= 1, got {points_per_batch}")
        if coarse_stride < 2:
            raise ValueError(f"coarse_stride must be >= 2, got {coarse_stride}")
        self.predictor = self._as_predictor(predictor_or_model)
        self.point_grids = grids
        self.points_per_batch = int(points_per_batch)
        defaults = default_thresholds(self.predictor.backend)
        self.pred_iou_thresh = float(defaults.pred_iou_thresh if pred_iou_thresh is None else pred_iou_thresh)
        self.stability_score_thresh = float(
            defaults.stability_score_thresh if stability_score_thresh is None else stability_score_thresh)
        #: Where the thresholds come from: the model's defaults' source, or "given" when both were passed.
        self.thresholds_source = (
            "given" if pred_iou_thresh is not None and stability_score_thresh is not None else defaults.source)
        self.stability_score_offset = float(stability_score_offset)
        self.box_nms_thresh = float(box_nms_thresh)
        self.crop_n_layers = int(crop_n_layers)
        self.crop_nms_thresh = float(crop_nms_thresh)
        self.crop_overlap_ratio = float(crop_overlap_ratio)
        self.crop_n_points_downscale_factor = int(crop_n_points_downscale_factor)
        self.min_mask_region_area = int(min_mask_region_area)
        self.output_mode: OutputMode = output_mode
        self.coarse_to_fine = bool(coarse_to_fine)
        self.coarse_stride = int(coarse_stride)

    def thresholds(self) -> dict[str, Any]:
        """``{"pred_iou_thresh", "stability_score_thresh", "source"}``: the filters in use and where
        they come from (for JSON outputs)."""
        return {"pred_iou_thresh": self.pred_iou_thresh, "stability_score_thresh": self.stability_score_thresh,
                "source": self.thresholds_source}

    @staticmethod
    def _as_predictor(obj: Any) -> Any:
        if hasattr(obj, "set_image") and hasattr(obj, "backend"):
            return obj
        from edgesam.predictor import SamPredictor

        return SamPredictor(obj)

    @property
    def mask_threshold(self) -> float:
        return float(self.predictor.backend.mask_threshold)

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Masks of everything in ``image``.

        Args:
            image: ``uint8 [H, W, 3]`` RGB.

        Returns:
            One dict per mask with ``segmentation`` (``bool [H, W]`` or an RLE dict, by
            ``output_mode``), ``area`` (int pixels), ``bbox`` (XYWH ints; ``w = x1 - x0`` of the
            inclusive box), ``predicted_iou``, ``point_coords`` (``[[x, y]]``),
            ``stability_score`` and ``crop_box`` (XYWH).
        """
        masks = self.generate_mask_set(image)
        if self.output_mode == "coco_rle":
            segs: list[Any] = [coco_encode_rle(r) for r in masks.rles]
        elif self.output_mode == "binary_mask":
            segs = [rle_to_mask(r) for r in masks.rles]
        else:
            segs = [{"size": r["size"], "counts": [int(c) for c in r["counts"]]} for r in masks.rles]
        return masks.records(segs)

    def generate_mask_set(self, image: np.ndarray) -> MaskSet:
        """The masks of :meth:`generate` as a :class:`MaskSet` (RLEs, boxes and scores)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be [H, W, 3], got shape {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image is empty: shape {image.shape}")
        orig_size = (int(image.shape[0]), int(image.shape[1]))
        #: what the last call decoded and kept per filter (``last_stats.explain()`` says why a result is empty)
        self.last_stats = FilterStats(self.pred_iou_thresh, self.stability_score_thresh)
        crop_boxes, layer_idxs = generate_crop_boxes(orig_size, self.crop_n_layers, self.crop_overlap_ratio)
        self._prompts_done, self._prompts_total = 0, sum(len(self.point_grids[layer]) for layer in layer_idxs)
        per_crop = [self._process_crop(image, box, layer, orig_size) for box, layer in zip(crop_boxes, layer_idxs)]
        data = MaskSet.concat(per_crop)
        if len(crop_boxes) > 1 and len(data):
            # Prefer masks from smaller crops.
            scores = np.float32(1.0) / box_area(data.crop_boxes).astype(np.float32)
            data = data.take(nms(data.boxes.astype(np.float32), scores, self.crop_nms_thresh))
        if self.min_mask_region_area > 0:
            data = postprocess_small_regions(
                data, self.min_mask_region_area, max(self.box_nms_thresh, self.crop_nms_thresh)
            )
        self.last_stats.returned = len(data)
        return data

    def _process_crop(self, image: np.ndarray, crop_box: list[int], layer: int, orig_size: tuple[int, int]) -> MaskSet:
        x0, y0, x1, y1 = crop_box
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        crop_size = (int(crop.shape[0]), int(crop.shape[1]))
        self.predictor.set_image(crop)
        embedding = np.asarray(self.predictor.get_image_embedding(), dtype=np.float32)
        mask_size = (4 * int(embedding.shape[-2]), 4 * int(embedding.shape[-1]))
        upscaler = MaskUpscaler(
            low_res_size=mask_size,
            image_size=int(self.predictor.backend.image_size),
            input_size=tuple(self.predictor.input_size),
            original_size=crop_size,
        )
        points = self.point_grids[layer] * np.array(crop_size, dtype=np.float64)[None, ::-1]
        ctx = _CropContext(embedding, mask_size, upscaler, crop_box, crop_size, orig_size)

        if self.coarse_to_fine:
            ctx.coverage = np.zeros(crop_size, dtype=bool)
            sparse = coarse_subset(len(points), self.coarse_stride)
            first = self._process_points(points[sparse], ctx)
            rest = points[~sparse]
            if rest.size:
                cols = np.clip(rest[:, 0].astype(np.int64), 0, crop_size[1] - 1)
                rows = np.clip(rest[:, 1].astype(np.int64), 0, crop_size[0] - 1)
                rest = rest[~ctx.coverage[rows, cols]]
            ctx.coverage = None
            data = MaskSet.concat([first, self._process_points(rest, ctx)])
        else:
            data = self._process_points(points, ctx)
        self.predictor.reset_image()

        if len(data):
            data = data.take(nms(data.boxes.astype(np.float32), data.iou_preds, self.box_nms_thresh))
        data.boxes = uncrop_boxes_xyxy(data.boxes, crop_box).astype(np.int64)
        data.points = uncrop_points(data.points, crop_box).astype(np.float64)
        data.crop_boxes = np.tile(np.asarray(crop_box, dtype=np.int64), (len(data), 1))
        return data

    def _process_points(self, points: np.ndarray, ctx: _CropContext) -> MaskSet:
        parts = []
        in_strips = ctx.coverage is None and ctx.crop_size[0] * ctx.crop_size[1] > self.low_memory_pixels
        for (batch,) in batch_iterator(self.points_per_batch, points):
            parts.append(self._process_batch(batch, ctx, in_strips=in_strips))
            self._report_progress(len(batch))
        return MaskSet.concat(parts)

    def _report_progress(self, n: int) -> None:
        self._prompts_done = getattr(self, "_prompts_done", 0) + n
        if self.progress is not None:
            total = getattr(self, "_prompts_total", self._prompts_done)
            self.progress(min(self._prompts_done, total), total)

    def _decode(self, points: np.ndarray, ctx: _CropContext) -> tuple[np.ndarray, np.ndarray]:
        """Multimask outputs for single-point prompts: iou ``[B, 3]``, logits ``[B, 3, h, w]``."""
        n = points.shape[0]
        inputs = pack_prompts(
            points[:, None, :],
            np.ones((n, 1), dtype=np.float32),
            original_size=ctx.crop_size,
            image_size=int(self.predictor.backend.image_size),
            mask_size=ctx.mask_size,
            batched=True,
        )
        iou, low_res = self.predictor.backend.decode(
            ctx.embedding, inputs.point_coords, inputs.point_labels, inputs.mask_input, inputs.has_mask_input
        )
        return select_masks(np.asarray(iou, np.float32), np.asarray(low_res, np.float32), multimask_output=True)

    def _stable(self, score: np.float32) -> bool:
        """Whether a stability score passes the filter (recorded in :attr:`last_stats`)."""
        passed = not self.stability_score_thresh > 0.0 or bool(score >= self.stability_score_thresh)
        self.last_stats.add_stability(float(score), passed)
        return passed  # (a nan score, from an empty mask, fails)

    def _measure_at_once(self, low_res: np.ndarray, ctx: _CropContext) -> _Measured | None:
        """Stability, box and RLE of one output, upscaled at once on the block outside which
        every upscaled logit is at or below all three thresholds (``t``, ``t +- offset``).
        None when the stability filter rejects it; the RLE (and the coverage) is made on demand."""
        t, off = self.mask_threshold, self.stability_score_offset
        roi = ctx.upscaler.upscale_roi(low_res, min(t - off, t + off, t))
        score = stability_from_counts(np.count_nonzero(roi.logits > t + off), np.count_nonzero(roi.logits > t - off))
        if not self._stable(score):
            return None
        binary = roi.logits > t
        rows, cols = np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))
        corners = [roi.x0 + cols[0], roi.y0 + rows[0], roi.x0 + cols[-1], roi.y0 + rows[-1]] if rows.size else [0] * 4
        x0, y0 = ctx.crop_box[0] + roi.x0, ctx.crop_box[1] + roi.y0

        def rle() -> dict[str, Any]:
            if ctx.coverage is not None:
                ctx.coverage[roi.y0 : roi.y0 + binary.shape[0], roi.x0 : roi.x0 + binary.shape[1]] |= binary
            return roi_to_rle(binary, (x0, y0), ctx.orig_size)

        return score, np.asarray(corners, dtype=np.int64), rle

    def _measure_in_strips(self, low_res: np.ndarray, ctx: _CropContext) -> _Measured | None:
        """:meth:`_measure_at_once` for crops too large to upscale a mask at once (same values,
        :func:`edgesam.everything.lowmem.measure_in_strips`)."""
        score, box, rle = measure_in_strips(
            low_res, ctx.upscaler, threshold=self.mask_threshold, offset=self.stability_score_offset,
            stability_thresh=0.0, origin=(int(ctx.crop_box[0]), int(ctx.crop_box[1])),
            image_size=ctx.orig_size, max_pixels=int(self.strip_pixels),
        )  # fmt: skip
        return (score, box, lambda: rle) if self._stable(score) else None

    def _process_batch(self, points: np.ndarray, ctx: _CropContext, *, in_strips: bool = False) -> MaskSet:
        iou, low_res = self._decode(points, ctx)
        n_out = iou.shape[1]
        iou = iou.reshape(-1)  # flat index i = prompt * n_out + token
        point_of = np.repeat(points, n_out, axis=0)
        keep = np.flatnonzero(iou > self.pred_iou_thresh) if self.pred_iou_thresh > 0.0 else np.arange(iou.size)
        self.last_stats.add_decoded(iou, len(keep))

        measure = self._measure_in_strips if in_strips else self._measure_at_once
        found = [(i, m) for i in keep.tolist() if (m := measure(low_res[i // n_out, i % n_out], ctx)) is not None]
        if not found:
            return MaskSet()
        boxes = np.stack([m[1] for _, m in found])
        not_edge = ~is_box_near_crop_edge(boxes, ctx.crop_box, [0, 0, ctx.orig_size[1], ctx.orig_size[0]])
        sel = np.flatnonzero(not_edge).tolist()
        idx = np.asarray([found[j][0] for j in sel], dtype=np.int64)
        return MaskSet(
            rles=[found[j][1][2]() for j in sel],
            boxes=boxes[sel],
            iou_preds=iou[idx],
            points=point_of[idx],
            stability=np.asarray([found[j][1][0] for j in sel], dtype=np.float32),
            crop_boxes=np.zeros((len(sel), 4), dtype=np.int64),
        )


class _CropContext:
    """Per-crop state shared by the batches of one crop."""

    def __init__(
        self,
        embedding: np.ndarray,
        mask_size: tuple[int, int],
        upscaler: MaskUpscaler,
        crop_box: list[int],
        crop_size: tuple[int, int],
        orig_size: tuple[int, int],
    ) -> None:
        self.embedding = embedding
        self.mask_size = mask_size
        self.upscaler = upscaler
        self.crop_box = crop_box
        self.crop_size = crop_size
        self.orig_size = orig_size
        self.coverage: np.ndarray | None = None
