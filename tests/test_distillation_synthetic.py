"""Synthetic scenes: determinism, exact masks after occlusion, COCO / SA-1B round trips."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam.distillation.datasets import CocoDataset, SA1BDataset
from edgesam.distillation.scene_writer import write_coco_scenes, write_sa1b_scenes
from edgesam.scenes import SceneConfig, generate_scene

CFG = SceneConfig(height=96, width=128, noise=0.0)


def test_same_seed_same_scene_and_seeds_differ():
    a, b, c = generate_scene(7, CFG), generate_scene(7, CFG), generate_scene(8, CFG)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert np.array_equal(a.boxes, b.boxes) and a.kinds == b.kinds
    assert not np.array_equal(a.image, c.image)


def test_masks_are_exact_disjoint_and_cover_drawn_pixels():
    occluded = 0
    for seed in range(30):
        s = generate_scene(seed, CFG)
        k = len(s.masks)
        assert s.image.shape == (96, 128, 3) and s.image.dtype == np.uint8
        assert s.masks.shape == (k, 96, 128) and s.masks.dtype == bool
        # disjoint: every pixel belongs to at most one instance
        assert s.masks.sum(0).max() <= 1
        assert (s.masks.reshape(k, -1).sum(1) >= CFG.min_visible_area).all()
        # without noise, the image equals the background exactly outside the instances
        outside = ~s.masks.any(0)
        assert np.array_equal(s.image[outside], s.background[outside])
        # boxes are the tight inclusive boxes of the visible masks
        for m, box in zip(s.masks, s.boxes):
            ys, xs = np.nonzero(m)
            assert box.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
        occluded += int((s.visible_fraction < 0.999).sum())
    assert occluded > 5  # occlusions do happen


def test_instance_pixels_show_the_object_not_the_background():
    differs, total = 0, 0
    for seed in range(20):
        s = generate_scene(seed, CFG)
        for m in s.masks:
            differs += int((s.image[m] != s.background[m]).any(1).sum())
            total += int(m.sum())
    assert differs / total > 0.95


def test_config_validation():
    with pytest.raises(ValueError):
        SceneConfig(min_objects=3, max_objects=2)
    with pytest.raises(ValueError):
        SceneConfig(kinds=("hexagon",))


def test_coco_round_trip_is_exact(tmp_path):
    ann = write_coco_scenes(tmp_path, 4, seed=3, config=CFG)
    ds = CocoDataset(tmp_path / "images", ann, image_size=128)
    assert len(ds) == 4 and ds.skipped_annotations == 0
    for i in range(4):
        sample = ds[i]
        scene = generate_scene(3 + i, CFG)
        # 128x96 fits the 128 input without resizing: masks are the scene's, padded at the bottom
        assert sample["input_size"].tolist() == [96, 128]
        assert np.array_equal(sample["masks"][:, :96, :128].numpy(), scene.masks)
        assert not sample["masks"][:, 96:].any()


def test_sa1b_round_trip(tmp_path):
    write_sa1b_scenes(tmp_path, 3, seed=5, config=CFG)
    ds = SA1BDataset(tmp_path, image_size=128)
    assert len(ds) == 3
    sample = ds[0]
    assert np.array_equal(sample["masks"][:, :96].numpy(), generate_scene(5, CFG).masks)
