"""mIoU of a model's masks against ground truth and against a teacher, with box and centre-point prompts.

Every ground-truth instance is prompted once with its box and once with a single positive
point at the mask pixel farthest from the boundary. The model's single-mask output (token 0,
i.e. ``multimask_output=False``) is upsampled to the input frame, cropped to the un-padded
image, thresholded at 0 and compared to the ground-truth mask in that frame.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..models.sam import Sam
from .objectives import decode_many
from .prompts import append_padding_point, box_prompts, mask_center_point, masks_to_boxes

__all__ = ["mask_iou", "instance_prompts", "predict_masks", "evaluate"]


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of bool masks ``[P, H, W]`` pairwise by row -> ``[P]`` (two empty masks give 1)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def instance_prompts(masks: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic prompts for ``[P, S, S]`` bool masks: ``kind`` is ``"box"`` or ``"point"``."""
    if kind == "box":
        return box_prompts(masks_to_boxes(masks))
    if kind == "point":
        pts = torch.tensor([mask_center_point(m.cpu().numpy()) for m in masks], dtype=torch.float32)
        return append_padding_point(pts[:, None, :], torch.ones(len(masks), 1))
    raise ValueError(f"unknown prompt kind {kind!r}; use 'box' or 'point'")


@torch.no_grad()
def predict_masks(model: Sam, embedding: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor,
                  input_size: tuple[int, int]) -> torch.Tensor:
    """Bool masks ``[P, h, w]`` (input frame, padding cropped) from token 0 for ``P`` prompts.

    Args:
        embedding: ``[1, C, S/16, S/16]`` image embedding.
        coords, labels: ``[P, N, 2]``, ``[P, N]``.
    """
    logits, _ = decode_many(model, embedding.expand(len(coords), -1, -1, -1), coords, labels)
    s = model.image_size
    up = F.interpolate(logits[:, :1], (s, s), mode="bilinear", align_corners=False)[:, 0]
    h, w = input_size
    return up[:, :h, :w] > model.mask_threshold


@torch.no_grad()
def evaluate(
    model: Sam,
    dataset: Dataset,
    *,
    teacher: Sam | None = None,
    prompt_kinds: Iterable[str] = ("box", "point"),
    max_images: int | None = None,
) -> dict[str, float]:
    """mIoU over every instance of ``dataset`` (samples with ``masks``) for each prompt kind.

    Returns:
        ``{"<kind>_miou_gt": ..., "<kind>_miou_teacher": ... (with a teacher),
        "teacher_<kind>_miou_gt": ... (with a teacher), "instances": n, "images": m}``.
    """
    model.eval()
    dev = next(model.parameters()).device
    if teacher is not None:
        teacher.eval().to(dev)
    scores: dict[str, list[torch.Tensor]] = defaultdict(list)
    images = 0
    n = len(dataset) if max_images is None else min(len(dataset), max_images)  # type: ignore[arg-type]
    for i in range(n):
        sample = dataset[i]
        if sample is None or len(sample.get("masks", ())) == 0:
            continue
        images += 1
        h, w = (int(v) for v in sample["input_size"])
        masks = sample["masks"].to(dev)
        gt = masks[:, :h, :w]
        x = sample["image"][None].to(dev)
        emb = model.encode(x)
        emb_t = teacher.encode(x) if teacher is not None else None
        for kind in prompt_kinds:
            coords, labels = (t.to(dev) for t in instance_prompts(masks, kind))
            pred = predict_masks(model, emb, coords, labels, (h, w))
            scores[f"{kind}_miou_gt"].append(mask_iou(pred, gt))
            if emb_t is not None:
                pred_t = predict_masks(teacher, emb_t, coords, labels, (h, w))
                scores[f"{kind}_miou_teacher"].append(mask_iou(pred, pred_t))
                scores[f"teacher_{kind}_miou_gt"].append(mask_iou(pred_t, gt))
    result = {k: float(torch.cat(v).mean()) for k, v in sorted(scores.items())}
    first = next(iter(scores.values()), [])
    result["instances"] = float(sum(len(t) for t in first))
    result["images"] = float(images)
    return result


def ratio_summary(result: dict[str, float], kinds: Iterable[str] = ("box", "point")) -> dict[str, float]:
    """Student/teacher mIoU ratios vs ground truth per prompt kind (needs a teacher in ``evaluate``)."""
    out = {}
    for k in kinds:
        if f"teacher_{k}_miou_gt" in result and result[f"teacher_{k}_miou_gt"] > 0:
            out[f"{k}_ratio"] = result[f"{k}_miou_gt"] / result[f"teacher_{k}_miou_gt"]
    return out


def summarize(result: dict[str, float]) -> str:
    """A short human-readable line of an :func:`evaluate` result."""
    return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) and v <= 1.0 else f"{k}={v:g}" for k, v in result.items())


__all__ += ["ratio_summary", "summarize"]
