"""Loss and prompt-sampling sanity: zero when equal, padded area ignored, refinement labels."""

from __future__ import annotations

import numpy as np
import torch

from edgesam.distillation.losses import embedding_mse, mask_bce, mask_dice, valid_region
from edgesam.distillation.prompts import (
    box_prompts,
    mask_center_point,
    masks_to_boxes,
    random_points_in_masks,
    refinement_points,
)


def test_valid_region_marks_unpadded_cells():
    v = valid_region(torch.tensor([[64, 128], [128, 32]]), 128, (8, 8))
    assert v.shape == (2, 1, 8, 8)
    assert v[0, 0, :4].all() and not v[0, 0, 4:].any()
    assert v[1, 0, :, :2].all() and not v[1, 0, :, 2:].any()


def test_embedding_mse_zero_when_equal_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(2, 16, 8, 8, generator=g)
    valid = valid_region(torch.tensor([[64, 128], [128, 128]]), 128, (8, 8))
    assert embedding_mse(t.clone(), t.half(), valid) < 1e-5
    s = t + 0.1 * torch.randn(2, 16, 8, 8, generator=g)
    base = embedding_mse(s, t, valid)
    s2 = s.clone()
    s2[0, :, 4:] += 100.0  # only the padded rows of image 0 change
    assert torch.equal(embedding_mse(s2, t, valid), base)
    assert embedding_mse(s2, t) > base  # without the mask the padding counts


def test_mask_losses():
    target = torch.zeros(3, 1, 16, 16)
    target[:, :, 4:12, 4:12] = 1
    perfect = (target * 2 - 1) * 50
    assert mask_dice(perfect, target) < 1e-3 and mask_bce(perfect, target) < 1e-3
    assert mask_dice(-perfect, target) > 0.9
    valid = torch.ones(3, 1, 16, 16)
    valid[..., 12:] = 0
    wrong_in_pad = perfect.clone()
    wrong_in_pad[..., 13:] = 50  # wrong, but only where valid == 0
    assert mask_bce(wrong_in_pad, target, valid) < 1e-3 and mask_dice(wrong_in_pad, target, valid) < 1e-3
    # teacher logits as soft targets
    assert mask_bce(perfect, perfect, target_is_logit=True) < 1e-3


def test_boxes_and_points_from_masks():
    m = torch.zeros(2, 20, 30, dtype=torch.bool)
    m[0, 3:7, 10:25] = True
    boxes = masks_to_boxes(m)
    assert boxes[0].tolist() == [10, 3, 24, 6] and boxes[1].tolist() == [0, 0, 0, 0]
    coords, labels = box_prompts(boxes)
    assert coords.shape == (2, 2, 2) and labels.tolist() == [[2, 3], [2, 3]]
    pts, lab = random_points_in_masks(m, 5, generator=torch.Generator().manual_seed(1))
    assert lab[0].eq(1).all() and lab[1].eq(-1).all()
    xs, ys = pts[0, :, 0].long(), pts[0, :, 1].long()
    assert m[0, ys, xs].all()


def test_refinement_points_label_false_negatives_positive():
    s = torch.zeros(3, 8, 8, dtype=torch.bool)
    t = torch.zeros(3, 8, 8, dtype=torch.bool)
    t[0, 2, 5] = True  # student missed a teacher pixel -> positive point there
    s[1, 6, 1] = True  # student has an extra pixel -> negative point there
    coords, labels = refinement_points(s, t)  # row 2 agrees -> padding point
    assert labels[:, 0].tolist() == [1.0, 0.0, -1.0]
    assert coords[0, 0].tolist() == [5.0, 2.0] and coords[1, 0].tolist() == [1.0, 6.0]
    mapped, _ = refinement_points(s, t, image_size=32)  # grid 8 -> input 32: centre of a 4x4 cell
    assert mapped[0, 0].tolist() == [5 * 4 + 1.5, 2 * 4 + 1.5]


def test_center_point_is_inside_a_ring():
    yy, xx = np.mgrid[:41, :41]
    r = np.hypot(yy - 20, xx - 20)
    ring = (r < 18) & (r > 9)
    x, y = mask_center_point(ring)
    assert ring[int(y), int(x)]
