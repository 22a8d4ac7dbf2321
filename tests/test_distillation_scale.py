"""Distillation at scale, at small size: sharded cache across ranks, interrupt and resume, checked configs.

Tiny teacher/student archs (64 px) from ``distill_scale_helpers``; the CLI runs in-process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from distill_scale_helpers import SCENES, seeded_teacher, train_tiny
from edgesam.cli import main
from edgesam.distillation.checkpoint import ConfigMismatchError
from edgesam.distillation.datasets import SyntheticSceneDataset, dataset_keys
from edgesam.distillation.pipeline import cache_embeddings, save_sam
from edgesam.distillation.scene_writer import write_coco_scenes
from edgesam.distillation.teacher_cache import TeacherCache

HELPERS = Path(__file__).with_name("distill_scale_helpers.py")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _same_cache(a: TeacherCache, b: TeacherCache, keys) -> None:
    assert len(a) == len(b) == len(set(keys))
    for key in keys:
        (ea, sa), (eb, sb) = a.get(key), b.get(key)
        assert sa == sb
        np.testing.assert_allclose(ea.astype(np.float32), eb.astype(np.float32), atol=2e-3, rtol=0)


def test_sharded_cache_across_two_gloo_ranks_equals_single_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPERS.parent), *sys.path]), "OMP_NUM_THREADS": "1"}
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", port,
           str(HELPERS), "--root", str(tmp_path / "multi"), "--synthetic", "7", "--keys-out", str(tmp_path / "k.json")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "k.json").read_text())
    assert result["computed"] == 7 and result["entries"] == 7  # each image once, over both ranks

    data = SyntheticSceneDataset(7, image_size=64, config=SCENES)
    single, stats = cache_embeddings(seeded_teacher(), data, tmp_path / "single", shard_size=2, batch_size=2,
                                     device="cpu")
    assert stats.computed == 7 and result["keys"] == cache_embeddings_keys(single, data)
    multi_dir = next((tmp_path / "multi").iterdir())
    assert {p.name[:4] for p in multi_dir.glob("r*.bin")} == {"r000", "r001"}  # both ranks wrote shards
    multi = TeacherCache(tmp_path / "multi", teacher_hash=single.teacher_hash, image_size=64, shard_size=2)
    index = json.loads((multi_dir / "index.json").read_text())
    assert len(index["entries"]) == 7  # rank 0 merged the index
    _same_cache(single, multi, result["keys"])


def cache_embeddings_keys(cache: TeacherCache, data) -> list:
    keys = cache.keys_of(data)
    assert keys == dataset_keys(data)  # the keys kept while building are the content hashes
    return keys


def test_cache_build_interrupted_after_two_shards_resumes_to_the_same_cache(tmp_path):
    data = SyntheticSceneDataset(9, image_size=64, config=SCENES)
    teacher = seeded_teacher()
    full, _ = cache_embeddings(teacher, data, tmp_path / "full", shard_size=2, device="cpu")

    class Stop(Exception):
        pass

    def stop_after_two(n):
        if n == 2:
            raise Stop

    with pytest.raises(Stop):
        cache_embeddings(teacher, data, tmp_path / "cut", shard_size=2, device="cpu", on_shard=stop_after_two)
    cut = TeacherCache(tmp_path / "cut", teacher_hash=full.teacher_hash, image_size=64, shard_size=2)
    assert len(cut) == 4 and not list(cut.dir.glob("*.tmp"))  # two whole shards, nothing half-written
    resumed, stats = cache_embeddings(teacher, data, tmp_path / "cut", shard_size=2, device="cpu")
    assert stats.already_cached == 4 and stats.computed == 5
    _same_cache(full, resumed, dataset_keys(data))


def test_out_of_memory_halves_the_cache_batch(tmp_path, capsys):
    data = SyntheticSceneDataset(6, image_size=64, config=SCENES)
    teacher = seeded_teacher()
    ref, _ = cache_embeddings(teacher, data, tmp_path / "ref", batch_size=4, device="cpu")
    real = teacher.image_encoder.forward
    calls = []

    def flaky(x):
        calls.append(len(x))
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x)

    teacher.image_encoder.forward = flaky
    cache, stats = cache_embeddings(teacher, data, tmp_path / "oom", batch_size=4, device="cpu")
    assert calls[:3] == [4, 2, 2] and stats.batch_size == 2 and stats.computed == 6
    assert "out of memory at batch 4" in capsys.readouterr().err
    _same_cache(ref, cache, dataset_keys(data))


def test_int8_storage_is_close_to_fp16_and_half_the_bytes(tmp_path):
    data = SyntheticSceneDataset(4, image_size=64, config=SCENES)
    teacher = seeded_teacher()
    fp16, _ = cache_embeddings(teacher, data, tmp_path, device="cpu")
    int8, _ = cache_embeddings(teacher, data, tmp_path, device="cpu", storage="int8")
    c = fp16.embedding_shape[0]  # int8: one byte per value plus one float32 scale per channel
    assert fp16.dir != int8.dir and int8.bytes_per_image() == fp16.bytes_per_image() / 2 + 4 * c
    for key in dataset_keys(data):
        a, b = fp16.get(key)[0].astype(np.float32), int8.get(key)[0].astype(np.float32)
        assert np.abs(a - b).max() <= np.abs(a).max() / 127 + 1e-3


def _train(tmp_path, name, **kw):
    return train_tiny(tmp_path / name, **kw)


def test_sigterm_saves_a_checkpoint_and_the_run_resumes_exactly(tmp_path):
    straight = _train(tmp_path, "a")
    # a real SIGTERM to a training process of its own (not to the test process and its other libraries)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPERS.parent.parent), str(HELPERS.parent)])}
    proc = subprocess.run([sys.executable, str(HELPERS), "--sigterm-at-step-2", str(tmp_path / "b")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["step"] == 2
    assert torch.load(info["checkpoint"], weights_only=False)["step"] == 2
    resumed = _train(tmp_path, "b")
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_resume_refuses_a_changed_config_unless_overridden(tmp_path):
    _train(tmp_path, "r", stop_after=2)
    with pytest.raises(ConfigMismatchError, match=r"batch_size: 4 \(checkpoint\) -> 2 \(now\); lr: 0\.003 \(checkpoint\) -> 0\.001 \(now\)"):
        _train(tmp_path, "r", lr=1e-3, batch_size=2)
    _train(tmp_path, "r", lr=1e-3, batch_size=2, override=True)  # continues with the new settings
    assert torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=False)["config"]["lr"] == 1e-3


# -- the command line ----------------------------------------------------------------------
@pytest.fixture
def cli_setup(tmp_path):
    teacher = save_sam(seeded_teacher(), tmp_path / "teacher.safetensors")
    ann = write_coco_scenes(tmp_path / "coco", 6, config=SCENES)
    base = ["distill", "--teacher", str(teacher), "--student-arch", "scale_test_student", "--cache-dir",
            str(tmp_path / "cache"), "--batch-size", "2", "--max-prompts", "2", "--phase1-steps", "2",
            "--phase2-steps", "0", "-q"]
    return base, tmp_path, ann


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_seeded_student_reproducible_and_changed_config_refused(cli_setup, capsys):
    base, tmp, ann = cli_setup
    data = ["--coco", str(tmp / "coco" / "images"), str(ann)]
    rc1, out1, _ = _run(base + data + ["--out", str(tmp / "a")], capsys)
    rc2, out2, _ = _run(base + data + ["--out", str(tmp / "b")], capsys)
    assert rc1 == rc2 == 0
    s1, s2 = json.loads(out1), json.loads(out2)
    assert s1["phase1"]["loss"] == s2["phase1"]["loss"] and s2["cache"]["computed"] == 0  # second run: cache hit
    from safetensors.torch import load_file

    wa, wb = load_file(tmp / "a" / "student.safetensors"), load_file(tmp / "b" / "student.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    rc3, out3, _ = _run(base + data + ["--out", str(tmp / "c"), "--seed", "1"], capsys)
    assert json.loads(out3)["phase1"]["loss"] != s1["phase1"]["loss"]

    rc, _, err = _run(base + data + ["--out", str(tmp / "a"), "--lr", "0.01", "--phase1-steps", "3"], capsys)
    assert rc == 2 and "lr: 0.001 (checkpoint) -> 0.01 (now)" in err and "steps: 2" in err


def test_cli_errors_come_before_any_work(cli_setup, capsys):
    base, tmp, ann = cli_setup
    data = ["--coco", str(tmp / "coco" / "images"), str(ann)]
    rc, _, err = _run(base + data, capsys)
    assert rc == 2 and "give -o/--out DIR" in err
    rc, _, err = _run(base + data + ["--out", str(tmp / "x"), "--student-arch", "tiny"], capsys)
    assert rc == 2 and "choose one of: vit_t, edge_sam" in err and "synthetic_teacher" not in err
    (tmp / "empty").mkdir()
    rc, _, err = _run(base + ["--images", str(tmp / "empty"), "--out", str(tmp / "y")], capsys)
    assert rc == 2 and f"{tmp / 'empty'} contains no images" in err
    assert not (tmp / "x").exists() and not (tmp / "y").exists() and not (tmp / "cache").exists()


def test_cli_bad_files_counted_once_and_listed(cli_setup, capsys):
    base, tmp, ann = cli_setup
    images = tmp / "coco" / "images"
    good = sorted(images.iterdir())[0].read_bytes()
    (images / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (images / "text.jpg").write_text("not an image")
    (images / "empty.png").write_bytes(b"")
    rc, out, err = _run(base + ["--images", str(images), "--out", str(tmp / "bad"), "--phase1-steps", "4"], capsys)
    summary = json.loads(out)
    assert rc == 0 and summary["cache"]["failed"] == 3 and summary["cache"]["computed"] == 6
    assert "3 of 9 images could not be read" in err and "empty.png" in err and "text.jpg" in err
    assert "NaN" not in out


def test_cli_skipped_annotations_counted(cli_setup, capsys):
    base, tmp, ann = cli_setup
    coco = json.loads(ann.read_text())
    coco["annotations"].append({"image_id": coco["images"][0]["id"], "bbox": [1, 1, 5, 5]})  # bbox only
    ann.write_text(json.dumps(coco))
    rc, out, _ = _run(base + ["--coco", str(tmp / "coco" / "images"), str(ann), "--out", str(tmp / "s")], capsys)
    assert rc == 0 and json.loads(out)["skipped_annotations"] == 1


def test_reduced_precision_teacher_is_checked_against_fp32(tmp_path, monkeypatch):
    from edgesam.distillation import teacher_encode

    data = SyntheticSceneDataset(3, image_size=64, config=SCENES)
    teacher = seeded_teacher()
    ref, _ = cache_embeddings(teacher, data, tmp_path / "fp32", device="cpu")
    cache, stats = cache_embeddings(teacher, data, tmp_path / "auto", device="cpu", precision="auto")
    check = stats.teacher_precision
    assert check["used"] == "bf16" and check["accepted"] and check["min_cosine"] >= 0.999
    for key in dataset_keys(data)[1:]:  # images after the checked first batch ran in bf16
        a, b = ref.get(key)[0].astype(np.float32).ravel(), cache.get(key)[0].astype(np.float32).ravel()
        assert 0.999 <= a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) and not np.array_equal(a, b)

    monkeypatch.setitem(teacher_encode.TOLERANCE, "min_cosine", 1.01)  # a check nothing passes
    _, stats = cache_embeddings(teacher, data, tmp_path / "strict", device="cpu", precision="auto")
    assert stats.teacher_precision["used"] == "fp32" and stats.teacher_precision["accepted"] is False
    with pytest.raises(ValueError, match="too far from fp32"):
        cache_embeddings(teacher, data, tmp_path / "bf16", device="cpu", precision="bf16")
