"""SAM-style multimask training: min-over-tokens loss for single points, IoU regression, phase-2 distillation."""

from __future__ import annotations

import math

import pytest
import torch

from edgesam.distillation.losses import multimask_losses, per_mask_bce_dice
from edgesam.distillation.objectives import PromptInTheLoop, SupervisedSam, token_ious

LN2 = math.log(2.0)


def _target() -> torch.Tensor:
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2, :2] = 1  # 4 of 16 pixels
    return t


def test_per_mask_bce_dice_by_hand():
    target = _target()
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 1] = (target[0, 0] * 2 - 1) * 50  # token 1 perfect, token 0 undecided (sigmoid 0.5)
    bce, dice = per_mask_bce_dice(logits, target)
    assert bce.shape == dice.shape == (1, 2)
    assert bce[0, 0].item() == pytest.approx(LN2, abs=1e-6) and bce[0, 1].item() < 1e-6
    # p = 0.5 everywhere: 1 - (2 * 0.5 * 4 + 1) / (0.5 * 16 + 4 + 1)
    assert dice[0, 0].item() == pytest.approx(1 - 5 / 13, abs=1e-6) and dice[0, 1].item() < 1e-6
    valid = torch.zeros(1, 1, 4, 4)
    valid[..., :2, :] = 1
    wrong_outside = logits.clone()
    wrong_outside[0, 1, 2:] = 50.0  # wrong only where valid == 0
    assert per_mask_bce_dice(wrong_outside, target, valid)[0][0, 1].item() < 1e-6


def test_single_point_trains_only_the_best_multimask_token_and_boxes_token_0():
    target = _target().expand(2, 1, 4, 4)
    logits = torch.zeros(2, 4, 4, 4)
    logits[0, 2] = (target[0, 0] * 2 - 1) * 50  # prompt 0 (a single point): token 2 is right
    logits[0, 0] = logits[0, 2]  # token 0 too, but it is not a multimask token
    logits.requires_grad_(True)
    iou_pred = torch.zeros(2, 4, requires_grad=True)
    actual = torch.tensor([[1.0, 0.5, 0.0, 0.25], [0.0, 0.0, 0.0, 0.0]])
    ambiguous = torch.tensor([True, False])
    parts = multimask_losses(logits, iou_pred, target, actual, ambiguous, bce_weight=1.0, dice_weight=0.0)
    # prompt 0: min over tokens 1..3 -> token 2's loss (0); prompt 1: token 0 (undecided, ln 2)
    assert parts["bce"].item() == pytest.approx(LN2 / 2, abs=1e-5)
    assert parts["iou"].item() == pytest.approx((1 + 0.25 + 0.0625) / 8, abs=1e-6)
    sum(parts.values()).backward()
    touched = logits.grad.abs().flatten(2).sum(2) > 0
    assert touched.tolist() == [[False, False, True, False], [True, False, False, False]]
    # every token's IoU is regressed, trained token or not: gradient wherever the prediction is off
    assert (iou_pred.grad != 0).tolist() == [[True, True, False, True], [False] * 4]

    # token 0 also learns single points when asked to (the multimask_output=False path)
    logits.grad = None
    parts = multimask_losses(logits, iou_pred, target, actual, ambiguous, bce_weight=1.0, dice_weight=0.0,
                             single_weight_ambiguous=0.5)
    parts["bce"].backward()
    assert (logits.grad.abs().flatten(2).sum(2) > 0).tolist() == [[True, False, True, False],
                                                                   [True, False, False, False]]


def test_token_ious_by_hand():
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True
    logits = torch.full((1, 3, 2, 2), -10.0)
    logits[0, 0, 0, 0] = 10  # upsampled: roughly the top-left quarter
    logits[0, 1] = 10  # everything: IoU 16 / 64
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    ious = token_ious(logits, masks, valid)
    assert ious[0, 1].item() == pytest.approx(0.25) and ious[0, 2].item() == 0.0
    assert ious[0, 0].item() > 0.5
    valid[0, :, 4:] = False  # padding counts for neither mask
    assert token_ious(logits, masks, valid)[0, 1].item() == pytest.approx(0.5)


def _tiny_models():
    from edgesam.models.registry import build_sam
    from test_distillation_train import STUDENT, TEACHER

    torch.manual_seed(0)
    return build_sam(TEACHER), build_sam(STUDENT)


def _batch(n: int = 2):
    from edgesam.distillation.datasets import SyntheticSceneDataset, collate
    from test_distillation_train import SCENES

    data = SyntheticSceneDataset(n, image_size=64, config=SCENES)
    return collate([data[i] for i in range(n)])


def test_supervised_teacher_trains_multimask_tokens_on_single_points():
    teacher, _ = _tiny_models()
    batch = _batch()
    objective = SupervisedSam(teacher, max_prompts=3, decode_iters=1)
    hyper = teacher.mask_decoder.output_hypernetworks_mlps
    seen_point = False
    for seed in range(8):  # the prompt kind is a coin flip per batch: cover both
        teacher.zero_grad()
        losses = objective(batch, torch.Generator().manual_seed(seed))
        assert {"bce0", "dice0", "iou0"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()
        grads = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in mlp.parameters()) for mlp in hyper]
        if any(grads[1:]):
            seen_point = True
            assert grads[0]  # token 0 learns single points too (single_weight_ambiguous=1)
        else:
            assert grads == [True, False, False, False]  # a box batch: token 0 only
    assert seen_point


def test_phase2_distils_every_token_and_the_iou_head():
    teacher, student = _tiny_models()
    batch = _batch()
    batch["teacher_embedding"] = teacher.encode(batch["image"]).detach()
    objective = PromptInTheLoop(student, teacher, max_prompts=3, decode_iters=1, mse_weight=0.0)
    losses = objective(batch, torch.Generator().manual_seed(0))
    assert {"bce0", "dice0", "iou0"} <= set(losses) and losses["iou0"].item() > 0
    # the student with the teacher's encoder reproduces the teacher: every loss but BCE's floor is ~0
    student.image_encoder = teacher.image_encoder
    exact = PromptInTheLoop(student, teacher, max_prompts=3, decode_iters=1, mse_weight=0.0)
    same = exact(batch, torch.Generator().manual_seed(0))
    assert same["iou0"].item() < 1e-10 and same["dice0"].item() < losses["dice0"].item()


def _stability_after_overfitting(full_res_loss: bool, steps: int = 40) -> float:
    """Mean stability score (IoU of the masks at logit +1 and -1, as ``everything`` measures it) of
    a tiny teacher's box masks after ``steps`` steps on one batch."""
    import torch.nn.functional as F

    from edgesam.distillation.objectives import decode_many
    from edgesam.distillation.prompts import box_prompts, masks_to_boxes
    from edgesam.everything import calculate_stability_score

    teacher, _ = _tiny_models()
    batch = _batch()
    objective = SupervisedSam(teacher, max_prompts=3, decode_iters=1, full_res_loss=full_res_loss)
    opt = torch.optim.AdamW(teacher.parameters(), lr=3e-3)
    for step in range(steps):
        opt.zero_grad()
        sum(objective(batch, torch.Generator().manual_seed(step)).values()).backward()
        opt.step()
    with torch.no_grad():
        s = teacher.image_size
        emb = teacher.image_encoder(batch["image"])
        masks = torch.cat(list(batch["masks"]))
        index = torch.cat([torch.full((len(m),), i) for i, m in enumerate(batch["masks"])])
        coords, labels = box_prompts(masks_to_boxes(masks), jitter=0.0, bounds=(s, s))
        logits, _ = decode_many(teacher, emb[index], coords, labels)
        up = F.interpolate(logits[:, :1], (s, s), mode="bilinear", align_corners=False)[:, 0]
    return float(calculate_stability_score(up.numpy(), 0.0, 1.0).mean())


def test_full_resolution_loss_gives_sharper_masks_than_soft_low_res_targets():
    """Soft low-res targets calibrate boundary logits to cell coverage (blurred on purpose, so
    stability stays low); the exact full-resolution masks do not."""
    torch.set_num_threads(1)
    sharp, soft = _stability_after_overfitting(True), _stability_after_overfitting(False)
    assert sharp > soft + 0.05, (sharp, soft)
