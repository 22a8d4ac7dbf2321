"""Training loop on tiny configs: the loss goes down, phase 2 trains only the encoder, resume is exact."""

from __future__ import annotations

import csv

import pytest
import torch

from edgesam.distillation.datasets import SyntheticSceneDataset
from edgesam.distillation.objectives import SupervisedSam
from edgesam.distillation.pipeline import (
    cache_embeddings,
    distill_encoder,
    distill_prompt_in_the_loop,
    load_teacher,
    save_sam,
)
from edgesam.scenes import SceneConfig
from edgesam.distillation.train import StepBatchSampler, TrainConfig, train_loop, warmup_cosine
from edgesam.models.registry import ModelSpec, build_sam

DECODER = dict(image_size=64, prompt_embed_dim=32, decoder_depth=1, decoder_mlp_dim=64, decoder_heads=2,
               iou_head_hidden_dim=32)
TEACHER = ModelSpec("test_teacher", "sam_vit", "", encoder_kwargs=dict(
    embed_dim=32, depth=1, num_heads=2, window_size=4, out_chans=32), **DECODER)
STUDENT = ModelSpec("test_student", "tiny_vit", "", encoder_kwargs=dict(
    embed_dims=(16, 16, 32, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_sizes=(4, 4, 4, 4),
    out_chans=32), **DECODER)
SCENES = SceneConfig(height=48, width=64, max_objects=3, min_visible_area=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(tmp_path, name, steps, **kw):
    base = dict(out_dir=str(tmp_path / name), steps=steps, batch_size=4, lr=3e-3, min_lr=1e-4, warmup_steps=2,
                checkpoint_every=2, log_every=1, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _losses(tmp_path, name):
    with open(tmp_path / name / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_schedule_and_sampler():
    assert warmup_cosine(0, total=100, warmup=10, start_factor=0.1, min_factor=0.0) == pytest.approx(0.1)
    assert warmup_cosine(10, total=100, warmup=10, start_factor=0.1, min_factor=0.0) == pytest.approx(1.0)
    assert warmup_cosine(100, total=100, warmup=10, start_factor=0.1, min_factor=0.05) == pytest.approx(0.05)
    full = list(StepBatchSampler(10, batch_size=4, total_steps=6, seed=1))
    assert list(StepBatchSampler(10, batch_size=4, total_steps=6, seed=1, start_step=3)) == full[3:]
    r0 = list(StepBatchSampler(10, batch_size=4, total_steps=6, seed=1, rank=0, world_size=2))
    r1 = list(StepBatchSampler(10, batch_size=4, total_steps=6, seed=1, rank=1, world_size=2))
    assert [sorted(a + b) for a, b in zip(r0, r1)] == [sorted(b) for b in full]


def test_both_phases_reduce_loss_and_phase2_trains_only_the_encoder(tmp_path):
    torch.manual_seed(0)
    teacher, student = build_sam(TEACHER), build_sam(STUDENT)
    data = SyntheticSceneDataset(8, image_size=64, config=SCENES)
    cache, stats = cache_embeddings(teacher, data, tmp_path / "cache", batch_size=4)
    assert stats.computed == 8 and len(cache) == 8

    distill_encoder(student, teacher, data, cache, _config(tmp_path, "p1", 16))
    losses = _losses(tmp_path, "p1")
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3

    enc_before = {k: v.clone() for k, v in student.image_encoder.state_dict().items()}
    distill_prompt_in_the_loop(student, teacher, data, cache, _config(tmp_path, "p2", 3, lr=1e-3), max_prompts=2)
    assert all(torch.isfinite(torch.tensor(_losses(tmp_path, "p2"))))
    for k, v in teacher.mask_decoder.state_dict().items():  # the frozen decoder is the teacher's
        assert torch.equal(student.mask_decoder.state_dict()[k], v)
    assert any(not torch.equal(v, student.image_encoder.state_dict()[k]) for k, v in enc_before.items())


def test_resume_is_exact(tmp_path):
    data = SyntheticSceneDataset(8, image_size=64, config=SCENES)

    def run(name, stop_after=None):
        torch.manual_seed(0)
        model = build_sam(TEACHER)
        train_loop(SupervisedSam(model, max_prompts=2), data, _config(tmp_path, name, 5, stop_after=stop_after),
                   trained=model)
        return model

    straight = run("a")
    interrupted = run("b", stop_after=3)
    assert not all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), interrupted.state_dict().values()))
    resumed = run("b")
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_wrong_teacher_arch_is_refused(tmp_path):
    path = save_sam(build_sam("edgesam_demo"), tmp_path / "student.safetensors", half=True)
    assert load_teacher(path).arch == "edgesam_demo"
    with pytest.raises(ValueError):
        load_teacher(path, arch="synthetic_teacher")


def test_prompt_in_the_loop_without_labels_uses_teacher_masks():
    from edgesam.distillation.datasets import collate
    from edgesam.distillation.objectives import PromptInTheLoop

    torch.manual_seed(0)
    teacher, student = build_sam(TEACHER), build_sam(STUDENT)
    data = SyntheticSceneDataset(2, image_size=64, config=SCENES)
    batch = collate([data[0], data[1]])
    del batch["masks"]  # unlabelled images: prompts come from the teacher's own masks
    batch["teacher_embedding"] = teacher.encode(batch["image"]).detach().half()
    objective = PromptInTheLoop(student, teacher, max_prompts=3, decode_iters=2)
    losses = objective(batch, torch.Generator().manual_seed(0))
    assert {"mse", "bce0", "dice0", "bce1", "dice1"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert student.image_encoder.neck[0].weight.grad is not None
