"""Corrupt inputs are skipped and counted; the teacher cache resumes where it stopped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from edgesam.distillation.datasets import CocoDataset, ImageFolderDataset, SA1BDataset, collate
from edgesam.distillation.scene_writer import write_coco_scenes, write_sa1b_scenes
from edgesam.scenes import SceneConfig
from edgesam.distillation.teacher_cache import TeacherCache

HASH = "0123456789abcdef00"
CFG = SceneConfig(height=48, width=64, max_objects=3, min_visible_area=16)


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    write_coco_scenes(tmp_path, 3, config=CFG)
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "images" / "empty.jpg").write_bytes(b"")
    ds = ImageFolderDataset(tmp_path / "images", image_size=64)
    assert len(ds) == 5
    batches = list(DataLoader(ds, batch_size=5, collate_fn=collate))
    assert batches[0]["skipped_images"] == 2
    assert batches[0]["image"].shape == (3, 3, 64, 64)
    assert batches[0]["input_size"].tolist() == [[48, 64]] * 3


def test_corrupt_coco_annotations_are_skipped_and_counted(tmp_path):
    ann_file = write_coco_scenes(tmp_path, 2, config=CFG)
    data = json.loads(ann_file.read_text())
    n_good = len(data["annotations"])
    data["annotations"].append({"image_id": 1, "segmentation": "garbage"})  # structurally wrong
    data["annotations"].append({"image_id": 1, "segmentation": {"size": [48, 64], "counts": [5, 3]}})  # bad sum
    ann_file.write_text(json.dumps(data))
    ds = CocoDataset(tmp_path / "images", ann_file, image_size=64)
    assert ds.skipped_annotations == 1
    batch = collate([ds[0], ds[1]])
    assert batch["skipped_annotations"] == 1
    assert sum(len(m) for m in batch["masks"]) == n_good


def test_corrupt_sa1b_json_is_counted(tmp_path):
    write_sa1b_scenes(tmp_path, 2, config=CFG)
    bad = sorted(tmp_path.glob("*.json"))[0]
    bad.write_text("{ not json")
    ds = SA1BDataset(tmp_path, image_size=64)
    batch = collate([ds[0], ds[1]])
    assert batch["skipped_annotations"] == 1 and batch["image"].shape[0] == 2


class CountingEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 16, stride=16)
        self.calls = 0

    def forward(self, x):
        self.calls += len(x)
        return self.conv(x)


def _items(ds):
    from edgesam.distillation.datasets import source_key
    from edgesam.distillation.teacher_cache import CacheItem

    for i in range(len(ds)):
        name, key = source_key(ds, i)
        s = ds[i]
        yield CacheItem(key, name) if s is None else CacheItem(key, name, s["image"], tuple(s["input_size"].tolist()))


def test_teacher_cache_resumes_after_interruption(tmp_path):
    from edgesam.distillation.datasets import source_key

    write_coco_scenes(tmp_path / "d", 7, config=CFG)
    (tmp_path / "d" / "images" / "zz_broken.png").write_bytes(b"nope")
    ds = ImageFolderDataset(tmp_path / "d" / "images", image_size=64)
    enc = CountingEncoder()
    cache = TeacherCache(tmp_path / "c", teacher_hash=HASH, image_size=64, shard_size=2)
    stats = cache.build(_items(ds), enc, batch_size=2, stop_after=4)  # "interrupted" after 4 images
    assert stats.computed == 4 and len(cache) == 4 and enc.calls == 4

    enc.calls = 0
    resumed = TeacherCache(tmp_path / "c", teacher_hash=HASH, image_size=64, shard_size=2)
    assert len(resumed) == 4
    stats = resumed.build(_items(ds), enc, batch_size=2)
    assert stats.already_cached == 4 and stats.computed == 3 and stats.failed == 1
    assert enc.calls == 3 and len(resumed) == 7 and resumed.failed == [ds.paths[7]]

    for i, path in enumerate(ds.paths[:7]):
        emb, size = resumed.get(source_key(ds, i)[1])
        x = ds[i]["image"][None]
        assert emb.dtype == np.float16 and emb.shape == (8, 4, 4) and size == (48, 64)
        ref = enc(x)[0].detach().numpy()
        np.testing.assert_allclose(emb[:, :3].astype(np.float32), ref[:, :3], atol=2e-3, rtol=2e-3)
        assert not emb[:, 3:].any()  # the padded grid row (48 of 64 px are image) is not stored

    # a different teacher whose hash shares the folder prefix must not read these embeddings
    resumed.merge()
    with pytest.raises(ValueError):
        TeacherCache(tmp_path / "c", teacher_hash=HASH[:16] + "ff", image_size=64)
