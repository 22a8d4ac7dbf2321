"""Is it still right? One report and one comparison for every fidelity check in edgesam.

Export verification (ONNX vs torch), the golden check (a backend vs the torch outputs stored
in a bundle), the quantization gate (INT8 vs fp32), the benchmark's fidelity columns and
``edgesam deploy`` all measure the same things the same way:

* the image embedding: cosine similarity and relative error
  ``max|e - e_ref| / max(1, max|e_ref|)``;
* the masks: IoU of the thresholded masks, summarised as mean, minimum and 5th percentile,
  overall and per prompt kind (``"point"``, ``"points"``, ``"box"``, ``"box+point"``, ...);
* the predicted scores: mean and largest absolute difference.

:class:`FidelityMeter` accumulates pairs of outputs and returns a :class:`FidelityReport`;
:func:`compare_predictors` runs two predictors on the same images and generated prompts.
The thresholds every check uses are defined here, in one place. numpy only (clicks come from
:func:`edgesam.prompt_geometry.click_inside`, re-exported here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from edgesam.prompt_geometry import click_inside, sample_prompts

__all__ = [
    "EXPORT_MASK_IOU",
    "EXPORT_REL_ERROR",
    "GATE_MIN_IOU",
    "GOLDEN_MASK_IOU",
    "FidelityMeter",
    "FidelityReport",
    "click_inside",
    "compare_predictors",
    "embedding_cosine",
    "mask_iou",
    "relative_error",
]

# ------------------------------------------------------------------ thresholds (the only copy)
#: Export verification: bound on the relative error of every ONNX output vs torch.
EXPORT_REL_ERROR = 1e-3
#: Export verification: bound on the mean IoU of thresholded masks, ONNX vs torch.
EXPORT_MASK_IOU = 0.99
#: Quantization gate and ``edgesam deploy``: default bound on the mean full-resolution mask IoU
#: of a reduced-precision model vs fp32 on held-out images.
GATE_MIN_IOU = 0.97
#: Golden check at load: bound on the mean low-resolution mask IoU vs the bundle's torch
#: reference, per precision the backend runs at.
GOLDEN_MASK_IOU: Mapping[str, float] = {"fp32": 0.99, "bf16": 0.95, "fp16": 0.95, "int8": 0.90}


# ------------------------------------------------------------------ elementary measures
def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boolean masks ``[..., H, W]``, pairwise over the leading axes -> float64 ``[...]``.

    Two empty masks count as identical (1.0). The shapes must be equal.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    inter = np.logical_and(a, b).sum(axis=(-2, -1), dtype=np.int64)
    union = np.logical_or(a, b).sum(axis=(-2, -1), dtype=np.int64)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def embedding_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings flattened to vectors (1.0 for two zero vectors)."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"embedding shapes differ: {np.shape(a)} vs {np.shape(b)}")
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 and ny == 0:
        return 1.0
    if nx == 0 or ny == 0:
        return 0.0
    return float(np.dot(x, y) / (nx * ny))


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """``max|actual - reference| / max(1, max|reference|)``; inf on a shape mismatch."""
    actual, reference = np.asarray(actual), np.asarray(reference)
    if actual.shape != reference.shape:
        return float("inf")
    if reference.size == 0:
        return 0.0
    scale = max(1.0, float(np.abs(reference).max()))
    return float(np.abs(actual.astype(np.float64) - reference).max() / scale)


# ------------------------------------------------------------------ the report
@dataclass(frozen=True)
class FidelityReport:
    """Agreement of a candidate model with a reference.

    Attributes:
        images: images compared.
        prompts: prompts decoded per model.
        masks: masks compared (a prompt gives 1 to 4 masks).
        embedding_cosine_mean, embedding_cosine_min: cosine of the ``[1, C, h, w]`` embeddings.
        embedding_rel_error: largest ``max|e - e_ref| / max(1, max|e_ref|)`` over the images.
        mask_iou_mean, mask_iou_min, mask_iou_p5: IoU of the thresholded masks.
        mask_iou_by_kind: prompt kind -> mean IoU.
        mask_iou_min_by_kind: prompt kind -> smallest IoU.
        score_abs_diff_mean, score_abs_diff_max: absolute difference of the predicted scores.
    """

    images: int
    prompts: int
    masks: int
    embedding_cosine_mean: float
    embedding_cosine_min: float
    embedding_rel_error: float
    mask_iou_mean: float
    mask_iou_min: float
    mask_iou_p5: float
    mask_iou_by_kind: dict[str, float] = field(default_factory=dict)
    mask_iou_min_by_kind: dict[str, float] = field(default_factory=dict)
    score_abs_diff_mean: float = 0.0
    score_abs_diff_max: float = 0.0

    def passes(self, min_mask_iou: float) -> bool:
        """``mask_iou_mean >= min_mask_iou``."""
        return bool(self.mask_iou_mean >= float(min_mask_iou))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FidelityReport:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def summary(self) -> str:
        """One line for logs and the command line."""
        kinds = ", ".join(f"{k} {v:.3f}" for k, v in self.mask_iou_by_kind.items())
        return (
            f"mask IoU mean {self.mask_iou_mean:.4f} (min {self.mask_iou_min:.4f}, p5 {self.mask_iou_p5:.4f}"
            f"{'; ' + kinds if kinds else ''}), embedding cosine {self.embedding_cosine_mean:.4f} "
            f"(rel. error {self.embedding_rel_error:.3g}), score diff max {self.score_abs_diff_max:.4f} "
            f"over {self.images} image(s), {self.prompts} prompt(s)"
        )


class FidelityMeter:
    """Accumulates reference/candidate output pairs; :meth:`report` summarises them.

    Call :meth:`add_embeddings` once per image, :meth:`add_masks` and :meth:`add_scores` per
    decoded prompt batch (any leading shape; masks are compared over their last two axes).
    """

    def __init__(self) -> None:
        self._cosines: list[float] = []
        self._rel_errors: list[float] = []
        self._ious: dict[str, list[np.ndarray]] = {}
        self._diffs: list[np.ndarray] = []
        self.images = 0
        self.prompts = 0

    def add_embeddings(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        """One image's embeddings ``[1, C, h, w]`` (a shape mismatch counts as cosine 0)."""
        reference, candidate = np.asarray(reference), np.asarray(candidate)
        self.images += 1
        same = reference.shape == candidate.shape
        self._cosines.append(embedding_cosine(reference, candidate) if same else 0.0)
        self._rel_errors.append(relative_error(candidate, reference))

    def add_masks(self, reference: np.ndarray, candidate: np.ndarray, *, kind: str = "all",
                  prompts: int = 0) -> np.ndarray:  # fmt: skip
        """Boolean masks ``[..., H, W]`` of one batch; ``prompts`` it decoded. Returns the IoUs."""
        ious = np.asarray(mask_iou(reference, candidate), dtype=np.float64).reshape(-1)
        self._ious.setdefault(kind, []).append(ious)
        self.prompts += int(prompts)
        return ious

    def add_scores(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        """Predicted scores of one batch (same shapes)."""
        ref, cand = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
        if ref.shape != cand.shape:
            raise ValueError(f"score shapes differ: {ref.shape} vs {cand.shape}")
        self._diffs.append(np.abs(ref - cand).reshape(-1))

    def report(self) -> FidelityReport:
        """The summary of everything added so far (masks are required)."""
        if not self._ious:
            raise ValueError("no masks were compared")
        every = np.concatenate([np.concatenate(v) for v in self._ious.values()])
        diffs = np.concatenate(self._diffs) if self._diffs else np.zeros(0)
        return FidelityReport(
            images=self.images,
            prompts=self.prompts,
            masks=int(every.size),
            embedding_cosine_mean=float(np.mean(self._cosines)) if self._cosines else 1.0,
            embedding_cosine_min=float(np.min(self._cosines)) if self._cosines else 1.0,
            embedding_rel_error=float(np.max(self._rel_errors)) if self._rel_errors else 0.0,
            mask_iou_mean=float(every.mean()),
            mask_iou_min=float(every.min()),
            mask_iou_p5=float(np.percentile(every, 5.0)),
            mask_iou_by_kind={k: float(np.concatenate(v).mean()) for k, v in self._ious.items()},
            mask_iou_min_by_kind={k: float(np.concatenate(v).min()) for k, v in self._ious.items()},
            score_abs_diff_mean=float(diffs.mean()) if diffs.size else 0.0,
            score_abs_diff_max=float(diffs.max()) if diffs.size else 0.0,
        )


# ------------------------------------------------------------------ the comparison
def _rgb_images(images: Any) -> list[np.ndarray]:
    """RGB uint8 arrays from a sequence of arrays or anything with ``.images`` of ``.image``."""
    items = getattr(images, "images", images)
    out = [np.asarray(getattr(item, "image", item)) for item in items]
    if not out:
        raise ValueError("compare_predictors needs at least one image")
    for i, im in enumerate(out):
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"image {i} must be uint8 [H, W, 3] RGB, got {im.dtype} {im.shape}")
    return out


def compare_predictors(
    reference: Any,
    candidate: Any,
    images: Any,
    *,
    prompts_per_image: int = 8,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> FidelityReport:
    """Run two predictors (or backends) on the same images and generated prompts; compare.

    Per image: the embeddings, then about ``prompts_per_image`` prompts drawn from the image
    geometry (single clicks, click + background click, boxes, box + click; see
    :func:`edgesam.prompt_geometry.sample_prompts`), each decoded with the
    three multimask outputs and the single-mask output (4 masks per prompt).

    Args:
        reference: the reference, a :class:`~edgesam.predictor.SamPredictor` or a backend.
        candidate: the model under test, likewise.
        images: uint8 ``[H, W, 3]`` RGB images, or a
            :class:`~edgesam.quantization.CalibrationSet` (its original images are used;
            each predictor pre-processes for itself).
        prompts_per_image: prompts sampled per image (>= 1).
        seed: prompt sampling seed (image ``i`` uses ``seed * 7919 + i``).
        progress: called as ``progress(done, total)`` after each image.
    """
    from edgesam.predictor import SamPredictor

    ref = reference if isinstance(reference, SamPredictor) else SamPredictor(reference)
    cand = candidate if isinstance(candidate, SamPredictor) else SamPredictor(candidate)
    rgb = _rgb_images(images)
    meter = FidelityMeter()
    for index, image in enumerate(rgb):
        ref.set_image(image)
        cand.set_image(image)
        meter.add_embeddings(ref.get_image_embedding(), cand.get_image_embedding())
        for batch in sample_prompts(image.shape[:2], prompts_per_image, seed=seed * 7919 + index):
            for multimask in (True, False):
                args = dict(point_coords=batch.point_coords, point_labels=batch.point_labels, boxes=batch.boxes,
                            multimask_output=multimask)  # fmt: skip
                m_ref, s_ref, _ = ref.predict_batch(**args)
                m_cand, s_cand, _ = cand.predict_batch(**args)
                meter.add_masks(m_ref, m_cand, kind=batch.kind, prompts=batch.size if multimask else 0)
                meter.add_scores(s_ref, s_cand)
        ref.reset_image()
        cand.reset_image()
        if progress is not None:
            progress(index + 1, len(rgb))
    return meter.report()

