"""Training objectives as modules (so DDP can wrap them): one ``forward(batch, generator)`` per phase.

* :class:`EncoderDistillation` - phase 1: student embedding regresses the cached teacher embedding.
* :class:`PromptInTheLoop` - phase 2: the teacher's (frozen) decoder runs on both embeddings; the
  student's masks match the teacher's under box/point prompts plus refinement points sampled
  where the two disagree.
* :class:`SupervisedSam` - trains a whole SAM from ground-truth masks (the demo teacher).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..models.sam import Sam
from .losses import decoder_loss, embedding_mse, multimask_losses, valid_region
from .prompts import append_padding_point, box_prompts, masks_to_boxes, random_points_in_masks, refinement_points

__all__ = ["decode_many", "EncoderDistillation", "PromptInTheLoop", "SupervisedSam", "copy_decoder", "token_ious",
           "TeacherDecoder"]


def decode_many(
    model: Sam | TeacherDecoder, embeddings: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``P`` prompts, each against its own embedding (no mask input).

    Args:
        embeddings: ``[P, C, h, w]`` (rows may repeat the same image).
        coords, labels: ``[P, N, 2]``, ``[P, N]`` input-frame points (labels as in ``Sam.decode``).

    Returns:
        low-res mask logits ``[P, 4, 4h, 4w]`` and IoU predictions ``[P, 4]``.
    """
    pe = model.prompt_encoder
    sparse = pe.embed_points(coords, labels)
    p, _, h, w = embeddings.shape
    dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(p, -1, h, w)
    return model.mask_decoder(embeddings, pe.get_dense_pe(), sparse, dense)


def copy_decoder(student: Sam, teacher: Sam, *, freeze: bool = True) -> None:
    """Load the teacher's prompt encoder and mask decoder into the student (optionally frozen)."""
    student.prompt_encoder.load_state_dict(teacher.prompt_encoder.state_dict())
    student.mask_decoder.load_state_dict(teacher.mask_decoder.state_dict())
    for p in (*student.prompt_encoder.parameters(), *student.mask_decoder.parameters()):
        p.requires_grad_(not freeze)


class TeacherDecoder(nn.Module):
    """A frozen copy of a SAM's prompt encoder and mask decoder (what :func:`decode_many` needs)."""

    def __init__(self, model: Sam):
        super().__init__()
        self.prompt_encoder = copy.deepcopy(model.prompt_encoder)
        self.mask_decoder = copy.deepcopy(model.mask_decoder)
        self.eval().requires_grad_(False)


def _gather_prompts(
    masks: list[torch.Tensor], max_per_image: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick up to ``max_per_image`` instances per image: (masks ``[P, S, S]``, image index ``[P]``)."""
    chosen, index = [], []
    for i, m in enumerate(masks):
        if len(m) == 0:
            continue
        order = torch.randperm(len(m), generator=generator)[:max_per_image]
        chosen.append(m[order])
        index.append(torch.full((len(order),), i, dtype=torch.long))
    if not chosen:
        return torch.zeros(0, 1, 1, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
    return torch.cat(chosen), torch.cat(index)


class _PromptLoopBase(nn.Module):
    """Loss weights and the initial prompt sampling shared by the prompt-driven objectives."""

    def __init__(
        self, *, max_prompts: int, decode_iters: int, box_jitter: float, bce_weight: float, dice_weight: float
    ):
        super().__init__()
        self.max_prompts = max_prompts
        self.decode_iters = decode_iters
        self.box_jitter = box_jitter
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight

    def _initial_prompts(
        self, masks: torch.Tensor, image_size: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Box prompts or one positive point per mask (coin flip per batch)."""
        use_box = bool(torch.rand(1, generator=gen) < 0.5)
        if use_box:
            coords, labels = box_prompts(
                masks_to_boxes(masks), jitter=self.box_jitter, generator=gen, bounds=(image_size, image_size)
            )
        else:
            coords, labels = random_points_in_masks(masks, 1, generator=gen)
        return coords, labels, use_box


def _low_res_valid(
    input_sizes: torch.Tensor, index: torch.Tensor, image_size: int, hw: tuple[int, int]
) -> torch.Tensor:
    return valid_region(input_sizes[index], image_size, hw)  # [P, 1, 4h, 4w]


class EncoderDistillation(nn.Module):
    """Phase 1: masked per-pixel MSE between student and cached teacher embeddings."""

    def __init__(self, student: Sam):
        super().__init__()
        self.student = student

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        emb = self.student.image_encoder(batch["image"])
        target = batch["teacher_embedding"].to(emb.device)
        valid = valid_region(batch["input_size"].to(emb.device), self.student.image_size, tuple(emb.shape[-2:]))
        return {"mse": embedding_mse(emb, target, valid)}


class PromptInTheLoop(_PromptLoopBase):
    """Phase 2 (EdgeSAM): decoder-aware distillation with the teacher's decoder frozen in the student.

    Prompts come from ground-truth masks when the batch has them (``batch["masks"]``), else
    from the teacher's own masks for random points. Targets are the teacher's binarised masks
    of every decoder output (EdgeSAM), or of ``mask_tokens`` only (e.g. ``(0,)`` for a teacher
    whose multimask outputs were never trained). With ``iou_weight > 0`` the student's IoU
    predictions (the frozen head on the student's embedding) also regress the teacher's, for
    every token, so the student ranks its multimask outputs as the teacher does.

    With ``full_res_loss`` (the default) both decoders' logits are upsampled bilinearly to the
    ``S x S`` input frame (as the predictor does) and the student matches the teacher's binarised
    upsampled mask there, which keeps the teacher's sub-cell boundaries and sharp logits.
    """

    def __init__(
        self,
        student: Sam,
        teacher: Sam,
        *,
        max_prompts: int = 8,
        decode_iters: int = 2,
        box_jitter: float = 0.05,
        bce_weight: float = 5.0,
        dice_weight: float = 5.0,
        mse_weight: float = 1.0,
        mask_tokens: tuple[int, ...] | None = None,
        iou_weight: float = 1.0,
        full_res_loss: bool = True,
    ):
        super().__init__(max_prompts=max_prompts, decode_iters=decode_iters, box_jitter=box_jitter,
                         bce_weight=bce_weight, dice_weight=dice_weight)
        copy_decoder(student, teacher, freeze=True)
        self.student = student
        # Not a submodule: its weights must not be trained, synced or checkpointed with the student.
        # Only the decoder half is kept: phase 2 reads the teacher's embeddings from the cache, so
        # its (large) image encoder is neither copied nor moved to the device.
        self._teacher = (TeacherDecoder(teacher),)
        self.mse_weight = mse_weight
        self.mask_tokens = None if mask_tokens is None else list(mask_tokens)
        self.iou_weight = iou_weight
        self.full_res_loss = full_res_loss

    @property
    def teacher(self) -> TeacherDecoder:
        return self._teacher[0]

    def _apply(self, fn, *args, **kwargs):  # keep the hidden teacher on the student's device / dtype
        self._teacher[0]._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def _teacher_masks(self, emb_t: torch.Tensor, batch: dict, gen: torch.Generator) -> list[torch.Tensor]:
        """Masks (input frame) the teacher predicts for random points in each image's valid area."""
        s = self.student.image_size
        out = []
        for i in range(len(emb_t)):
            h, w = (int(v) for v in batch["input_size"][i])
            xy = torch.rand(self.max_prompts, 1, 2, generator=gen) * torch.tensor([w - 1, h - 1])
            ones = torch.ones(self.max_prompts, 1, device=emb_t.device)
            coords, labels = append_padding_point(xy.to(emb_t.device), ones)
            with torch.no_grad():
                emb = emb_t[i : i + 1].expand(self.max_prompts, -1, -1, -1)
                logits, iou = decode_many(self.teacher, emb, coords, labels)
            best = logits[torch.arange(len(logits)), iou[:, 1:].argmax(1) + 1]
            up = F.interpolate(best[:, None], (s, s), mode="bilinear", align_corners=False)[:, 0] > 0
            up[:, h:, :] = False
            up[:, :, w:] = False
            out.append(up[up.flatten(1).sum(1) >= 16])
        return out

    def forward(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        s = self.student.image_size
        emb_s = self.student.image_encoder(batch["image"])
        emb_t = batch["teacher_embedding"].to(emb_s.device, emb_s.dtype)
        sizes = batch["input_size"].to(emb_s.device)
        losses: dict[str, torch.Tensor] = {}
        if self.mse_weight > 0:
            valid = valid_region(sizes, s, tuple(emb_s.shape[-2:]))
            losses["mse"] = self.mse_weight * embedding_mse(emb_s, emb_t, valid)
        masks = batch.get("masks") or self._teacher_masks(emb_t, batch, generator)
        masks, index = _gather_prompts([m.to(emb_s.device) for m in masks], self.max_prompts, generator)
        if len(index) == 0:
            losses.setdefault("mse", emb_s.sum() * 0)
            return losses
        coords, labels, use_box = self._initial_prompts(masks, s, generator)
        index = index.to(emb_s.device)
        valid = None
        for it in range(self.decode_iters):
            c, l = (coords, labels) if use_box else append_padding_point(coords, labels)
            logits_s, iou_s = decode_many(self.student, emb_s[index], c, l)
            with torch.no_grad():
                logits_t, iou_t = decode_many(self.teacher, emb_t[index], c, l)
            if valid is None:
                valid = _low_res_valid(sizes, index, s, tuple(logits_s.shape[-2:]))
                loss_valid = _low_res_valid(sizes, index, s, (s, s)) if self.full_res_loss else valid
            if self.full_res_loss:
                ls = F.interpolate(logits_s, (s, s), mode="bilinear", align_corners=False)
                target = (F.interpolate(logits_t, (s, s), mode="bilinear", align_corners=False)
                          > self.student.mask_threshold).float()
            else:
                ls, target = logits_s, (logits_t > self.student.mask_threshold).float()
            ls, target = (ls, target) if self.mask_tokens is None else (
                ls[:, self.mask_tokens], target[:, self.mask_tokens])
            for k, v in decoder_loss(ls, target, loss_valid, bce_weight=self.bce_weight / self.decode_iters,
                                     dice_weight=self.dice_weight / self.decode_iters).items():
                losses[f"{k}{it}"] = v
            if self.iou_weight > 0:
                iou_s_k, iou_t_k = (iou_s, iou_t) if self.mask_tokens is None else (
                    iou_s[:, self.mask_tokens], iou_t[:, self.mask_tokens])
                losses[f"iou{it}"] = self.iou_weight / self.decode_iters * F.mse_loss(
                    iou_s_k.float(), iou_t_k.float())
            if it + 1 < self.decode_iters:
                with torch.no_grad():
                    pick = iou_t.argmax(1)
                    rows = torch.arange(len(pick), device=pick.device)
                    pt, lb = refinement_points(logits_s[rows, pick] > 0, logits_t[rows, pick] > 0,
                                               valid=valid[:, 0] > 0, image_size=s, generator=generator)
                coords, labels = torch.cat([coords, pt], 1), torch.cat([labels, lb], 1)
        return losses


def token_ious(logits: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Actual IoU of every token's mask with the ground truth, in the input frame (no grad).

    Args:
        logits: ``[P, T, h, w]`` low-res mask logits; masks: ``[P, S, S]`` bool ground truth.
        valid: ``[P, S, S]`` bool, the un-padded image area (padding counts for neither mask).

    Returns:
        ``[P, T]`` IoU (two empty masks give 1).
    """
    with torch.no_grad():
        s = masks.shape[-1]
        pred = F.interpolate(logits.float(), (s, s), mode="bilinear", align_corners=False) > threshold
        pred = pred & valid[:, None]
        gt = (masks & valid)[:, None]
        inter = (pred & gt).flatten(2).sum(-1).float()
        union = (pred | gt).flatten(2).sum(-1).float()
        return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


class SupervisedSam(_PromptLoopBase):
    """Train a whole SAM from ground-truth masks, multimask as SAM is trained.

    A single-point prompt is ambiguous: the multimask tokens 1..3 learn it with the loss of the
    best token only (minimum over tokens); boxes and several points (refinement iterations)
    train token 0. ``single_weight_ambiguous`` (default 1) also trains token 0 on single points,
    so ``multimask_output=False`` stays a usable single-point path. The IoU head regresses every
    token's actual IoU with the ground truth, measured on the upsampled binarised mask.

    With ``full_res_loss`` (the default) the mask losses compare the low-res logits, upsampled
    bilinearly to the ``S x S`` input frame as the predictor upsamples them, with the exact
    0/1 ground truth. The older alternative (``full_res_loss=False``) compares the low-res logits
    with soft targets (cell coverage); BCE then calibrates the logits to the coverage fraction,
    which makes every boundary blurred on purpose: the masks' stability score (IoU of the masks
    at logit +1 and -1) stays near 0.8, below the 0.95 that ``everything`` asks for by default.
    """

    def __init__(self, model: Sam, *, max_prompts: int = 8, decode_iters: int = 2, box_jitter: float = 0.05,
                 bce_weight: float = 5.0, dice_weight: float = 5.0, iou_weight: float = 1.0,
                 single_weight_ambiguous: float = 1.0, full_res_loss: bool = True):
        super().__init__(max_prompts=max_prompts, decode_iters=decode_iters, box_jitter=box_jitter,
                         bce_weight=bce_weight, dice_weight=dice_weight)
        self.model = model
        self.iou_weight = iou_weight
        self.single_weight_ambiguous = single_weight_ambiguous
        self.full_res_loss = full_res_loss

    def forward(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        s = self.model.image_size
        emb = self.model.image_encoder(batch["image"])
        masks, index = _gather_prompts([m.to(emb.device) for m in batch["masks"]], self.max_prompts, generator)
        if len(index) == 0:
            return {"bce0": emb.sum() * 0}
        index = index.to(emb.device)
        coords, labels, use_box = self._initial_prompts(masks, s, generator)
        sizes = batch["input_size"].to(emb.device)
        full_valid = valid_region(sizes[index], s, (s, s))[:, 0] > 0  # [P, S, S]
        losses: dict[str, torch.Tensor] = {}
        target = valid = None
        for it in range(self.decode_iters):
            c, l = (coords, labels) if use_box else append_padding_point(coords, labels)
            logits, iou = decode_many(self.model, emb[index], c, l)
            if target is None:
                hw = tuple(logits.shape[-2:])
                # Soft targets: fraction of each low-res cell covered by the mask.
                target = F.adaptive_avg_pool2d(masks[:, None].float(), hw)
                valid = _low_res_valid(sizes, index, s, hw)
            ambiguous = torch.full((len(index),), not use_box and it == 0, dtype=torch.bool, device=emb.device)
            if self.full_res_loss:
                loss_logits = F.interpolate(logits, (s, s), mode="bilinear", align_corners=False)
                loss_target, loss_valid = masks[:, None].float(), full_valid[:, None].float()
            else:
                loss_logits, loss_target, loss_valid = logits, target, valid
            parts = multimask_losses(
                loss_logits, iou, loss_target, token_ious(logits, masks, full_valid, self.model.mask_threshold),
                ambiguous, loss_valid, bce_weight=self.bce_weight / self.decode_iters, dice_weight=self.dice_weight / self.decode_iters,
                iou_weight=self.iou_weight / self.decode_iters, single_weight_ambiguous=self.single_weight_ambiguous)
            for k, v in parts.items():
                losses[f"{k}{it}"] = v
            if it + 1 < self.decode_iters:
                with torch.no_grad():
                    hard = target[:, 0] > 0.5
                    pt, lb = refinement_points(
                        logits[:, 0] > 0, hard, valid=valid[:, 0] > 0, image_size=s, generator=generator
                    )
                coords, labels = torch.cat([coords, pt], 1), torch.cat([labels, lb], 1)
        return losses
