"""Distillation losses: masked embedding MSE (phase 1) and decoder-aware BCE + Dice (phase 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "valid_region",
    "embedding_mse",
    "mask_bce",
    "mask_dice",
    "decoder_loss",
    "per_mask_bce_dice",
    "multimask_losses",
]


def valid_region(input_sizes: torch.Tensor, image_size: int, out_hw: tuple[int, int]) -> torch.Tensor:
    """Mask of the un-padded image area at a given resolution.

    Args:
        input_sizes: int [B, 2] (h, w) of each resized image before bottom/right padding,
            in the ``image_size`` x ``image_size`` input frame.
        image_size: side S of the padded square input.
        out_hw: (h', w') of the grid the mask is wanted on (e.g. S/16 for embeddings).

    Returns:
        float [B, 1, h', w'] with 1 where the grid cell's centre lies inside the image.
    """
    oh, ow = out_hw
    dev = input_sizes.device
    # A cell is valid when its centre, mapped back to input pixels, is inside the image.
    cy = (torch.arange(oh, device=dev, dtype=torch.float32) + 0.5) * (image_size / oh)
    cx = (torch.arange(ow, device=dev, dtype=torch.float32) + 0.5) * (image_size / ow)
    hs = input_sizes[:, 0].float().view(-1, 1, 1)
    ws = input_sizes[:, 1].float().view(-1, 1, 1)
    valid = (cy.view(1, oh, 1) < hs) & (cx.view(1, 1, ow) < ws)
    return valid.unsqueeze(1).float()


def embedding_mse(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel MSE between embeddings, averaged over channels and valid pixels.

    Args:
        student, teacher: [B, C, h, w] embeddings (teacher may be fp16; computed in fp32).
        valid: optional [B, 1, h, w] 0/1 mask; padded cells (0) do not contribute.

    Returns:
        scalar: mean over images of (sum over valid cells of mean-over-C squared error) /
        (number of valid cells).
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ")
    err = (student.float() - teacher.float()).pow(2).mean(1, keepdim=True)  # [B,1,h,w]
    if valid is None:
        return err.mean()
    valid = valid.to(err.dtype)
    per_image = (err * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1.0)
    return per_image.mean()


def _targets(target: torch.Tensor, target_is_logit: bool) -> torch.Tensor:
    return torch.sigmoid(target.float()) if target_is_logit else target.float()


def mask_bce(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    target_is_logit: bool = False,
) -> torch.Tensor:
    """Binary cross-entropy on mask logits.

    Args:
        logits: [N, ..., H, W] student mask logits.
        target: same shape; probabilities/0-1 masks, or logits if ``target_is_logit``.
        valid: optional 0/1 weights broadcastable to ``logits``; invalid pixels are ignored.
    """
    t = _targets(target, target_is_logit)
    loss = F.binary_cross_entropy_with_logits(logits.float(), t, reduction="none")
    if valid is None:
        return loss.mean()
    valid = valid.to(loss.dtype).expand_as(loss)
    per = (loss * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1.0)
    return per.mean()


def mask_dice(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    target_is_logit: bool = False,
    smooth: float = 1.0,
) -> torch.Tensor:
    """Soft Dice loss ``1 - (2|P∩T| + s) / (|P| + |T| + s)`` per mask, averaged.

    Shapes as in ``mask_bce``; masks are flattened over all but the first dimension.
    """
    p = torch.sigmoid(logits.float())
    t = _targets(target, target_is_logit)
    if valid is not None:
        valid = valid.to(p.dtype).expand_as(p)
        p = p * valid
        t = t * valid
    p = p.flatten(1)
    t = t.flatten(1)
    num = 2 * (p * t).sum(1) + smooth
    den = p.sum(1) + t.sum(1) + smooth
    return (1 - num / den).mean()


def decoder_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    bce_weight: float = 5.0,
    dice_weight: float = 5.0,
    target_is_logit: bool = False,
) -> dict[str, torch.Tensor]:
    """Weighted BCE + Dice, returned as a dict ``{"bce": ..., "dice": ...}`` of scalars."""
    return {
        "bce": bce_weight * mask_bce(logits, target, valid, target_is_logit=target_is_logit),
        "dice": dice_weight * mask_dice(logits, target, valid, target_is_logit=target_is_logit),
    }


def per_mask_bce_dice(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, *, smooth: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """BCE and soft-Dice loss of every mask separately (no averaging over masks).

    Args:
        logits: ``[P, T, h, w]`` mask logits (``T`` tokens per prompt).
        target: ``[P, 1, h, w]`` probabilities / 0-1 masks, shared by the ``T`` tokens.
        valid: optional ``[P, 1, h, w]`` 0/1 weights; invalid pixels are ignored.

    Returns:
        ``(bce [P, T], dice [P, T])``.
    """
    x = logits.float()
    t = target.float().expand_as(x)
    v = torch.ones_like(x) if valid is None else valid.to(x.dtype).expand_as(x)
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    bce = (bce * v).flatten(2).sum(2) / v.flatten(2).sum(2).clamp_min(1.0)
    p, t = torch.sigmoid(x) * v, t * v
    num = 2 * (p * t).flatten(2).sum(2) + smooth
    den = p.flatten(2).sum(2) + t.flatten(2).sum(2) + smooth
    return bce, 1 - num / den


def multimask_losses(
    logits: torch.Tensor,
    iou_pred: torch.Tensor,
    target: torch.Tensor,
    actual_iou: torch.Tensor,
    ambiguous: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    bce_weight: float = 5.0,
    dice_weight: float = 5.0,
    iou_weight: float = 1.0,
    single_weight_ambiguous: float = 0.0,
) -> dict[str, torch.Tensor]:
    """SAM's multimask training loss for ``P`` prompts of a 4-token decoder.

    Ambiguous prompts (a single point) train the multimask tokens ``1..T-1`` with the loss of
    the best one only (minimum over tokens of ``bce_weight * bce + dice_weight * dice``), so the
    tokens can specialise; other prompts (boxes, several points) train token 0. With
    ``single_weight_ambiguous > 0`` token 0 also learns ambiguous prompts with that weight (so
    that ``multimask_output=False`` stays usable for a single point). The IoU head regresses
    every token's actual IoU with the target (MSE), whether or not the token was trained.

    Args:
        logits: ``[P, T, h, w]``; iou_pred: ``[P, T]``; target: ``[P, 1, h, w]`` (0..1).
        actual_iou: ``[P, T]`` IoU of each token's binarised mask with the ground truth (no grad).
        ambiguous: ``[P]`` bool, True where the prompt is a single point.
        valid: optional ``[P, 1, h, w]`` 0/1 weights.

    Returns:
        ``{"bce": ..., "dice": ..., "iou": ...}`` scalars, ``bce``/``dice`` as summed over the
        chosen token of every prompt and averaged over prompts.
    """
    bce, dice = per_mask_bce_dice(logits, target, valid)
    per = bce_weight * bce + dice_weight * dice  # [P, T]
    amb = ambiguous.to(logits.device).bool()
    best = per[:, 1:].argmin(1) + 1
    token = torch.where(amb, best, torch.zeros_like(best))
    weight = torch.zeros_like(per)
    weight[torch.arange(len(per), device=per.device), token] = 1.0
    if single_weight_ambiguous > 0:
        weight[:, 0] = torch.where(amb, torch.full_like(weight[:, 0], single_weight_ambiguous), weight[:, 0])
    n = max(len(per), 1)
    return {
        "bce": bce_weight * (bce * weight).sum() / n,
        "dice": dice_weight * (dice * weight).sum() / n,
        "iou": iou_weight * F.mse_loss(iou_pred.float(), actual_iou.float().detach()),
    }
